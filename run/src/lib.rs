//! peerlab-run: the only definition of a run folder (docs/outputs.md is
//! its contract). It owns the folder's layout ([`layout`]: where every file
//! goes), the typed schema of its records ([`schema`]: `run.json`,
//! `summary.json`, the statistics, events and resources lines, statuses and
//! outcomes as enums), the one writer of `run.json` and `summary.json`
//! ([`write`], which also writes `junit.xml`, rendered by [`junit`]) and the
//! one reader of them ([`read`]), used alike by the host, `peerlab bench`
//! and peerlab-report.
//!
//! [`tail`] reads the end of a process's stderr file in the folder, with
//! bounded memory, for the notes an abnormal end leaves.
//!
//! [`metrics`] spells metric declarations, observation histograms
//! (HdrHistogram, base64 V2) and per-run metric summaries.
//!
//! Must not: depend on anything but serde and the encodings of its files
//! (hdrhistogram, base64) (no tokio, no host, no
//! plugin-api), start processes, or decide what a run means (verdicts,
//! aggregates): it only knows where things are and how they are spelled.

pub mod junit;
pub mod layout;
pub mod metrics;
pub mod read;
pub mod schema;
pub mod tail;
pub mod write;

pub use layout::InstancePaths;
pub use schema::{
    EndStatus, EventLine, InstanceStatus, PeerRecord, PeersRecord, Placement, PluginRecord,
    ResourceLine, RunRecord, RunStatus, SimulationRecord, SourceRecord, StatsLine, Summary,
    VerdictRecord,
};
