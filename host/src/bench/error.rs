//! Why `peerlab bench` could not measure ([`BenchError`]): each variant
//! says what failed, where, and what to do. A run that computed the wrong
//! result is a measurement, not an error.

use std::path::PathBuf;

use super::SHARE_AT;
use crate::modules::LoadError;
use crate::runner::RunError;

/// Why `peerlab bench` could not measure: a flag it cannot use, the
/// plugin missing or not fitting, or a run that could not run or be read.
/// (A run that computed the wrong result is a measurement, not an error.)
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--peers needs at least one instance count")]
    NoPeers,
    #[error("--peers {n}: {protocol} needs at least 2 instances")]
    TooFewPeers { n: u32, protocol: String },
    #[error("--processes must be 1 or more (N for one process per instance)")]
    NoProcesses,
    #[error(
        "--deadline {deadline}: give more than {} scenario seconds (the workload starts at {SHARE_AT} s)",
        SHARE_AT + 1.0
    )]
    Deadline { deadline: f64 },
    #[error(
        "the {plugin} plugin is not built (no lib{plugin}.so in {}): run cargo build --release --workspace first",
        dirs.join(", ")
    )]
    NotBuilt { plugin: String, dirs: Vec<String> },
    #[error(
        "cannot load the {plugin} plugin: {error}: run cargo build --release --workspace first"
    )]
    CannotLoad {
        plugin: String,
        error: Box<LoadError>,
    },
    /// The module loaded but declares no workload (plugin-api before 1.5,
    /// or no `bench(..)` in its `#[module]`).
    #[error(
        "the {plugin} plugin (plugin-api {api_version}) declares no benchmark workload: \
         declare one with #[module(bench(start = .., done = .., messages = [..]))] (plugin-api 1.5); \
         `peerlab bench --list` shows the plugins that do"
    )]
    NoWorkload { plugin: String, api_version: String },
    /// The workload names a command, config key or metric its modules do
    /// not declare.
    #[error("the {plugin} plugin's benchmark workload does not fit its modules: {why}")]
    DoesNotFit { plugin: String, why: String },
    /// `--fanout` for a workload without a fanout config key.
    #[error("--fanout: the {plugin} plugin's benchmark workload has no fanout config key")]
    NoFanout { plugin: String },
    #[error("cannot create the output root {}", path.display())]
    OutputRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    AsyncRuntime(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    WriteScenario {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the run with N={n} could not run")]
    Run {
        n: u32,
        #[source]
        source: RunError,
    },
    /// The run ended but records of it could not be written.
    #[error("{}", unwritten.join("; "))]
    Unwritten { unwritten: Vec<String> },
    #[error("cannot read run.json")]
    RunRecord(#[source] peerlab_run::read::RecordError),
    #[error("cannot read the run folder {}: {error}", dir.display())]
    RunFolder {
        dir: PathBuf,
        error: peerlab_report::ReportError,
    },
    /// The caller's handling of a measurement failed (printing it).
    #[error(transparent)]
    Each(Box<dyn std::error::Error + Send + Sync>),
}
