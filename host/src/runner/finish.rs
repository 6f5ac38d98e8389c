//! The judge-and-write step every finished run goes through, whoever
//! started it (`peerlab run`, `peerlab bench`): the modules' verdicts are
//! added to the runner's summary, then `summary.json` (peerlab-run's one
//! writer) and `junit.xml` are written, and what could not be written is
//! collected for the caller to report last.
//!
//! Must not: post-process the run (that is the report's), print, or decide
//! an exit status; callers say how the run went in their own words.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::modules::Registry;
use crate::runner::verdict_choice::VerdictChoice;
use crate::runner::{RunOutcome, folder};

/// A judged run whose records were written (as far as they could be).
#[derive(Debug, Clone)]
pub struct Judged {
    pub run_dir: PathBuf,
    /// The runner's summary with the verdicts added.
    pub summary: folder::Summary,
    /// One `cannot write <file>: <why>` per record that could not be written.
    pub unwritten: Vec<String>,
}

/// Judge the run with the modules `choice` names (the others get a
/// "skipped (`why`)" entry), then write `summary.json` and `junit.xml`.
/// Both are attempted whatever happens to the other (a full disk).
pub fn judge_and_write(
    outcome: RunOutcome,
    registry: &Registry,
    config: &BTreeMap<String, String>,
    choice: &VerdictChoice,
    why: &str,
) -> Judged {
    let RunOutcome {
        run_dir,
        mut summary,
    } = outcome;
    let mut verdicts =
        super::verdicts::collect_some(registry, &run_dir, &summary, config, |m| choice.judges(m));
    verdicts.extend(choice.skipped(registry, why));
    summary.set_verdicts(verdicts);
    let mut unwritten = Vec::new();
    if let Err(e) = folder::write_summary(&run_dir, folder::SummaryContent::Runner(&summary)) {
        let path = run_dir.join(peerlab_run::layout::SUMMARY_JSON);
        unwritten.push(format!("cannot write {}: {e}", path.display()));
    }
    if let Err(e) = peerlab_run::write::write_junit(&run_dir, &summary) {
        let path = run_dir.join(peerlab_run::layout::JUNIT_XML);
        unwritten.push(format!("cannot write {}: {e}", path.display()));
    }
    Judged {
        run_dir,
        summary,
        unwritten,
    }
}

/// `verdict <name>: PASS — <message>` (or `FAIL`, `SKIPPED`).
pub fn verdict_line(v: &folder::VerdictRecord) -> String {
    let word = if v.skipped {
        "SKIPPED"
    } else if v.passed {
        "PASS"
    } else {
        "FAIL"
    };
    format!("verdict {}: {word} — {}", v.name, v.message)
}
