//! What every runner shares: preparing the sync server, and supervising a
//! run to its end whatever starts the processes.
//!
//! A [`Launcher`] starts instance processes somewhere (here, on SLURM
//! nodes) and reports their exits as [`LaunchEvent`]s; [`supervise`] turns
//! those and the sync server's reports into one final status per instance,
//! enforcing the registration timeout, the run timeout and stop signals
//! (SIGINT, SIGTERM, SIGHUP: [`super::interrupt`]). It returns the summary,
//! already written to `summary.json`. One job per file: this one the types
//! a runner uses and the loop; `watch.rs` what the loop does with each
//! event (deadlines, exits, stops); `end.rs` the final statuses and the
//! notes an abnormal end leaves in the instance's `.err`. The run folder
//! itself is [`super::folder`]'s.

mod end;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::RunSettings;
use super::error::RunError;
use super::folder::{self, Placement};
use super::interrupt::Interrupt;
use peerlab_sync::server::{Admission, ServerConfig, SyncServer};
use watch::Watch;

/// Environment variable carrying the run token to instance processes
/// (the sync protocol's).
pub use peerlab_sync::protocol::TOKEN_ENV;

/// How long a process's reports may trail its exit when its connection's
/// close is not seen (normally the close settles it at once).
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// How long after the forced stop peerlab still waits to hear that the
/// processes are gone.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How long stopped processes get between the polite and the forced stop.
const GRACE: Duration = Duration::from_secs(3);

/// What a launcher reports.
#[derive(Debug, Clone)]
pub enum LaunchEvent {
    /// A process (or a whole job) running these instances is gone.
    Exited {
        ids: Vec<u32>,
        exit_code: Option<i32>,
        /// How it ended, in words ("exit code 3", "killed by signal 9").
        how: String,
        /// Whether it ended with success.
        clean: bool,
        /// A file holding its stderr, whose tail is copied to each instance's `.err`.
        stderr: Option<PathBuf>,
    },
    /// Where these instances' process ran (a SLURM node's name and number),
    /// for instances that may never register to say so themselves.
    Placed {
        ids: Vec<u32>,
        host: String,
        node: u32,
    },
    /// Where the launch stands, for the progress line (e.g. "job 12 pending: Resources").
    State(String),
    /// The processes wait for resources (a queued job): the registration
    /// clock stops until [`LaunchEvent::Running`].
    Waiting,
    /// The processes are starting now: the registration clock starts again.
    Running,
    /// The launch cannot go on (e.g. the scheduler cannot place the job):
    /// every instance not ended yet ends with this reason.
    Failed(String),
}

/// Starts and stops the processes of a run.
pub trait Launcher {
    /// Ask every process to stop; `force` after the grace period.
    fn stop(&mut self, force: bool);
    /// Whether some process may still be running.
    fn running(&self) -> bool;
}

/// A run folder and sync server ready for processes to be launched.
pub struct Prepared {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub server: SyncServer,
    pub token: String,
    pub started_at: SystemTime,
    /// The runner's name in the records (`local`, `slurm`).
    pub runner: &'static str,
    pub nodes: u32,
    /// Where the instances are planned to run (as written to `run.json`).
    pub placement: Vec<Placement>,
}

/// Create the run folder, write `run.json` and the inputs, start the sync
/// server on `bind`.
pub async fn prepare(
    settings: &RunSettings,
    runner: &'static str,
    nodes: u32,
    placement: Vec<Placement>,
    bind: SocketAddr,
) -> Result<Prepared, RunError> {
    let (run_id, run_dir, record) =
        folder::prepare_folder(settings, runner, nodes, placement.clone())?;
    let token = new_token(settings.seed);
    let mut admission =
        Admission::for_run(settings.instances, settings.instances_per_process, nodes);
    // A process sends its hello right after connecting, but a machine
    // starting thousands of them may not run it for a while: allow it what
    // the run allows for registering at all.
    admission.hello_timeout = admission.hello_timeout.max(settings.registration_timeout);
    let server = SyncServer::bind(
        bind,
        ServerConfig {
            token: token.clone(),
            instances: settings.instances,
            start_delay: settings.start_delay,
            admission,
        },
    )
    .await
    .map_err(|source| RunError::SyncServer { bind, source })?;
    tracing::info!(sync = %server.local_addr(), run = %record.run_id, "sync server listening");
    Ok(Prepared {
        run_id,
        run_dir,
        server,
        token,
        started_at: SystemTime::now(),
        runner,
        nodes,
        placement,
    })
}

/// Supervise a launched run until every instance has a final status and
/// no process runs; write and return the summary. A stop signal (already
/// received, or arriving later) stops every process and ends the run as
/// interrupted; a second one skips the grace period.
pub async fn supervise(
    settings: &RunSettings,
    prepared: Prepared,
    launcher: &mut dyn Launcher,
    mut launch_events: mpsc::UnboundedReceiver<LaunchEvent>,
    interrupt: &Interrupt,
) -> Result<folder::Summary, RunError> {
    let mut interrupt = interrupt.clone();
    let Prepared {
        run_id,
        run_dir,
        server,
        started_at,
        runner,
        nodes,
        placement,
        ..
    } = prepared;
    let mut w = Watch::new(settings, &run_id, &run_dir, server, placement);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !w.done(launcher) {
        tokio::select! {
            Some(event) = w.server.next_event() => w.on_server(event),
            event = launch_events.recv(), if !w.launcher_done => w.on_launch(event, launcher),
            _ = tick.tick() => w.on_tick(launcher),
            (signal, count) = interrupt.next() => w.on_signal(signal, count, launcher),
        }
    }
    Ok(w.finish(runner, nodes, started_at, run_id))
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token no other run can guess.
fn new_token(seed: u64) -> String {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let salt = seed ^ u64::from(std::process::id());
    bytes[..8]
        .iter_mut()
        .zip(salt.to_le_bytes())
        .for_each(|(b, s)| *b ^= s);
    peerlab_dispersy::crypto::hex(&bytes)
}

#[cfg(test)]
mod tests;
