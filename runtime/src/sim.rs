//! The simulated runner's driver: every instance of a run in this process,
//! on a virtual clock, over the simulated network (`peerlab_netsim`'s
//! [`Network`] of [`LinkModel`] links: delay, jitter, loss, MTU; the same
//! network the overlay's tests run bare cores on).
//!
//! The instances are the same [`Instance`] state machines the UDP driver
//! runs (same modules, plugins and overlay core); only the carriage of
//! datagrams and the clock differ. Time jumps from event to event, so a
//! two-minute scenario takes as long as its work does. Everything random
//! is seeded from the run seed, so the same seed gives the same outputs.
//!
//! Must not: read the clock (one `Instant` is taken as the origin and every
//! later time is origin + virtual offset), sleep, or touch a socket. The one
//! exception is the progress callback's pacing, which reads the wall clock
//! but never feeds anything back into the simulation.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use peerlab_dispersy::{PeerDirectory, wire::MAX_DATAGRAM};
use peerlab_netsim::{Event, Network, Sent};

use super::capture::Capture;
use super::instance::{EarlyPhase, Instance, Outcome, Shared, derive_seed, overlay_config};
use super::record::create_record;
use peerlab_run::{EndStatus, InstancePaths};

/// The network every link has unless a fault changes it: the simulated
/// network's link model, one type for this driver and the overlay's
/// `SimNet` (default [`LinkModel::SIMULATED_RUN`]).
pub use peerlab_netsim::LinkModel;

/// What a simulation is told.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub host: String,
    pub node: u32,
    pub link: LinkModel,
    /// Virtual time between the setup phase and scenario time 0.
    pub start_delay: Duration,
    /// Virtual time after scenario time 0 at which remaining instances are stopped.
    pub limit: Duration,
    /// Set from outside (a stop signal) to end the simulation early: the
    /// instances still running are shut down as interrupted.
    pub stop: Arc<AtomicBool>,
}

/// How a simulation went.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// Each instance's end, by id; `None` when the time limit (or the stop
    /// flag) stopped it.
    pub outcomes: Vec<(u32, Option<Outcome>)>,
    /// Whether the stop flag ended the simulation before its end.
    pub interrupted: bool,
    /// Virtual time from scenario time 0 to the end.
    pub virtual_time: Duration,
    pub delivered: u64,
    pub lost: u64,
}

/// Where a simulation is, for the progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SimProgress {
    /// What the simulation is doing; `set_up` counts its instances so far
    /// while setting up, starting or ending.
    pub stage: SimStage,
    /// Instances created and through their setup phase (or, while
    /// starting and ending, through that stage).
    pub set_up: u32,
    pub instances: u32,
    /// Scenario time reached (negative before time 0); `None` while setting up.
    pub clock: Option<f64>,
    /// Instances that have ended (finished, failed or crashed).
    pub ended: u32,
    pub failed: u32,
    /// Scenario commands fired so far, over every instance.
    pub commands: u64,
    pub delivered: u64,
    pub lost: u64,
}

/// The stage a simulation is in, for the progress display: it is called
/// in every stage, so the line stays live at 100,000 instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SimStage {
    /// Creating the instances (keys, record files, modules, setup phase).
    #[default]
    SettingUp,
    /// Building the peer directory (a key decompressed per instance).
    Directory,
    /// Handing every instance the peer directory and its first deadline.
    Starting,
    /// The virtual clock runs.
    Running,
    /// The time limit or a stop: shutting down the instances still running.
    Ending,
}

/// How often (wall clock) the progress callback is called at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The address of instance `id` on the simulated network.
pub fn sim_addr(id: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000u32 + id);
    SocketAddr::V4(SocketAddrV4::new(ip, 7000))
}

struct Sim {
    /// The network; its wake-ups name the instance to wake.
    net: Network<usize>,
    /// Transmits of the instance being handled (kept to reuse its capacity).
    scratch: Vec<(SocketAddr, Duration, Vec<u8>)>,
    instances: Vec<Option<Instance>>,
    /// The deadline each instance is queued for (others in the queue are stale).
    scheduled: Vec<Option<Instant>>,
    buf: Vec<u8>,
    outcomes: Vec<(u32, Option<Outcome>)>,
    /// Datagrams handed to a live instance (the network's own count also
    /// has those that arrived after their instance ended).
    delivered: u64,
    /// Datagrams lost: on the network, or dropped by an instance's fault model.
    lost: u64,
    /// Commands fired by instances that have ended (the live ones are asked).
    commands_of_ended: u64,
    /// Each instance's packet capture (off unless it asks), timed in
    /// virtual time since `origin`.
    captures: Vec<Capture>,
    origin: Instant,
}

/// Move an instance's queued datagrams into `out`, each in a reused buffer
/// with the delay the fault model gave it; returns how many the fault
/// model dropped meanwhile (lost on the network).
fn drain_transmits(
    inst: &mut Instance,
    buf: &mut [u8],
    net: &mut Network<usize>,
    out: &mut Vec<(SocketAddr, Duration, Vec<u8>)>,
) -> u64 {
    let dropped = inst.dropped_by_faults();
    while let Some(t) = inst.poll_transmit(buf) {
        let mut data = net.buffer();
        data.extend_from_slice(&buf[..t.size]);
        out.push((t.destination, t.delay, data));
    }
    inst.dropped_by_faults() - dropped
}

/// Run every instance of `shared` to its end in virtual time, calling
/// `progress` now and then (at most every [`PROGRESS_EVERY`] of wall time).
pub fn run(
    shared: Arc<Shared>,
    run_dir: &Path,
    settings: &SimSettings,
    progress: &mut dyn FnMut(SimProgress),
) -> std::io::Result<SimReport> {
    let origin = Instant::now();
    let mut last_progress = Instant::now();
    let n = shared.instances;
    let mut sim = Sim {
        net: Network::new(
            derive_seed(shared.run_seed, 0, "simulated network"),
            settings.link,
        ),
        scratch: Vec::new(),
        instances: Vec::with_capacity(n as usize),
        scheduled: vec![None; n as usize],
        buf: vec![0; MAX_DATAGRAM.max(2048)],
        outcomes: Vec::new(),
        delivered: 0,
        lost: 0,
        commands_of_ended: 0,
        captures: Vec::with_capacity(n as usize),
        origin,
    };
    let capture_limit = peerlab_lang::RuntimeKeys::from_strings(&shared.config)
        .0
        .capture_limit;
    let stopped = || settings.stop.load(Ordering::Relaxed);
    // Behind NATs a member sends from its NAT's address, not its own.
    let nats = peerlab_lang::NatKeys::from_strings(&shared.config).0.any();
    let mut rows = Vec::with_capacity(n as usize);
    for id in 1..=n {
        if stopped() {
            break;
        }
        let addr = sim_addr(id);
        let paths = InstancePaths::new(&settings.host, settings.node, id);
        let mut record = create_record(run_dir, &paths, None)?;
        record.batch_statistics(super::record::SIMULATED_STATS_BATCH);
        let mut cfg = overlay_config(&shared, id, addr, shared.pool.clone());
        cfg.check_directory_address = !nats;
        let mut inst = Instance::new(id, shared.clone(), cfg, record, origin);
        inst.run_phase(origin, EarlyPhase::Load);
        inst.run_phase(origin, EarlyPhase::Setup);
        rows.push((addr, *inst.core().public_key(), id));
        let mut capture = Capture::new(run_dir, &paths.capture, addr, capture_limit);
        capture.follow(inst.capturing());
        sim.captures.push(capture);
        sim.net.attach(addr, sim.instances.len());
        let (nat, timeout) = inst.nat();
        if let Some(nat) = super::sim_nat::nat_box(id, nat, timeout) {
            sim.net.set_nat(sim.instances.len(), nat);
        }
        sim.instances.push(Some(inst));
        if id.is_multiple_of(64) && last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress(SimProgress {
                set_up: id,
                instances: n,
                ..SimProgress::default()
            });
        }
    }
    // A stop during the setup leaves the rest unstarted (and uncreated).
    let mut interrupted = stopped();
    let zero = origin + settings.start_delay;
    if !interrupted {
        let mut rows_done = 0u32;
        let rows = rows.into_iter().inspect(|_| {
            rows_done += 1;
            if rows_done.is_multiple_of(64) && last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                progress(staged(SimStage::Directory, rows_done, n));
            }
        });
        let directory =
            Arc::new(PeerDirectory::new(rows).map_err(|e| std::io::Error::other(e.to_string()))?);
        for i in 0..sim.instances.len() {
            if let Some(inst) = sim.instances[i].as_mut() {
                inst.start(origin, zero, directory.clone());
            }
            sim.after(i, origin);
            if i % 64 == 63 && last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                progress(staged(SimStage::Starting, i as u32 + 1, n));
            }
        }
    }
    let end = zero + settings.limit;
    let mut now = origin;
    let mut events: u64 = 0;
    while let Some(at) = sim.net.next_at() {
        if at > end || interrupted {
            break;
        }
        events += 1;
        if events.is_multiple_of(256) && stopped() {
            interrupted = true;
            break;
        }
        if events.is_multiple_of(4096) && last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress(sim.progress(n, at, zero));
        }
        let (at, event) = sim.net.pop().expect("peeked");
        now = at;
        match event {
            Event::Wake(i) => {
                if sim.scheduled[i] != Some(at) {
                    continue;
                }
                sim.scheduled[i] = None;
                if let Some(inst) = sim.instances[i].as_mut() {
                    inst.handle_timeout(at);
                }
                sim.after(i, at);
            }
            Event::Deliver { to, from, data } => {
                let Some(inst) = sim.instances[to].as_mut() else {
                    sim.net.recycle(data);
                    continue;
                };
                sim.delivered += 1;
                sim.captures[to].received(at.saturating_duration_since(origin), from, &data);
                inst.handle_datagram(at, from, &data);
                sim.net.recycle(data);
                sim.after(to, at);
            }
            Event::Filtered { to, .. } => {
                sim.lost += 1;
                if let Some(inst) = sim.instances[to].as_mut() {
                    inst.nat_filtered();
                }
            }
        }
    }
    // The time limit or a stop: whoever is still running is stopped.
    let (at, why) = if interrupted {
        (now, EndStatus::Interrupted)
    } else {
        (end.max(now), EndStatus::TimedOut)
    };
    for i in 0..sim.instances.len() {
        if i % 64 == 63 && last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress(staged(SimStage::Ending, i as u32, n));
        }
        if let Some(mut inst) = sim.instances[i].take() {
            inst.shut_down(at, why);
            sim.captures[i].end(inst.record_mut());
            sim.commands_of_ended += inst.commands_fired();
            sim.outcomes.push((inst.id(), None));
        }
    }
    let created = sim.instances.len() as u32;
    sim.outcomes.extend((created + 1..=n).map(|id| (id, None)));
    progress(sim.progress(n, at, zero));
    sim.outcomes.sort_by_key(|(id, _)| *id);
    Ok(SimReport {
        outcomes: sim.outcomes,
        interrupted,
        virtual_time: now.saturating_duration_since(zero),
        delivered: sim.delivered,
        lost: sim.lost,
    })
}

/// Progress through a stage other than running: `done` of `n` instances.
fn staged(stage: SimStage, done: u32, n: u32) -> SimProgress {
    SimProgress {
        stage,
        set_up: done,
        instances: n,
        ..SimProgress::default()
    }
}

impl Sim {
    fn progress(&self, n: u32, at: Instant, zero: Instant) -> SimProgress {
        let clock = if at >= zero {
            (at - zero).as_secs_f64()
        } else {
            -(zero - at).as_secs_f64()
        };
        let live: u64 = self
            .instances
            .iter()
            .flatten()
            .map(Instance::commands_fired)
            .sum();
        SimProgress {
            stage: SimStage::Running,
            set_up: n,
            instances: n,
            clock: Some(clock),
            ended: self.outcomes.len() as u32,
            failed: self
                .outcomes
                .iter()
                .filter(|(_, o)| matches!(o, Some(Outcome::Failed(_))))
                .count() as u32,
            commands: self.commands_of_ended + live,
            delivered: self.delivered,
            lost: self.lost,
        }
    }

    /// After instance `i` handled something at `now`: carry its datagrams,
    /// end it if it finished, and queue its next wake-up.
    fn after(&mut self, i: usize, now: Instant) {
        let Some(inst) = self.instances[i].as_mut() else {
            return;
        };
        if inst.crashed() {
            // Gone without a goodbye: what it queued is never sent.
            let mut inst = self.instances[i].take().expect("checked");
            inst.record_mut().flush();
            self.captures[i].end(inst.record_mut());
            self.commands_of_ended += inst.commands_fired();
            self.outcomes.push((inst.id(), Some(Outcome::Crashed)));
            self.scheduled[i] = None;
            return;
        }
        self.captures[i].follow(inst.capturing());
        let mut out = std::mem::take(&mut self.scratch);
        self.lost += drain_transmits(inst, &mut self.buf, &mut self.net, &mut out);
        let from = inst.core().config().local_addr;
        let finished = inst.finished();
        let next = if finished { None } else { inst.poll_timeout() };
        let mut ended = None;
        if finished {
            let mut inst = self.instances[i].take().expect("checked");
            let outcome = inst.end(now);
            self.lost += drain_transmits(&mut inst, &mut self.buf, &mut self.net, &mut out);
            self.commands_of_ended += inst.commands_fired();
            self.outcomes.push((inst.id(), Some(outcome)));
            ended = Some(inst);
        }
        let origin = self.origin;
        let since = |t: Instant| t.saturating_duration_since(origin);
        for (dest, extra, data) in out.drain(..) {
            // On the instance's wire after its fault model's delay.
            self.captures[i].sent(since(now), since(now + extra), dest, &data);
            self.send(now, from, dest, data, extra);
        }
        if let Some(mut inst) = ended {
            self.captures[i].end(inst.record_mut());
        }
        self.scratch = out;
        if let Some(at) = next
            && self.scheduled[i] != Some(at)
        {
            self.scheduled[i] = Some(at.max(now));
            self.net.wake_at(at.max(now), i);
        }
    }

    fn send(
        &mut self,
        now: Instant,
        from: SocketAddr,
        dest: SocketAddr,
        data: Vec<u8>,
        extra: Duration,
    ) {
        match self.net.send(now, from, dest, data, extra) {
            Sent::InFlight(_) => {}
            Sent::TooBig | Sent::Undeliverable => self.lost += 1,
            Sent::Lost => {
                self.lost += 1;
                // The sender's statistics show the simulated network's loss too.
                if let Some(i) = self.net.endpoint(&from)
                    && let Some(inst) = self.instances[i].as_mut()
                {
                    inst.lost_in_network();
                }
            }
        }
    }
}
