//! The judge-and-write step every finished run goes through, whoever
//! started it (`peerlab run`, `peerlab bench`): the modules' verdicts are
//! added to the runner's summary, then `summary.json` (peerlab-run's one
//! writer) and `junit.xml` are written, and what could not be written is
//! collected for the caller to report last.
//!
//! [`conclude`] is `peerlab run`'s whole end of a run: the above, then the
//! report's post-processing, then how the run went on stderr.
//!
//! Must not: aggregate or plot itself (that is the report's), or decide an
//! exit status.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::modules::Registry;
use crate::runner::{RunError, RunOutcome, folder};
use peerlab_verdicts::choice::VerdictChoice;

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
        peerlab_verdicts::collect::collect_some(registry, &run_dir, &summary, config, |m| {
            choice.judges(m)
        });
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

/// Judge and record the run ([`judge_and_write`]), post-process it (plots
/// and report.html when `plots`), and say how it went: instances that did
/// not finish (bounded: `unfinished.rs`), every verdict, one line for the run, where its report is.
/// `Ok(passed)`, or an error when a record could not be written.
pub fn conclude(
    outcome: RunOutcome,
    registry: &Registry,
    config: &BTreeMap<String, String>,
    choice: &VerdictChoice,
    why: &str,
    plots: bool,
) -> Result<bool, RunError> {
    let Judged {
        run_dir,
        summary,
        unwritten,
    } = judge_and_write(outcome, registry, config, choice, why);

    let opts = peerlab_report::ReportOptions {
        plots,
        // Gumby's hook: after the built-in report; its failure is reported
        // below and changes neither the verdicts nor the exit status.
        post_process_cmd: config
            .get(peerlab_report::POST_PROCESS_KEY)
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let report = match peerlab_report::process_run(&run_dir, &opts) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("peerlab: warning: post-processing failed (the run's files are intact): {e}");
            None
        }
    };

    for line in super::unfinished::lines(&run_dir, &summary.instance_status, |p| p.is_file()) {
        eprintln!("peerlab: {line}");
    }
    for v in &summary.verdicts {
        eprintln!("peerlab: {}", verdict_line(v));
    }
    let judged: Vec<_> = summary.verdicts.iter().filter(|v| !v.skipped).collect();
    let skipped = summary.verdicts.len() - judged.len();
    let finished = summary
        .instance_status
        .iter()
        .filter(|s| s.status == folder::EndStatus::Finished)
        .count();
    eprintln!(
        "peerlab: run {} {}: {finished}/{} instances finished, {} of {} verdicts passed{}, {:.1} s",
        summary.run_id,
        summary
            .outcome
            .map_or("unknown", |o| o.as_str())
            .to_uppercase(),
        summary.instances,
        judged.iter().filter(|v| v.passed).count(),
        judged.len(),
        if skipped > 0 {
            format!(" ({skipped} module(s) not judged)")
        } else {
            String::new()
        },
        summary.duration_s
    );
    if let Some(h) = report.as_ref().and_then(|r| r.hook.as_ref()) {
        let log = run_dir.join(&h.log);
        if h.ok {
            eprintln!("peerlab: post_process_cmd done (output: {})", log.display());
        } else {
            eprintln!(
                "peerlab: warning: post_process_cmd `{}` {} (output: {}); the run's result stands",
                h.command,
                h.error,
                log.display()
            );
        }
    }
    match report.and_then(|r| r.report_html) {
        Some(html) => eprintln!("peerlab: report: {}", html.display()),
        None => eprintln!("peerlab: outputs: {}", run_dir.display()),
    }
    if !unwritten.is_empty() {
        return Err(RunError::Incomplete { unwritten });
    }
    Ok(summary.passed())
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
