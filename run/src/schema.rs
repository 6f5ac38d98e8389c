//! The typed schema of every record in a run folder: `run.json`
//! ([`RunRecord`]), `summary.json` ([`Summary`]), and one line of
//! `<ID>.stats.jsonl` ([`StatsLine`]), `<ID>.events.jsonl` ([`EventLine`])
//! and `process<PPP>.resources.jsonl` ([`ResourceLine`]). The host writes
//! these types and every reader reads them; docs/outputs.md describes the
//! same fields in words.
//!
//! Readers are lenient: a field an older (or partial) folder lacks takes its
//! default (`#[serde(default)]`), so peerlab-report still reads folders made
//! before a field existed. Writers always write every field, in the order
//! declared here (the order on disk; tests compare bytes).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How one instance ended (`summary.json`'s `status`, and the `status` of
/// an instance's `end` event).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EndStatus {
    Finished,
    Failed,
    Crashed,
    TimedOut,
    NeverStarted,
    Interrupted,
    /// The node it ran on failed (the SLURM runner: SLURM reports the node
    /// down); its `error` names the node and SLURM's state and reason.
    Lost,
    /// Read only: a status this version does not know, or none.
    #[default]
    #[serde(other)]
    Unknown,
}

impl EndStatus {
    /// The word on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            EndStatus::Finished => "finished",
            EndStatus::Failed => "failed",
            EndStatus::Crashed => "crashed",
            EndStatus::TimedOut => "timed_out",
            EndStatus::NeverStarted => "never_started",
            EndStatus::Interrupted => "interrupted",
            EndStatus::Lost => "lost",
            EndStatus::Unknown => "unknown",
        }
    }

    /// The status a word names (`None` for an unknown word).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "finished" => EndStatus::Finished,
            "failed" => EndStatus::Failed,
            "crashed" => EndStatus::Crashed,
            "timed_out" => EndStatus::TimedOut,
            "never_started" => EndStatus::NeverStarted,
            "interrupted" => EndStatus::Interrupted,
            "lost" => EndStatus::Lost,
            _ => return None,
        })
    }
}

impl std::fmt::Display for EndStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a whole run ended (`summary.json`'s `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every instance finished and every verdict passed.
    Passed,
    Failed,
    TimedOut,
    Interrupted,
}

impl RunStatus {
    /// The word on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The runner's outcome of a run, before verdicts: interrupted, else
    /// timed out, else passed when every instance finished, else failed.
    pub fn of_run(statuses: impl IntoIterator<Item = EndStatus>, end: RunEnd) -> Self {
        let mut statuses = statuses.into_iter();
        if end.interrupted {
            RunStatus::Interrupted
        } else if end.timed_out {
            RunStatus::TimedOut
        } else if statuses.all(|s| s == EndStatus::Finished) {
            RunStatus::Passed
        } else {
            RunStatus::Failed
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended, before verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunEnd {
    pub timed_out: bool,
    pub interrupted: bool,
}

/// Where one instance runs (`run.json`'s `placement`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    pub id: u32,
    pub host: String,
    pub node: u32,
    pub process: u32,
}

impl Placement {
    /// The process's captured stderr, relative to the run folder, with `/`.
    pub fn stderr_file(&self) -> String {
        crate::layout::ProcessFile::Stderr.rel(&self.host, self.node, self.process)
    }
}

/// `run.json`: the plan, written before any instance starts. Instance
/// processes read it to learn everything about the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment: String,
    pub seed: u64,
    pub instances: u32,
    pub nodes: u32,
    pub instances_per_process: u32,
    pub runner: String,
    pub time_scale: f64,
    pub peerlab_version: String,
    /// The git commit peerlab was built from, when built from a checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peerlab_commit: Option<String>,
    pub created_at: String,
    pub modules: Vec<String>,
    /// Absolute path of the experiment's .conf (or the scenario when run without one).
    pub config_path: Option<PathBuf>,
    /// Absolute path of the scenario the instances parse.
    pub scenario_path: PathBuf,
    /// Extra directories searched for plugins (`--plugin-path`).
    pub plugin_path: Vec<PathBuf>,
    /// Every config key after defaults and overrides (plugins read theirs).
    pub config: BTreeMap<String, String>,
    pub placement: Vec<Placement>,
    /// Every file the experiment was read from (config, scenario, includes)
    /// with its hash and its copy in the run folder; instances refuse to
    /// start when a file has changed since. Empty in runs before 0.1.1.
    pub sources: Vec<SourceRecord>,
    /// Every metric the loaded modules declared (the overlay's included).
    /// Empty in runs before metrics existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<crate::metrics::MetricDecl>,
    /// Every plugin library the run loaded (built-in modules are not
    /// listed): `peerlab rerun` refuses a plugin whose hash changed.
    /// Empty in runs before 0.1.2.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginRecord>,
    /// How a simulated run is driven (absent for other runners, and in
    /// runs before `--threads`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulation: Option<SimulationRecord>,
}

/// `run.json`'s `simulation`: the threads a simulated run uses, and why
/// only one when more were asked for. The outputs do not depend on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulationRecord {
    /// Threads asked for (`--threads`, `sim_threads`, or this machine's cores).
    pub threads_requested: u32,
    /// Threads the simulation runs on.
    pub threads: u32,
    /// Why it runs on one thread although more were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_threaded_because: Option<String>,
}

/// One plugin library a run loaded, as `run.json` records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginRecord {
    /// The module's name (`benaloh`).
    pub module: String,
    /// The module's own version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// The library file it was loaded from (canonical).
    pub path: PathBuf,
    /// SHA-256 of the library file, in hex.
    pub sha256: String,
    /// `debug`, `release` or `unknown`: the cargo profile the library was
    /// built with, as its path says (`target/<profile>/`). A debug build's
    /// CPU figures are not representative.
    pub build_profile: String,
}

/// One file the experiment was read from, as `peerlab run` read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceRecord {
    /// Where it was read from (absolute).
    pub path: PathBuf,
    /// SHA-256 of the text read, in hex.
    pub sha256: String,
    /// Its copy, relative to the run folder (`sources/NN-name`).
    pub copy: String,
    /// The name events and errors give this file: its file name where the
    /// experiment was first read (a `peerlab rerun` keeps the original
    /// run's names, so its outputs repeat byte for byte). Empty in folders
    /// made before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// One instance's end, in `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceStatus {
    pub id: u32,
    pub host: String,
    pub node: u32,
    pub status: EndStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub out: PathBuf,
    pub err: PathBuf,
}

/// A named pass/fail judgement of the run, as `summary.json` records it
/// (a module's hook returns `peerlab_plugin_api::Verdict`, which keeps its
/// name: abi_stable checks type names when it loads a plugin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerdictRecord {
    pub name: String,
    pub passed: bool,
    pub message: String,
    /// Not judged: the module's verdicts were turned off (config key
    /// `verdicts`, `--no-verdicts`); `passed` is true so it fails nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl Default for VerdictRecord {
    fn default() -> Self {
        VerdictRecord {
            name: "(unnamed)".into(),
            passed: false,
            message: String::new(),
            skipped: false,
        }
    }
}

/// `summary.json` as the runner writes it (post-processing appends
/// `aggregates`, which this type does not hold: see
/// [`crate::write::SummaryContent`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub run_id: String,
    pub experiment: String,
    pub seed: u64,
    pub instances: u32,
    pub nodes: u32,
    pub runner: String,
    pub time_scale: f64,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    /// Always written by the runner; absent when only post-processing
    /// wrote the file (the runner never finished).
    pub outcome: Option<RunStatus>,
    pub timed_out: bool,
    pub instance_status: Vec<InstanceStatus>,
    pub verdicts: Vec<VerdictRecord>,
}

impl Summary {
    /// The run passed: every instance finished and every verdict passed.
    pub fn passed(&self) -> bool {
        self.outcome == Some(RunStatus::Passed)
    }

    /// Record the verdicts: a run that passed fails when one of them failed.
    pub fn set_verdicts(&mut self, verdicts: Vec<VerdictRecord>) {
        self.verdicts = verdicts;
        if self.passed() && self.verdicts.iter().any(|v| !v.passed) {
            self.outcome = Some(RunStatus::Failed);
        }
    }
}

/// One line of `<ID>.stats.jsonl`: cumulative counters at time `t`. The
/// host writes `C = &BTreeMap<String, f64>`; readers choose their own
/// container (peerlab-report borrows names in file order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsLine<C> {
    pub t: f64,
    /// Counters were reset just before (`reset_dispersy_statistics`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    #[serde(default)]
    pub counters: C,
    /// Observation metrics: the samples recorded since the previous line
    /// (absent when none were), one histogram per metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observations: BTreeMap<String, crate::metrics::Histogram>,
}

/// The statistics a host writes: counter name to value.
pub type Counters = BTreeMap<String, f64>;

/// The `kind` words of an events line.
pub mod event_kind {
    pub const ANNOTATION: &str = "annotation";
    pub const COMMAND: &str = "command";
    pub const FAULT: &str = "fault";
    pub const END: &str = "end";
    /// Where the instance's overlay listens (`text`: `host:port`) and its
    /// public key (`key`, hex), written once before the start.
    pub const ADDRESS: &str = "address";
    /// The instance's network model at the start and after each change
    /// (`text`, e.g. its NAT: `nat=symmetric mapping=… filtering=…
    /// timeout=120s`; its topology group and capacities: `group=<group>
    /// up=<bandwidth> down=<bandwidth>`).
    pub const NETWORK: &str = "network";
}

/// What an event line says (its `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Annotation,
    Command,
    Fault,
    End,
    Address,
    /// A kind this version does not know, as written.
    Other(String),
}

impl EventKind {
    pub fn parse(s: &str) -> Self {
        match s {
            event_kind::ANNOTATION => EventKind::Annotation,
            event_kind::COMMAND => EventKind::Command,
            event_kind::FAULT => EventKind::Fault,
            event_kind::END => EventKind::End,
            event_kind::ADDRESS => EventKind::Address,
            other => EventKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Annotation => event_kind::ANNOTATION,
            EventKind::Command => event_kind::COMMAND,
            EventKind::Fault => event_kind::FAULT,
            EventKind::End => event_kind::END,
            EventKind::Address => event_kind::ADDRESS,
            EventKind::Other(s) => s,
        }
    }
}

/// One line of `<ID>.events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine<'a> {
    pub t: f64,
    /// One of [`event_kind`]'s words (others are kept as written).
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub module: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// An `end` event's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EndStatus>,
    /// An `address` event's public key (hex of py-ipv8's key bytes).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// An `end` event's `false` when the instance was away (after `leave`
    /// or a churn departure) at its end; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

impl<'a> EventLine<'a> {
    /// An event of `kind` (one of [`event_kind`]'s words) at `t`.
    pub fn new(t: f64, kind: &'a str) -> Self {
        Self {
            t,
            kind: Cow::Borrowed(kind),
            text: None,
            callback: None,
            module: None,
            file: None,
            line: None,
            status: None,
            key: None,
            online: None,
        }
    }

    /// The event's kind, typed.
    pub fn kind(&self) -> EventKind {
        EventKind::parse(&self.kind)
    }
}

/// `peers.json`: every instance's overlay address and public key, as the
/// sync server's barrier handed them to the instances (written when the run
/// starts; a run that never starts has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeersRecord {
    /// The common start time, milliseconds since the Unix epoch.
    #[serde(default)]
    pub start_unix_ms: u64,
    #[serde(default)]
    pub peers: Vec<PeerRecord>,
}

/// One instance in `peers.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub id: u32,
    /// The overlay's UDP address, `host:port` (`[v6]:port`).
    pub addr: String,
    /// Hex of the public key (py-ipv8's `LibNaCLPK:` key bytes).
    pub public_key: String,
    /// `peerlab`, `external` for an instance that is another program, or
    /// `tracker` (id 0) for the built-in tracker.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// One line of `process<PPP>.resources.jsonl`: this OS process's CPU
/// (cumulative), memory (now) and I/O (cumulative) at time `t`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceLine<'a> {
    pub t: f64,
    pub pid: Option<u32>,
    /// The instances the process hosts.
    pub instances: Cow<'a, [u32]>,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub rss_kb: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            EndStatus::Finished,
            EndStatus::Failed,
            EndStatus::Crashed,
            EndStatus::TimedOut,
            EndStatus::NeverStarted,
            EndStatus::Interrupted,
        ] {
            assert_eq!(EndStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<EndStatus>(&json).unwrap(), s);
        }
        assert_eq!(
            serde_json::from_str::<EndStatus>("\"exploded\"").unwrap(),
            EndStatus::Unknown
        );
        for o in [
            RunStatus::Passed,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Interrupted,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }

    #[test]
    fn the_outcome_follows_the_end_then_the_statuses() {
        let end = RunEnd::default();
        use super::EndStatus::*;
        assert_eq!(
            RunStatus::of_run([Finished, Finished], end),
            RunStatus::Passed
        );
        assert_eq!(
            RunStatus::of_run([Finished, Crashed], end),
            RunStatus::Failed
        );
        let timed_out = RunEnd {
            timed_out: true,
            interrupted: false,
        };
        assert_eq!(
            RunStatus::of_run([Finished], timed_out),
            RunStatus::TimedOut
        );
        let both = RunEnd {
            timed_out: true,
            interrupted: true,
        };
        assert_eq!(RunStatus::of_run([], both), RunStatus::Interrupted);
    }

    #[test]
    fn lines_are_written_as_docs_outputs_md_shows() {
        let mut e = EventLine::new(135.0, event_kind::END);
        e.status = Some(EndStatus::Finished);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"t":135.0,"kind":"end","status":"finished"}"#
        );
        let counters: Counters = [("peers".to_string(), 4.0)].into();
        let s = StatsLine {
            t: 3.0,
            reset: false,
            counters: &counters,
            observations: Default::default(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"t":3.0,"counters":{"peers":4.0}}"#
        );
        let r = ResourceLine {
            t: 1.0,
            pid: Some(4242),
            instances: Cow::Borrowed(&[1]),
            cpu_user_s: 0.12,
            cpu_system_s: 0.03,
            rss_kb: 10240,
            read_bytes: 0,
            write_bytes: 4096,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"t":1.0,"pid":4242,"instances":[1],"cpu_user_s":0.12,"cpu_system_s":0.03,"rss_kb":10240,"read_bytes":0,"write_bytes":4096}"#
        );
    }

    #[test]
    fn older_and_partial_records_still_read() {
        let plan: RunRecord = serde_json::from_str(
            r#"{"run_id": "0009-empty", "experiment": "empty", "instances": 4}"#,
        )
        .unwrap();
        assert_eq!(plan.instances, 4);
        assert!(plan.placement.is_empty());
        let summary: Summary = serde_json::from_str(r#"{"aggregates": {}}"#).unwrap();
        assert_eq!(summary.outcome, None);
        let summary: Summary = serde_json::from_str(
            r#"{"outcome": "failed", "instance_status": [{"id": 2, "status": "crashed"}], "verdicts": [{"passed": true}]}"#,
        )
        .unwrap();
        assert_eq!(summary.outcome, Some(RunStatus::Failed));
        assert_eq!(summary.instance_status[0].status, EndStatus::Crashed);
        assert_eq!(summary.verdicts[0].name, "(unnamed)");
    }
}
