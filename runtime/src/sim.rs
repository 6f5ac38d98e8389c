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
use peerlab_netsim::Network;

use super::capture::Capture;
use super::instance::{EarlyPhase, Instance, Outcome, Shared, derive_seed, overlay_config};
use super::record::create_record;
use super::sim_parallel::Display;
use super::sim_part::Sim;
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
    /// Threads to run on, as decided by [`sim_parallel::plan`](super::sim_parallel::plan).
    pub threads: usize,
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
    /// How the threads shared the work (`None` on one thread).
    pub threading: Option<super::sim_parallel::Threading>,
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
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The address of instance `id` on the simulated network.
pub fn sim_addr(id: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000u32 + id);
    SocketAddr::V4(SocketAddrV4::new(ip, 7000))
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
    let mut sim = Sim::new(
        Network::new(
            derive_seed(shared.run_seed, 0, "simulated network"),
            settings.link,
        ),
        n as usize,
        MAX_DATAGRAM.max(2048),
        origin,
    );
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
    let mut threading = None;
    if !interrupted {
        // One loop, or windows of the link's delay on several threads:
        // the same events in the same order for every instance.
        let (done, stop, shared_work) = super::sim_parallel::drive(
            sim,
            settings.threads,
            super::sim_parallel::lookahead(
                settings.link.delay,
                shared.topology.as_deref(),
                shared.time_scale,
                n,
            ),
            (end, zero, n),
            &settings.stop,
            Display {
                progress: &mut *progress,
                last: &mut last_progress,
            },
        );
        sim = done;
        interrupted = stop;
        threading = shared_work;
    }
    let now = sim.now;
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
        threading,
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
