//! An instance process (`peerlab instance`): runs some of a run's instances
//! over real UDP sockets, meeting the others through the sync server.
//!
//! Steps: read the run's record; load the modules and resolve the
//! scenario; register with the sync server; create each instance (bind its
//! socket, run `@!` and `@@`); report ready; wait at the barrier; drive
//! every instance on its own task until it finishes or the run is aborted;
//! report each end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlab_dispersy::udp::{UdpDriver, Wake};
use peerlab_dispersy::{self as dispersy, PeerDirectory, PublicKey};
use tokio::sync::{mpsc, watch};

use super::capture::Capture;
use super::instance::{EarlyPhase, Instance, Outcome, Shared, overlay_config};
use super::record::create_record;
use super::resources::ResourceLog;
use peerlab_run::layout as folder;
use peerlab_run::{EndStatus, InstancePaths, RunRecord};
use peerlab_sync::client::{Hello, SyncClient};
use peerlab_sync::protocol::{ClientMsg, ServerMsg};

/// What the runner told this process.
#[derive(Debug, Clone)]
pub struct ProcessArgs {
    pub run_dir: PathBuf,
    pub sync: SocketAddr,
    pub token: String,
    pub host: String,
    pub node: u32,
    pub process: u32,
    pub ids: Vec<u32>,
    /// The address instances bind and advertise.
    pub bind_ip: IpAddr,
}

/// Why an instance process could not run its instances. Each says what
/// failed and for which instance; the runner reports it with the process's
/// `.err` file.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot register with the sync server: {0}")]
    Register(#[source] peerlab_sync::client::SyncError),
    #[error(
        "instance {id}: cannot bind a UDP socket on {ip}: {source} (each instance needs one open file: if this is 'too many open files', raise `ulimit -n` or use fewer instances per process)"
    )]
    Bind {
        id: u32,
        ip: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {id}: cannot create its output files: {source}")]
    Outputs {
        id: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("the run did not start: {0}")]
    NotStarted(#[source] peerlab_sync::client::SyncError),
    #[error("the sync server's peer table: instance {id} reported {why}")]
    PeerTable { id: u32, why: String },
    #[error("the sync server's peer table is not usable: {0}")]
    Directory(String),
}

/// Packets the process-wide store pool remembers (a few hundred bytes each).
const STORE_POOL_CAPACITY: usize = 1 << 16;

/// How long to wait for the sync server to accept us.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Run this process's instances to their end. Returns whether every
/// instance finished cleanly.
pub async fn run(
    args: ProcessArgs,
    shared: Arc<Shared>,
    record: &RunRecord,
) -> Result<bool, ProcessError> {
    let mut client = SyncClient::connect(
        args.sync,
        Hello {
            token: args.token.clone(),
            host: args.host.clone(),
            node: args.node,
            ids: args.ids.clone(),
            count: args.ids.len() as u32,
        },
        CONNECT_TIMEOUT,
    )
    .await
    .map_err(ProcessError::Register)?;
    let ids = client.ids.clone();

    let mut resources = ResourceLog::create_or_warn(
        &args.run_dir.join(folder::process_resources(
            &args.host,
            args.node,
            args.process,
        )),
        ids.clone(),
    );

    // Instances of one process that verify every signature themselves still
    // keep one copy of each stored packet between them (memory only: every
    // copy is verified; see peerlab_dispersy::pool).
    let pool = shared.pool.clone().or_else(|| {
        (ids.len() > 1).then(|| Arc::new(dispersy::SharedPool::sharing_only(STORE_POOL_CAPACITY)))
    });
    // Which callback each instance runs, on disk for the supervisor (a hung
    // or killed process cannot tell). Without it the run goes on, unnamed.
    let mut slots = super::inflight::create(
        &args.run_dir.join(folder::process_inflight(
            &args.host,
            args.node,
            args.process,
        )),
        &ids,
    )
    .map(|s| s.into_iter().map(Some).collect::<Vec<_>>())
    .unwrap_or_else(|_| ids.iter().map(|_| None).collect());
    let now = Instant::now();
    // `instance_port_base`: fixed ports for firewalled clusters (else a free one each).
    let keys = peerlab_lang::RuntimeKeys::from_strings(&record.config).0;
    let port_base = keys.instance_port_base;
    let mut instances = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let driver = UdpDriver::bind(SocketAddr::new(args.bind_ip, port_of(port_base, id)))
            .await
            .map_err(|source| ProcessError::Bind {
                id,
                ip: args.bind_ip,
                source,
            })?;
        let addr = driver.local_addr().map_err(|source| ProcessError::Bind {
            id,
            ip: args.bind_ip,
            source,
        })?;
        let paths = InstancePaths::new(&args.host, args.node, id);
        let rec = create_record(&args.run_dir, &paths, slots[i].take())
            .map_err(|source| ProcessError::Outputs { id, source })?;
        let overlay = overlay_config(&shared, id, addr, pool.clone());
        let mut inst = Instance::new(id, shared.clone(), overlay, rec, now);
        // A user-space driver cannot map addresses: it filters (instance/src/nat.rs).
        inst.emulate_nat_filter();
        inst.run_phase(Instant::now(), EarlyPhase::Load);
        inst.run_phase(Instant::now(), EarlyPhase::Setup);
        let public_key = inst.public_key_hex();
        // Addresses are outputs: the instance's own events say where it listened.
        let mut event = peerlab_run::EventLine::new(0.0, peerlab_run::schema::event_kind::ADDRESS);
        let addr_text = addr.to_string();
        event.text = Some(addr_text.as_str().into());
        event.key = Some(public_key.as_str().into());
        inst.record_mut().event(&event);
        let mut capture = Capture::new(&args.run_dir, &paths.capture, addr, keys.capture_limit);
        capture.follow(inst.capturing());
        client.send(&ClientMsg::Ready {
            id,
            addr: addr_text.clone(),
            public_key,
        });
        instances.push((inst, driver, capture));
    }

    let start = match client.wait_start().await {
        Ok(start) => start,
        Err(err) => {
            for (mut inst, _, mut capture) in instances {
                inst.shut_down(Instant::now(), EndStatus::Interrupted);
                capture.end(inst.record_mut());
            }
            return Err(ProcessError::NotStarted(err));
        }
    };
    let directory = Arc::new(build_directory(&start.peers)?);
    let zero = instant_of_unix_ms(start.start_unix_ms);

    let (abort_tx, abort_rx) = watch::channel(None::<String>);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u32, Outcome)>();
    let alone = ids.len() == 1;
    // Scenario commands fired by this process's instances, for the runner's progress line.
    let fired = Arc::new(AtomicU64::new(0));
    for (mut inst, driver, mut capture) in instances {
        inst.start(Instant::now(), zero, directory.clone());
        let abort = abort_rx.clone();
        let done = done_tx.clone();
        let fired = fired.clone();
        tokio::spawn(async move {
            let id = inst.id();
            let outcome = drive(&mut inst, driver, &mut capture, abort, alone, &fired).await;
            capture.end(inst.record_mut());
            let _ = done.send((id, outcome));
        });
    }
    let mut reported = 0;
    let mut server_gone = false;
    drop(done_tx);

    let mut remaining = ids.len();
    let mut all_ok = true;
    let mut tick = tokio::time::interval(resources_interval(record));
    let process_zero = zero;
    while remaining > 0 {
        tokio::select! {
            Some((id, outcome)) = done_rx.recv() => {
                remaining -= 1;
                let (status, error) = outcome.status();
                all_ok &= status == EndStatus::Finished;
                client.send(&ClientMsg::Done { id, status, exit_code: None, error });
            }
            msg = client.recv(), if !server_gone => {
                let reason = match msg {
                    Ok(ServerMsg::Abort { reason }) => reason,
                    Err(e) => e.to_string(),
                    Ok(_) => continue,
                };
                // An abort closes the connection: stop listening, or every
                // further recv returns at once and the loop spins.
                server_gone = true;
                let _ = abort_tx.send(Some(reason));
                all_ok = false;
            }
            _ = tick.tick() => {
                if let Some(r) = resources.as_mut() {
                    let t = signed_secs(Instant::now(), process_zero);
                    r.record(t);
                }
                let commands = fired.load(Ordering::Relaxed);
                if commands != reported {
                    reported = commands;
                    client.send(&ClientMsg::Progress { commands });
                }
            }
        }
    }
    if let Some(r) = resources.as_mut() {
        r.record(signed_secs(Instant::now(), process_zero));
    }
    client.close().await;
    Ok(all_ok)
}

/// The UDP port instance `id` binds: `base + id - 1`, or 0 (a free one).
fn port_of(base: Option<u16>, id: u32) -> u16 {
    base.and_then(|b| u16::try_from(u32::from(b) + id - 1).ok())
        .unwrap_or(0)
}

/// Drive one instance over its socket until it finishes or the run aborts.
async fn drive(
    inst: &mut Instance,
    mut driver: UdpDriver,
    cap: &mut Capture,
    mut abort: watch::Receiver<Option<String>>,
    alone: bool,
    fired: &AtomicU64,
) -> Outcome {
    let mut counted = inst.commands_fired();
    let mut delayed: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; dispersy::wire::MAX_DATAGRAM.max(2048)];
    loop {
        if inst.crashed() {
            // No goodbye: nothing more is sent, no module hears of it.
            inst.record_mut().flush();
            if alone {
                cap.end(inst.record_mut());
                // The process is the instance: die as a crashed process does.
                // SAFETY: signalling ourselves has no memory-safety preconditions.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
            return Outcome::Crashed;
        }
        cap.follow(inst.capturing());
        flush(inst, &mut driver, cap, &mut delayed, &mut seq, &mut buf);
        if inst.finished() {
            break;
        }
        cap.flush_if_due();
        let held = delayed
            .peek()
            .map(|Reverse(d)| d.at.checked_sub(HOLD_SLACK).unwrap_or(d.at));
        let deadline = [inst.poll_timeout(), held].into_iter().flatten().min();
        tokio::select! {
            wake = driver.wait(deadline) => match wake {
                Ok(Wake::Readable) => {
                    let now = Instant::now();
                    let got = driver.recv_with(|batch| {
                        inst.handle_datagrams(now, batch.inspect(|(from, bytes)| cap.wire_received(*from, bytes)))
                    });
                    if let Err(e) = got {
                        return socket_failed(inst, &e);
                    }
                }
                // The deadline passed: `handle_timeout` below fires what is due.
                Ok(Wake::Timeout) => {}
                Err(e) => {
                    return socket_failed(inst, &e);
                }
            },
            _ = abort.changed() => {
                let why = abort.borrow().clone().unwrap_or_default();
                return inst.abort(
                    Instant::now(),
                    EndStatus::Interrupted,
                    &format!("peerlab: stopped: {why}"),
                    Outcome::Failed(format!("stopped: {why}")),
                );
            }
        }
        inst.handle_timeout(Instant::now());
        let now_fired = inst.commands_fired();
        if now_fired != counted {
            fired.fetch_add(now_fired - counted, Ordering::Relaxed);
            counted = now_fired;
        }
    }
    let outcome = inst.end(Instant::now());
    flush(inst, &mut driver, cap, &mut delayed, &mut seq, &mut buf);
    outcome
}

/// The instance's socket failed: it ends, failed, saying so in its `.err`.
fn socket_failed(inst: &mut Instance, e: &std::io::Error) -> Outcome {
    inst.abort(
        Instant::now(),
        EndStatus::Failed,
        &format!("error: the instance's socket failed: {e}"),
        Outcome::Failed(format!("socket error: {e}")),
    )
}

/// How early a held datagram may leave: tokio's timer wakes on the first
/// millisecond tick at or after a deadline, so the driver wakes half a
/// tick before a datagram's instant and sends what is due within half a
/// tick: it leaves within about ±0.5 ms of its instant (plus scheduling)
/// instead of up to 1 ms late (docs/network.md, Accuracy).
const HOLD_SLACK: Duration = Duration::from_micros(500);

/// A datagram held back by `set_network delay=…`, the topology's latency
/// or the upload link.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delayed {
    at: Instant,
    seq: u64,
    dest: SocketAddr,
    bytes: Vec<u8>,
}

/// Send what the instance queued, already through its fault model.
/// Without network faults the driver's batched flush (with its would-block
/// handling) sends it; with them, each datagram is sent at once or held
/// until its delay passes. The capture sees each as it is handed to the socket.
fn flush(
    inst: &mut Instance,
    driver: &mut UdpDriver,
    cap: &mut Capture,
    delayed: &mut BinaryHeap<Reverse<Delayed>>,
    seq: &mut u64,
    buf: &mut [u8],
) {
    let now = Instant::now();
    while delayed
        .peek()
        .is_some_and(|Reverse(d)| d.at <= now + HOLD_SLACK)
    {
        let Reverse(d) = delayed.pop().expect("peeked");
        cap.wire_sent(d.dest, &d.bytes);
        driver.send_now(d.dest, &d.bytes);
    }
    if inst.sends_at_once() {
        // Nothing is dropped or delayed: send in batches.
        driver.flush_with(|buf| {
            let t = inst.poll_transmit(buf)?;
            cap.wire_sent(t.destination, &buf[..t.size]);
            Some((t.destination, t.size))
        });
        return;
    }
    // Delays count from when the instance made the datagrams, not from
    // now: the time its callbacks took is not added to every link.
    let made = inst.now();
    while let Some(t) = inst.poll_transmit(buf) {
        if t.delay.is_zero() || made + t.delay <= now {
            cap.wire_sent(t.destination, &buf[..t.size]);
            driver.send_now(t.destination, &buf[..t.size]);
        } else {
            *seq += 1;
            delayed.push(Reverse(Delayed {
                at: made + t.delay,
                seq: *seq,
                dest: t.destination,
                bytes: buf[..t.size].to_vec(),
            }));
        }
    }
}

/// How often the process's resources are sampled: once a second, or what
/// the config key `resources_interval` says (seconds, 0.01 to 60; `peerlab
/// bench` samples faster to measure CPU over a short protocol).
fn resources_interval(record: &RunRecord) -> Duration {
    // Typed by lang (checked when the run was planned); one it would not
    // take falls back to the default, as a missing one does.
    peerlab_lang::RuntimeKeys::from_strings(&record.config)
        .0
        .resources_interval
        .unwrap_or(Duration::from_secs(1))
}

fn build_directory(peers: &[peerlab_sync::PeerEntry]) -> Result<PeerDirectory, ProcessError> {
    let mut rows = Vec::with_capacity(peers.len());
    for p in peers {
        let bad = |why: String| ProcessError::PeerTable { id: p.id, why };
        let addr: SocketAddr = p
            .addr
            .parse()
            .map_err(|e| bad(format!("a bad address {:?}: {e}", p.addr)))?;
        let bytes = dispersy::crypto::unhex(&p.public_key)
            .ok_or_else(|| bad("a public key that is not hex".into()))?;
        let key = PublicKey::from_bin(&bytes).map_err(|e| bad(format!("a bad public key: {e}")))?;
        rows.push((addr, key, p.id));
    }
    PeerDirectory::new(rows).map_err(|e| ProcessError::Directory(e.to_string()))
}

/// The local instant at which the wall clock reads `unix_ms`.
fn instant_of_unix_ms(unix_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let now = Instant::now();
    if unix_ms >= now_ms {
        now + Duration::from_millis(unix_ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - unix_ms))
            .unwrap_or(now)
    }
}

fn signed_secs(now: Instant, zero: Instant) -> f64 {
    if now >= zero {
        now.duration_since(zero).as_secs_f64()
    } else {
        -zero.duration_since(now).as_secs_f64()
    }
}
