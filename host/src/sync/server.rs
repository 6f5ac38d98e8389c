//! The sync server: admits instance processes holding the run's token,
//! hands out instance ids, holds the barrier, and reports what happens as
//! [`ServerEvent`]s to the runner.
//!
//! One task per connection parses lines; one state task owns every decision
//! (ids, barrier, start time), so there are no locks.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LinesCodec};

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
}

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
    /// A connection was refused (wrong token, bad ids, protocol error).
    Refused { peer: SocketAddr, reason: String },
    /// One instance reported ready.
    Ready { id: u32 },
    /// Every instance was ready; the start time was sent to all.
    Started { start_unix_ms: u64 },
    /// One instance reported its end.
    Done {
        id: u32,
        status: String,
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
}

/// A serialised server message; shared so that one peer table is encoded
/// once however many processes receive it.
#[derive(Clone)]
struct Outgoing {
    line: Arc<str>,
    /// Close the connection after sending.
    last: bool,
}

impl Outgoing {
    fn new(msg: &ServerMsg) -> Self {
        Self {
            line: serde_json::to_string(msg)
                .expect("server messages serialise")
                .into(),
            last: matches!(msg, ServerMsg::Refused { .. } | ServerMsg::Abort { .. }),
        }
    }
}

enum FromConn {
    Line(ClientMsg),
    Garbage(String),
    Closed,
}

/// A running sync server. Dropping it stops accepting and closes connections.
pub struct SyncServer {
    local_addr: SocketAddr,
    events: mpsc::UnboundedReceiver<ServerEvent>,
    control: mpsc::UnboundedSender<Control>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SyncServer {
    /// Listen on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (event_tx, events) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        let accept = tokio::spawn(accept_loop(listener, conn_tx));
        let state = tokio::spawn(state_loop(config, conn_rx, control_rx, event_tx));
        Ok(Self {
            local_addr,
            events,
            control,
            tasks: vec![accept, state],
        })
    }

    /// The address instances connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next thing that happened; `None` once the server has stopped.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
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

async fn accept_loop(listener: TcpListener, conns: mpsc::UnboundedSender<NewConn>) {
    let mut next_id: ConnId = 0;
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
        tokio::spawn(connection(stream, out_rx, in_tx));
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

/// Shuttle lines between one socket and the state task.
async fn connection(
    stream: TcpStream,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    incoming: mpsc::UnboundedSender<FromConn>,
) {
    let mut framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    loop {
        tokio::select! {
            line = framed.next() => {
                let msg = match line {
                    Some(Ok(line)) if line.trim().is_empty() => continue,
                    Some(Ok(line)) => match serde_json::from_str::<ClientMsg>(&line) {
                        Ok(msg) => FromConn::Line(msg),
                        Err(err) => FromConn::Garbage(format!("not a sync message: {err}")),
                    },
                    Some(Err(err)) => FromConn::Garbage(format!("unreadable line: {err}")),
                    None => FromConn::Closed,
                };
                let closed = matches!(msg, FromConn::Closed);
                if incoming.send(msg).is_err() || closed {
                    return;
                }
            }
            out = outgoing.recv() => {
                let Some(out) = out else { return };
                if framed.send(&*out.line).await.is_err() || out.last {
                    let _ = incoming.send(FromConn::Closed);
                    return;
                }
            }
        }
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
    conns: HashMap<ConnId, Registered>,
    owner: BTreeMap<u32, ConnId>,
    ready: BTreeMap<u32, PeerEntry>,
    done: BTreeMap<u32, ()>,
    started: bool,
    /// Commands fired, as each process last reported.
    commands: HashMap<ConnId, u64>,
}

async fn state_loop(
    config: ServerConfig,
    mut new_conns: mpsc::UnboundedReceiver<NewConn>,
    mut control: mpsc::UnboundedReceiver<Control>,
    events: mpsc::UnboundedSender<ServerEvent>,
) {
    let mut state = State {
        config,
        events,
        conns: HashMap::new(),
        owner: BTreeMap::new(),
        ready: BTreeMap::new(),
        done: BTreeMap::new(),
        started: false,
        commands: HashMap::new(),
    };
    // Every connection's receiver is merged into one stream tagged with its id.
    let (merged_tx, mut merged) = mpsc::unbounded_channel::<(ConnId, FromConn)>();
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
                });
            }
            Some((conn, msg)) = merged.recv() => state.on_message(conn, msg),
            Some(Control::Abort(reason)) = control.recv() => {
                let out = Outgoing::new(&ServerMsg::Abort { reason });
                for reg in state.conns.values() {
                    let _ = reg.to_conn.send(out.clone());
                }
            }
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
            self.emit(ServerEvent::Refused {
                peer: reg.peer,
                reason,
            });
        }
        self.forget(conn);
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
            for &id in &wanted {
                if id == 0 || id > n {
                    return Err(format!("instance id {id} is outside 1..={n}"));
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
        let info = StartInfo {
            start_unix_ms,
            peers: self.ready.values().cloned().collect(),
        };
        let out = Outgoing::new(&ServerMsg::Start(info));
        for reg in self.conns.values() {
            if reg.ids.is_some() {
                let _ = reg.to_conn.send(out.clone());
            }
        }
        self.emit(ServerEvent::Started { start_unix_ms });
    }
}
