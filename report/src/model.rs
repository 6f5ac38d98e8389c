//! Plain data read from a run folder: what the loader produces and the
//! analysis consumes. No I/O and no maths here, only shapes. The records
//! (`run.json`, `summary.json`) are peerlab-run's types, the ones the host
//! writes; what is here is the report's own view of the time series.
//!
//! Paths are kept relative to the run folder (as `String`s with `/`), so the
//! same data renders the same report wherever the folder is moved.

use crate::error::Warning;
use peerlab_run::metrics::Histogram;

pub use peerlab_run::schema::{EventKind, InstanceStatus, Placement, VerdictRecord};
pub use peerlab_run::{RunRecord, Summary};

/// The files of one instance found under `<host>/node<NNN>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFiles {
    pub id: u32,
    pub host: String,
    pub node: u32,
    /// Relative paths; `None` when the file is absent.
    pub stats: Option<String>,
    pub events: Option<String>,
    pub out: Option<String>,
    pub err: Option<String>,
}

/// A CSV a module wrote under an `autoplot/` folder (Gumby's autoplot):
/// `<host>/node<NNN>/autoplot/<name>.csv` or
/// `<host>/node<NNN>/<ID>/autoplot/<name>.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoplotFile {
    /// Relative path.
    pub path: String,
    /// The file's stem: files of the same name are drawn in one plot.
    pub name: String,
    /// The instance whose folder holds it, when it is an instance's.
    pub instance: Option<u32>,
}

/// One `process<PPP>.resources.jsonl` found under `<host>/node<NNN>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessFile {
    pub process: u32,
    pub host: String,
    pub node: u32,
    pub path: String,
}

/// What the loader found in the folder before reading any time series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunIndex {
    /// `run.json`, as the host wrote it (fields an older folder lacks take
    /// their defaults).
    pub plan: Option<RunRecord>,
    /// `summary.json`'s runner fields (its `outcome` is `None` when only
    /// post-processing wrote the file).
    pub summary: Option<Summary>,
    /// `summary.json` as read, to be completed without touching its fields.
    pub summary_text: Option<String>,
    /// Instances sorted by id.
    pub instances: Vec<InstanceFiles>,
    pub processes: Vec<ProcessFile>,
    /// `autoplot/*.csv` files, sorted by name then path.
    pub autoplot: Vec<AutoplotFile>,
    pub warnings: Vec<Warning>,
}

/// One line of `<ID>.stats.jsonl`: cumulative counters at time `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSample {
    pub t: f64,
    pub reset: bool,
    /// (index into [`InstanceData::counter_names`], value)
    pub values: Vec<(u32, f64)>,
    /// Samples recorded since the previous line:
    /// (index into [`InstanceData::observation_names`], distribution).
    pub observations: Vec<(u32, Histogram)>,
}

/// One line of `<ID>.events.jsonl`. `text` is the annotation or fault text,
/// the command's callback, or the end status.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub t: f64,
    pub kind: EventKind,
    pub text: String,
}

/// Everything one instance wrote, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceData {
    pub id: u32,
    pub counter_names: Vec<String>,
    pub observation_names: Vec<String>,
    pub stats: Vec<StatsSample>,
    pub events: Vec<Event>,
    pub warnings: Vec<Warning>,
}

/// One line of a resources file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    pub t: f64,
    pub pid: Option<u32>,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub rss_kb: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

/// Everything one OS process's resources file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessData {
    pub process: u32,
    pub host: String,
    pub node: u32,
    pub path: String,
    /// The instances this process ran (union over its lines), sorted.
    pub instances: Vec<u32>,
    pub samples: Vec<ResourceSample>,
    pub warnings: Vec<Warning>,
}
