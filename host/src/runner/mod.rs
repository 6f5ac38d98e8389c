//! Runners: plan a run, start its instances somewhere, supervise them
//! through the sync server, and write the run folder's records.
//!
//! [`local`] starts instance processes on this machine. The supervision
//! rules ([`status`]) and the run folder on this machine ([`folder`]; its
//! layout, records and their writers are peerlab-run's) are shared by every
//! runner. Runners never interpret scenarios or talk to modules: instances
//! do that ([`crate::runtime`]).

pub mod capacity;
pub mod error;
pub mod external;
pub mod finish;
pub mod folder;
pub mod interrupt;
pub mod local;
pub mod peers;
pub mod sim;
pub mod slurm;
pub mod status;
pub mod supervise;
pub mod tracker;
pub mod unfinished;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use error::RunError;

/// Everything a runner needs, already validated.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub experiment: String,
    pub config_path: Option<PathBuf>,
    pub scenario_path: PathBuf,
    /// Every config key after defaults and overrides.
    pub config: BTreeMap<String, String>,
    pub instances: u32,
    pub instances_per_process: u32,
    pub seed: u64,
    pub time_scale: f64,
    /// Wall time after the start at which the run is ended (already scaled).
    pub timeout: Duration,
    /// How long to wait for every instance to register (`registration_timeout`,
    /// wall-clock, not scaled).
    pub registration_timeout: Duration,
    /// Time between the barrier and the start (already scaled).
    pub start_delay: Duration,
    pub output_root: PathBuf,
    pub plugin_path: Vec<PathBuf>,
    /// The modules the scenario loads, as written (for the record).
    pub modules: Vec<String>,
    /// What the loaded modules declared (`run.json`'s `metrics`).
    pub metrics: Vec<peerlab_run::metrics::MetricDecl>,
    /// TCP port of the sync server; 0 picks a free one.
    pub sync_port: u16,
    /// Draw a progress bar (on a terminal) instead of log lines.
    pub progress: bool,
    /// Every file the experiment was read from (absolute path, text as
    /// read), copied into the run folder and hashed in `run.json`.
    pub sources: Vec<(PathBuf, std::sync::Arc<str>)>,
    /// Names that events and errors give sources, by the SHA-256 of their
    /// text, overriding their file names (`peerlab rerun`: the original
    /// run's names for the run folder's copies).
    pub source_names: std::collections::BTreeMap<String, String>,
    /// The plugin libraries the run loads, hashed (`run.json`'s `plugins`).
    pub plugins: Vec<peerlab_run::PluginRecord>,
}

#[cfg(test)]
impl RunSettings {
    /// Settings for the runners' unit tests: `instances` of experiment
    /// `unit`, one per process, seed 1, time scale 1, nothing loaded; a
    /// test changes what it needs with `..RunSettings::for_tests(..)`.
    pub(crate) fn for_tests(scenario_path: PathBuf, output_root: PathBuf, instances: u32) -> Self {
        RunSettings {
            experiment: "unit".into(),
            config_path: None,
            scenario_path,
            config: Default::default(),
            instances,
            instances_per_process: 1,
            seed: 1,
            time_scale: 1.0,
            timeout: Duration::from_secs(30),
            registration_timeout: Duration::from_millis(300),
            start_delay: Duration::from_millis(1),
            output_root,
            plugin_path: Vec::new(),
            modules: Vec::new(),
            metrics: Vec::new(),
            sync_port: 0,
            progress: false,
            plugins: Vec::new(),
            sources: Vec::new(),
            source_names: Default::default(),
        }
    }
}

/// Run a planned experiment to its end with the runner it names (or in
/// this process on the simulated network) and return how it ended. It
/// owns the async runtime the runners need; `exp` gives the settings only
/// one runner reads (SLURM's).
pub fn start(
    settings: &RunSettings,
    simulate: bool,
    runner: peerlab_lang::Runner,
    exp: &peerlab_lang::Experiment,
) -> Result<RunOutcome, RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::AsyncRuntime)?;
    if simulate {
        // The simulation runs on this thread; the runtime's workers listen
        // for stop signals meanwhile.
        let interrupt = {
            let _in_runtime = rt.enter();
            interrupt::Interrupt::listen().map_err(RunError::Signals)?
        };
        return sim::run(settings, &interrupt);
    }
    match runner {
        peerlab_lang::Runner::Local => rt.block_on(local::run(settings)),
        peerlab_lang::Runner::Slurm => {
            let slurm = slurm::settings_from(exp, settings)?;
            rt.block_on(slurm::run(settings, &slurm))
        }
    }
}

/// How a run ended, for the exit status and the caller's message.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub summary: folder::Summary,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.summary.passed()
    }
}
