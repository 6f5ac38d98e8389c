//! Verdicts: after a run, the loaded modules judge it from the run folder
//! alone ([`collect`]: each module's verdict hook over a read-only view of
//! every instance's outputs and status), and the experiment chooses which
//! modules judge ([`choice`]: the config key `verdicts`, `--no-verdicts`).
//!
//! Must not: start, supervise or talk to an instance, or write the run
//! folder (the host's runner writes the verdicts into `summary.json`
//! through `peerlab-run`). Runners call this crate; it never calls a
//! runner (`tests/tests/tidy.rs::crates_depend_only_on_what_their_boundary_allows`).

pub mod choice;
pub mod collect;

pub use choice::{VerdictChoice, check_choice};
pub use collect::{NOT_JUDGED, collect, collect_some};
