//! The sync server: admits instance processes holding the run's token,
//! hands out instance ids, holds the barrier, and reports what happens as
//! [`ServerEvent`]s to the runner.
//!
//! One task per connection parses lines; one state task owns every decision
//! (ids, barrier, start time), so there are no locks.
//!
//! Before its hello a connection is a stranger, and strangers get little
//! ([`Admission`]): a first line of a few KiB (what the run's largest
//! legitimate hello needs), a deadline for it, and a cap on how many wait
//! at once (the oldest is closed to make room, so a late instance process
//! still gets in). Each refusal is counted ([`AdmissionStats`]); they are
//! reported one by one only up to a few per [`LOG_WINDOW`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};

use super::protocol::{ClientMsg, MAX_LINE, PeerEntry, ServerMsg, StartInfo};

/// What the server is told at start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The run's secret; connections without it are refused.
    pub token: String,
    /// How many instances the run has (ids 1..=instances).
    pub instances: u32,
    /// Time between the barrier and the common start.
    pub start_delay: Duration,
    /// What a connection gets before its hello.
    pub admission: Admission,
}

/// Limits on connections that have not said hello yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The longest first line (the hello), in bytes; a longer one is
    /// refused as soon as this much has arrived, without reading the rest.
    pub hello_line: usize,
    /// How long a connection may take to send its hello line.
    pub hello_timeout: Duration,
    /// How many connections may wait for their hello at once; a new one
    /// beyond this closes the one that has waited longest.
    pub max_waiting: usize,
    /// Refusals are reported one by one up to [`LOG_BURST`] per window of
    /// this length ([`LOG_WINDOW`] by default).
    pub report_window: Duration,
}

/// A hello's bytes besides its ids: the type tag, a 32-digit token, a host
/// name (at most 255 bytes in DNS, SLURM's node names are shorter), node,
/// pid and count, with room to spare.
const HELLO_BASE: usize = 4096;

/// One id in a hello's list: up to 10 digits and a comma.
const HELLO_BYTES_PER_ID: usize = 11;

/// How long a connection waits for its hello by default: instance
/// processes send it as soon as they connect.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Room beyond the run's own processes for strays (a process of an earlier
/// run still retrying, a port scan).
const WAITING_SPARE: usize = 64;

impl Admission {
    /// The limits for a run of `instances` on `nodes` nodes, each process
    /// hosting up to `instances_per_process`: the largest hello lists that
    /// many ids, and every process of the run may connect at the same time.
    pub fn for_run(instances: u32, instances_per_process: u32, nodes: u32) -> Self {
        let per = instances_per_process.clamp(1, instances.max(1));
        // Each node's share is split into processes on its own.
        let processes = instances.div_ceil(per) as usize + nodes as usize;
        Self {
            hello_line: HELLO_BASE + HELLO_BYTES_PER_ID * per as usize,
            hello_timeout: HELLO_TIMEOUT,
            max_waiting: processes + WAITING_SPARE,
            report_window: LOG_WINDOW,
        }
    }
}

/// Connections refused, by why, since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Every refusal, those below included.
    pub refused: u64,
    /// First lines longer than [`Admission::hello_line`].
    pub oversize: u64,
    /// Connections without a hello within [`Admission::hello_timeout`].
    pub hello_timeouts: u64,
    /// Waiting connections closed to make room for a newer one.
    pub evicted: u64,
}

#[derive(Default)]
struct Counters {
    refused: AtomicU64,
    oversize: AtomicU64,
    hello_timeouts: AtomicU64,
    evicted: AtomicU64,
}

/// Refusals reported one by one per window; the rest are counted and
/// reported together ([`ServerEvent::RefusalsNotReported`]).
pub const LOG_BURST: u32 = 5;
/// The default [`Admission::report_window`].
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// What the runner learns from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A process registered and was given these ids.
    Registered {
        ids: Vec<u32>,
        host: String,
        node: u32,
        pid: u32,
    },
    /// A connection was refused (wrong token, bad ids, protocol error, no
    /// or an oversize hello, too many waiting). At most [`LOG_BURST`] per
    /// [`Admission::report_window`]; the others are counted in the next
    /// [`ServerEvent::RefusalsNotReported`].
    Refused { peer: SocketAddr, reason: String },
    /// This many more connections were refused in the last `window` than
    /// were reported one by one.
    RefusalsNotReported { count: u64, window: Duration },
    /// One instance reported ready.
    Ready { id: u32 },
    /// Every instance was ready; the start time and the peer table were
    /// sent to all.
    Started {
        start_unix_ms: u64,
        peers: Vec<PeerEntry>,
    },
    /// One instance reported its end.
    Done {
        id: u32,
        status: peerlab_run::EndStatus,
        exit_code: Option<i32>,
        error: Option<String>,
    },
    /// A registered process's connection closed (every line it sent has been
    /// read): `all` are its instances, `ids` those that never said done.
    Disconnected { ids: Vec<u32>, all: Vec<u32> },
    /// Scenario commands fired so far by every instance of the run.
    Progress { commands: u64 },
}

enum Control {
    Abort(String),
    Peer(PeerEntry),
}

/// A serialised server message; shared so that one peer table is encoded
/// once however many processes receive it.
#[derive(Clone)]
struct Outgoing {
    line: Arc<str>,
    /// Close the connection after sending.
    last: bool,
    /// The connection is admitted: its lines may be long from now on.
    welcome: bool,
}

impl Outgoing {
    fn new(msg: &ServerMsg) -> Self {
        Self {
            line: serde_json::to_string(msg)
                .expect("server messages serialise")
                .into(),
            last: matches!(msg, ServerMsg::Refused { .. } | ServerMsg::Abort { .. }),
            welcome: matches!(msg, ServerMsg::Welcome { .. }),
        }
    }
}

enum FromConn {
    Line(ClientMsg),
    Garbage(String),
    /// Closed before its hello (already told why); count and forget it.
    Rejected(Rejection),
    Closed,
}

/// Why a connection was closed before its hello.
#[derive(Debug, Clone, Copy)]
enum Rejection {
    Oversize(usize),
    HelloTimeout(Duration),
    Evicted(usize),
}

impl Rejection {
    fn reason(self) -> String {
        match self {
            Rejection::Oversize(limit) => {
                format!("the first line is longer than {limit} bytes: not a hello of this run")
            }
            Rejection::HelloTimeout(t) => {
                format!("no hello within {:.1} s of connecting", t.as_secs_f64())
            }
            Rejection::Evicted(max) => format!(
                "{max} connections were already waiting to say hello: the longest waiting is closed"
            ),
        }
    }
}

/// A running sync server. Dropping it stops accepting and closes connections.
pub struct SyncServer {
    local_addr: SocketAddr,
    events: mpsc::UnboundedReceiver<ServerEvent>,
    control: mpsc::UnboundedSender<Control>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl SyncServer {
    /// Listen on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (event_tx, events) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn(accept_loop(listener, conn_tx, config.admission));
        let state = tokio::spawn(state_loop(
            config,
            conn_rx,
            control_rx,
            event_tx,
            counters.clone(),
        ));
        Ok(Self {
            local_addr,
            events,
            control,
            tasks: vec![accept, state],
            counters,
        })
    }

    /// Connections refused so far, by why.
    pub fn admission_stats(&self) -> AdmissionStats {
        let c = &self.counters;
        AdmissionStats {
            refused: c.refused.load(Ordering::Relaxed),
            oversize: c.oversize.load(Ordering::Relaxed),
            hello_timeouts: c.hello_timeouts.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
        }
    }

    /// The address instances connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next thing that happened; `None` once the server has stopped.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
    }

    /// Add a peer that is not an instance (a tracker, id 0) to the peer
    /// table the start hands out. Call it before any instance registers.
    pub fn add_peer(&self, peer: PeerEntry) {
        let _ = self.control.send(Control::Peer(peer));
    }

    /// Tell every connected process to stop now.
    pub fn abort_all(&self, reason: impl Into<String>) {
        let _ = self.control.send(Control::Abort(reason.into()));
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type ConnId = u64;

struct NewConn {
    id: ConnId,
    peer: SocketAddr,
    to_conn: mpsc::UnboundedSender<Outgoing>,
    from_conn: mpsc::UnboundedReceiver<FromConn>,
}

/// Connections that have not sent their hello line yet, oldest first, each
/// with the means to close it.
type Waiting = Arc<Mutex<BTreeMap<ConnId, oneshot::Sender<()>>>>;

/// A connection's place among the waiting; leaving (hello read, or closed)
/// removes it.
struct WaitingPlace {
    id: ConnId,
    waiting: Waiting,
}

impl Drop for WaitingPlace {
    fn drop(&mut self) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

async fn accept_loop(
    listener: TcpListener,
    conns: mpsc::UnboundedSender<NewConn>,
    admission: Admission,
) {
    let mut next_id: ConnId = 0;
    let waiting: Waiting = Arc::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait before trying
                // again rather than spin.
                tracing::warn!("the sync server cannot accept a connection: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let (to_conn, out_rx) = mpsc::unbounded_channel();
        let (in_tx, from_conn) = mpsc::unbounded_channel();
        let (evict_tx, evict) = oneshot::channel();
        let evicted: Vec<oneshot::Sender<()>> = {
            let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            while w.len() >= admission.max_waiting.max(1) {
                match w.pop_first() {
                    Some((_, tx)) => out.push(tx),
                    None => break,
                }
            }
            w.insert(next_id, evict_tx);
            out
        };
        for tx in evicted {
            let _ = tx.send(());
        }
        let place = WaitingPlace {
            id: next_id,
            waiting: waiting.clone(),
        };
        tokio::spawn(connection(stream, out_rx, in_tx, admission, place, evict));
        let new = NewConn {
            id: next_id,
            peer,
            to_conn,
            from_conn,
        };
        if conns.send(new).is_err() {
            return;
        }
    }
}

/// The read buffer a connection starts with (a hello of a few ids fits).
const FIRST_BUFFER: usize = 1024;

/// How long a refusal line may take to leave before the socket is closed
/// anyway.
const REFUSAL_SEND: Duration = Duration::from_secs(1);

/// Shuttle lines between one socket and the state task. Until its hello
/// line arrives the connection holds `place` among the waiting: it is
/// closed when `evict` fires, when `admission.hello_timeout` passes, or
/// when its first line grows beyond `admission.hello_line`.
async fn connection(
    stream: TcpStream,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    incoming: mpsc::UnboundedSender<FromConn>,
    admission: Admission,
    place: WaitingPlace,
    mut evict: oneshot::Receiver<()>,
) {
    let mut framed = Framed::with_capacity(
        stream,
        LinesCodec::new_with_max_length(admission.hello_line),
        FIRST_BUFFER.min(admission.hello_line.max(1)),
    );
    let mut place = Some(place);
    let hello_deadline = tokio::time::sleep(admission.hello_timeout);
    tokio::pin!(hello_deadline);
    loop {
        let rejection = tokio::select! {
            biased;
            out = outgoing.recv() => {
                let Some(out) = out else { return };
                if out.welcome {
                    // Admitted: long lines (a long error in a done report) are fine now.
                    *framed.codec_mut() = LinesCodec::new_with_max_length(MAX_LINE);
                }
                if framed.send(&*out.line).await.is_err() || out.last {
                    let _ = incoming.send(FromConn::Closed);
                    return;
                }
                continue;
            }
            line = framed.next() => {
                let msg = match line {
                    Some(Ok(line)) if line.trim().is_empty() => continue,
                    Some(Ok(line)) => match serde_json::from_str::<ClientMsg>(&line) {
                        Ok(msg) => FromConn::Line(msg),
                        Err(err) => FromConn::Garbage(format!("not a sync message: {err}")),
                    },
                    Some(Err(LinesCodecError::MaxLineLengthExceeded)) if place.is_some() => {
                        FromConn::Rejected(Rejection::Oversize(admission.hello_line))
                    }
                    Some(Err(err)) => FromConn::Garbage(format!("unreadable line: {err}")),
                    None => FromConn::Closed,
                };
                // A first line has arrived (or the connection ended): no
                // longer waiting for a hello.
                place = None;
                match msg {
                    FromConn::Rejected(why) => why,
                    msg => {
                        let closed = matches!(msg, FromConn::Closed);
                        if incoming.send(msg).is_err() || closed {
                            return;
                        }
                        continue;
                    }
                }
            }
            _ = &mut hello_deadline, if place.is_some() => {
                Rejection::HelloTimeout(admission.hello_timeout)
            }
            Ok(()) = &mut evict, if place.is_some() => Rejection::Evicted(admission.max_waiting),
        };
        // Refused before a hello: say why, close, and let the state count it.
        // Nothing more is read from this socket.
        drop(place.take());
        let refusal = Outgoing::new(&ServerMsg::Refused {
            reason: rejection.reason(),
        });
        let _ = tokio::time::timeout(REFUSAL_SEND, framed.send(&*refusal.line)).await;
        let _ = incoming.send(FromConn::Rejected(rejection));
        return;
    }
}

struct Registered {
    peer: SocketAddr,
    to_conn: mpsc::UnboundedSender<Outgoing>,
    /// None until the process said hello.
    ids: Option<Vec<u32>>,
}

struct State {
    config: ServerConfig,
    events: mpsc::UnboundedSender<ServerEvent>,
    counters: Arc<Counters>,
    refusals: RefusalLog,
    conns: HashMap<ConnId, Registered>,
    owner: BTreeMap<u32, ConnId>,
    ready: BTreeMap<u32, PeerEntry>,
    done: BTreeMap<u32, ()>,
    started: bool,
    /// Commands fired, as each process last reported.
    commands: HashMap<ConnId, u64>,
    /// Peers that are not instances (a tracker), first in the peer table.
    extra: Vec<PeerEntry>,
}

/// Which refusals are reported one by one: the first [`LOG_BURST`] of each
/// window.
struct RefusalLog {
    window: Duration,
    window_start: Instant,
    reported: u32,
    unreported: u64,
}

impl RefusalLog {
    /// Count one refusal; whether to report it on its own.
    fn report(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= self.window && self.unreported == 0 {
            self.window_start = now;
            self.reported = 0;
        }
        if self.reported < LOG_BURST {
            self.reported += 1;
            true
        } else {
            self.unreported += 1;
            false
        }
    }

    /// At a window's end, the refusals not reported one by one (then a new
    /// window starts).
    fn take_unreported(&mut self, now: Instant) -> Option<u64> {
        if self.unreported == 0 || now.duration_since(self.window_start) < self.window {
            return None;
        }
        self.window_start = now;
        self.reported = 0;
        Some(std::mem::take(&mut self.unreported))
    }
}

async fn state_loop(
    config: ServerConfig,
    mut new_conns: mpsc::UnboundedReceiver<NewConn>,
    mut control: mpsc::UnboundedReceiver<Control>,
    events: mpsc::UnboundedSender<ServerEvent>,
    counters: Arc<Counters>,
) {
    let report_window = config.admission.report_window;
    let mut state = State {
        config,
        events,
        counters,
        refusals: RefusalLog {
            window: report_window,
            window_start: Instant::now(),
            reported: 0,
            unreported: 0,
        },
        conns: HashMap::new(),
        owner: BTreeMap::new(),
        ready: BTreeMap::new(),
        done: BTreeMap::new(),
        started: false,
        commands: HashMap::new(),
        extra: Vec::new(),
    };
    // Every connection's receiver is merged into one stream tagged with its id.
    let (merged_tx, mut merged) = mpsc::unbounded_channel::<(ConnId, FromConn)>();
    let mut tick = tokio::time::interval(state.refusals.window.min(Duration::from_secs(1)));
    loop {
        tokio::select! {
            Some(conn) = new_conns.recv() => {
                state.conns.insert(conn.id, Registered { peer: conn.peer, to_conn: conn.to_conn, ids: None });
                let tx = merged_tx.clone();
                let mut from = conn.from_conn;
                let id = conn.id;
                tokio::spawn(async move {
                    while let Some(msg) = from.recv().await {
                        if tx.send((id, msg)).is_err() { return; }
                    }
                    // However the connection's task ended, the state forgets it.
                    let _ = tx.send((id, FromConn::Closed));
                });
            }
            _ = tick.tick() => {
                if let Some(count) = state.refusals.take_unreported(Instant::now()) {
                    let window = state.refusals.window;
                    state.emit(ServerEvent::RefusalsNotReported { count, window });
                }
            }
            Some((conn, msg)) = merged.recv() => state.on_message(conn, msg),
            Some(control) = control.recv() => match control {
                Control::Abort(reason) => {
                    let out = Outgoing::new(&ServerMsg::Abort { reason });
                    for reg in state.conns.values() {
                        let _ = reg.to_conn.send(out.clone());
                    }
                }
                Control::Peer(peer) => {
                    state.extra.push(peer);
                }
            },
            else => return,
        }
    }
}

impl State {
    fn emit(&self, event: ServerEvent) {
        let _ = self.events.send(event);
    }

    fn refuse(&mut self, conn: ConnId, reason: String) {
        if let Some(reg) = self.conns.get(&conn) {
            let _ = reg.to_conn.send(Outgoing::new(&ServerMsg::Refused {
                reason: reason.clone(),
            }));
            self.note_refusal(reg.peer, reason);
        }
        self.forget(conn);
    }

    /// Count a refusal and report it, unless too many were reported lately.
    fn note_refusal(&mut self, peer: SocketAddr, reason: String) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        if self.refusals.report(Instant::now()) {
            self.emit(ServerEvent::Refused { peer, reason });
        }
    }

    /// Drop a connection; its instances that never said done are reported.
    fn forget(&mut self, conn: ConnId) {
        let Some(reg) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(all) = reg.ids {
            let missing: Vec<u32> = all
                .iter()
                .copied()
                .filter(|id| !self.done.contains_key(id))
                .collect();
            self.emit(ServerEvent::Disconnected { ids: missing, all });
        }
    }

    fn on_message(&mut self, conn: ConnId, msg: FromConn) {
        let registered = match self.conns.get(&conn) {
            Some(reg) => reg.ids.is_some(),
            None => return,
        };
        match msg {
            FromConn::Closed => self.forget(conn),
            FromConn::Garbage(reason) => self.refuse(conn, reason),
            FromConn::Rejected(why) => {
                let counter = match why {
                    Rejection::Oversize(_) => &self.counters.oversize,
                    Rejection::HelloTimeout(_) => &self.counters.hello_timeouts,
                    Rejection::Evicted(_) => &self.counters.evicted,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(peer) = self.conns.get(&conn).map(|r| r.peer) {
                    self.note_refusal(peer, why.reason());
                }
                self.forget(conn);
            }
            FromConn::Line(ClientMsg::Hello {
                token,
                host,
                node,
                pid,
                ids,
                count,
            }) => {
                if registered {
                    return self.refuse(conn, "hello sent twice".into());
                }
                if token != self.config.token {
                    return self.refuse(
                        conn,
                        "wrong run token: this sync server belongs to another run".into(),
                    );
                }
                match self.assign_ids(ids, count) {
                    Ok(ids) => {
                        for &id in &ids {
                            self.owner.insert(id, conn);
                        }
                        let reg = self.conns.get_mut(&conn).expect("checked above");
                        reg.ids = Some(ids.clone());
                        let _ = reg.to_conn.send(Outgoing::new(&ServerMsg::Welcome {
                            ids: ids.clone(),
                            instances: self.config.instances,
                        }));
                        self.emit(ServerEvent::Registered {
                            ids,
                            host,
                            node,
                            pid,
                        });
                    }
                    Err(reason) => self.refuse(conn, reason),
                }
            }
            FromConn::Line(_) if !registered => {
                self.refuse(conn, "the first message must be a hello".into())
            }
            FromConn::Line(ClientMsg::Ready {
                id,
                addr,
                public_key,
            }) => {
                if self.owner.get(&id) != Some(&conn) {
                    return self.refuse(conn, format!("instance {id} is not yours to report"));
                }
                if self.started {
                    return;
                }
                self.ready.insert(
                    id,
                    PeerEntry {
                        id,
                        addr,
                        public_key,
                    },
                );
                self.emit(ServerEvent::Ready { id });
                if self.ready.len() == self.config.instances as usize {
                    self.start();
                }
            }
            FromConn::Line(ClientMsg::Progress { commands }) => {
                self.commands.insert(conn, commands);
                self.emit(ServerEvent::Progress {
                    commands: self.commands.values().sum(),
                });
            }
            FromConn::Line(ClientMsg::Done {
                id,
                status,
                exit_code,
                error,
            }) => {
                if self.owner.get(&id) != Some(&conn) {
                    return self.refuse(conn, format!("instance {id} is not yours to report"));
                }
                if self.done.insert(id, ()).is_none() {
                    self.emit(ServerEvent::Done {
                        id,
                        status,
                        exit_code,
                        error,
                    });
                }
            }
        }
    }

    fn assign_ids(&self, wanted: Vec<u32>, count: u32) -> Result<Vec<u32>, String> {
        let n = self.config.instances;
        if !wanted.is_empty() {
            let mut seen = BTreeSet::new();
            for &id in &wanted {
                if id == 0 || id > n {
                    return Err(format!("instance id {id} is outside 1..={n}"));
                }
                if !seen.insert(id) {
                    return Err(format!("instance id {id} is listed twice in the hello"));
                }
                if self.owner.contains_key(&id) {
                    return Err(format!("instance id {id} is already registered"));
                }
            }
            return Ok(wanted);
        }
        let free: Vec<u32> = (1..=n)
            .filter(|id| !self.owner.contains_key(id))
            .take(count as usize)
            .collect();
        if count == 0 || free.len() < count as usize {
            return Err(format!(
                "asked for {count} instance ids but only {} of {n} are free",
                free.len()
            ));
        }
        Ok(free)
    }

    fn start(&mut self) {
        self.started = true;
        let start = SystemTime::now() + self.config.start_delay;
        let start_unix_ms = start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let peers: Vec<PeerEntry> = self
            .extra
            .iter()
            .chain(self.ready.values())
            .cloned()
            .collect();
        let info = StartInfo {
            start_unix_ms,
            peers: peers.clone(),
        };
        let out = Outgoing::new(&ServerMsg::Start(info));
        for reg in self.conns.values() {
            if reg.ids.is_some() {
                let _ = reg.to_conn.send(out.clone());
            }
        }
        self.emit(ServerEvent::Started {
            start_unix_ms,
            peers,
        });
    }
}
