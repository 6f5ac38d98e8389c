//! Plain data read from a run folder: what the loader produces and the
//! analysis consumes. No I/O and no maths here, only shapes.
//!
//! Paths are kept relative to the run folder (as `String`s with `/`), so the
//! same data renders the same report wherever the folder is moved.

use crate::error::Warning;

/// `run.json`: the plan. Every field is optional so a partial or older file
/// still loads; the loader warns about what is missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPlan {
    pub run_id: Option<String>,
    pub experiment: Option<String>,
    pub seed: Option<u64>,
    pub instances: Option<u64>,
    pub nodes: Option<u64>,
    pub instances_per_process: Option<u64>,
    pub runner: Option<String>,
    pub time_scale: Option<f64>,
    pub peerlab_version: Option<String>,
    pub created_at: Option<String>,
    pub modules: Vec<String>,
    /// `placement`: which OS process hosts each instance.
    pub placement: Vec<Placement>,
}

/// One entry of `run.json`'s `placement`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub id: u32,
    pub host: String,
    pub node: u32,
    pub process: u32,
}

impl Placement {
    /// The process's captured stderr, relative to the run folder.
    pub fn stderr_file(&self) -> String {
        format!(
            "{}/node{:03}/process{:03}.stderr",
            self.host, self.node, self.process
        )
    }
}

/// One entry of `summary.json`'s `instance_status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceStatus {
    pub id: u32,
    pub host: Option<String>,
    pub node: Option<u32>,
    pub status: String,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub out: Option<String>,
    pub err: Option<String>,
}

/// One entry of `summary.json`'s `verdicts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    pub message: String,
    /// The module's verdicts were turned off (config key `verdicts`).
    pub skipped: bool,
}

/// The runner's fields of `summary.json`, read leniently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerSummary {
    pub run_id: Option<String>,
    pub experiment: Option<String>,
    pub seed: Option<u64>,
    pub instances: Option<u64>,
    pub nodes: Option<u64>,
    pub runner: Option<String>,
    pub time_scale: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_s: Option<f64>,
    pub outcome: Option<String>,
    pub timed_out: Option<bool>,
    pub instance_status: Vec<InstanceStatus>,
    pub verdicts: Vec<Verdict>,
}

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
    pub plan: Option<RunPlan>,
    pub summary: Option<RunnerSummary>,
    /// `summary.json` as read, to be completed without touching its fields.
    pub summary_text: Option<String>,
    /// Instances sorted by id.
    pub instances: Vec<InstanceFiles>,
    pub processes: Vec<ProcessFile>,
    pub warnings: Vec<Warning>,
}

/// One line of `<ID>.stats.jsonl`: cumulative counters at time `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSample {
    pub t: f64,
    pub reset: bool,
    /// (index into [`InstanceData::counter_names`], value)
    pub values: Vec<(u32, f64)>,
}

/// What an event line says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Annotation,
    Command,
    Fault,
    End,
    Other(String),
}

impl EventKind {
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Annotation => "annotation",
            EventKind::Command => "command",
            EventKind::Fault => "fault",
            EventKind::End => "end",
            EventKind::Other(s) => s,
        }
    }
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
