//! SLURM's words, as pure text in and out: the batch script peerlab
//! submits ([`script`]) and what `squeue`, `sacct`, `scontrol` and
//! `sbatch` print about a job ([`queue`]), with the settings both need.
//!
//! Must not: run a command, touch a file or hold a clock. Submitting,
//! polling and cancelling are the host's SLURM runner
//! (`host/src/runner/slurm/`), which feeds these functions the commands'
//! output; that keeps them testable on snapshots and fuzzable.

use std::path::PathBuf;
use std::time::Duration;

pub mod queue;
pub mod script;

/// Added to the run's own time budget to get the job's time limit: room
/// for starting the agents and copying outputs back.
pub const TIME_MARGIN: Duration = Duration::from_secs(120);

/// The config key naming a node-local directory for instance outputs
/// (copied back into the run folder by the agents).
pub const LOCAL_DIR_KEY: &str = "slurm_local_output_dir";

/// How long a job may wait in the queue (for legitimate reasons such as
/// busy nodes) before the run gives up.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The run folder's subfolder for the job's files.
pub const SLURM_DIR: &str = "slurm";

/// What the slurm runner needs beyond the run's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmSettings {
    /// `--partition`, if any.
    pub partition: Option<String>,
    /// Extra `sbatch` options, one word each, after peerlab's own (so they win).
    pub sbatch_options: Vec<String>,
    /// Nodes to reserve: one node agent each.
    pub nodes: u32,
    /// The job's `--time`: the run's time budget plus [`TIME_MARGIN`].
    pub time_limit: Duration,
    /// The name or address the node agents reach the sync server at.
    pub sync_host: String,
    /// Fail as soon as SLURM says it cannot start the job now.
    pub immediate: bool,
    /// A node-local directory for instance outputs, copied back by the agents.
    pub local_dir: Option<PathBuf>,
    /// How often `squeue` is asked.
    pub poll_interval: Duration,
    /// How long the job may wait in the queue.
    pub queue_timeout: Duration,
}
