//! `peerlab runs`: the history of the runs in an output root, one entry per
//! run folder, like a CI server's build list (with each run's seed and
//! verdicts; the HTML history page, `OUTPUT/index.html`, is
//! peerlab-sweep's `index`). [`list_runs`] reads (only
//! `run.json` and `summary.json`, through peerlab-run's reader, and file
//! sizes); [`format_table`] is pure.
//!
//! A broken or unfinished run folder is listed as such, never an error:
//! only an unreadable output root is.

use std::fs;
use std::path::Path;

use peerlab_run::layout::{REPORT_HTML, RUN_JSON, SUMMARY_JSON};
use peerlab_run::read::{self as records, RecordError};
use peerlab_run::{RunRecord, Summary};
use serde::Serialize;

use crate::error::ReportError;

/// What became of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum RunState {
    /// `summary.json`'s `outcome`: passed, failed, timed_out, interrupted.
    Finished(String),
    /// No `summary.json` from the runner (none, or one with only the
    /// report's aggregates): crashed, killed, or still running.
    Incomplete,
    /// Files that cannot be read; the detail says which and why.
    Broken(String),
}

impl RunState {
    pub fn label(&self) -> String {
        match self {
            RunState::Finished(o) => o.clone(),
            RunState::Incomplete => "incomplete".into(),
            RunState::Broken(why) => format!("broken ({why})"),
        }
    }
}

/// One run folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEntry {
    /// The folder's name, e.g. `0003-benaloh`.
    pub folder: String,
    /// Its `NNNN` prefix.
    pub number: Option<u32>,
    pub date: Option<String>,
    pub experiment: Option<String>,
    pub instances: Option<u64>,
    pub duration_s: Option<f64>,
    /// The run's seed.
    pub seed: Option<u64>,
    /// Each verdict's name and whether it passed (skipped ones left out).
    pub verdicts: Vec<(String, bool)>,
    pub state: RunState,
    /// Bytes in all its files.
    pub size_bytes: u64,
    /// `<root>/latest` points at it.
    pub latest: bool,
    /// It has a `report.html`.
    pub has_report: bool,
}

/// Lists the run folders under `root`, oldest first.
pub fn list_runs(root: &Path) -> Result<Vec<RunEntry>, ReportError> {
    let rd = fs::read_dir(root).map_err(|source| ReportError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    let latest = fs::read_link(root.join("latest"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if !ft.is_dir() {
            continue; // `latest` is a symlink; files are not runs.
        }
        let folder = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let number = folder
            .split_once('-')
            .and_then(|(n, _)| n.parse::<u32>().ok());
        let has_run = dir.join(RUN_JSON).exists();
        let has_summary = dir.join(SUMMARY_JSON).exists();
        if number.is_none() && !has_run && !has_summary {
            continue; // not a run folder
        }
        out.push(entry_for(
            &dir,
            folder.clone(),
            number,
            latest.as_deref() == Some(folder.as_str()),
        ));
    }
    out.sort_by(|a, b| {
        (a.number.unwrap_or(u32::MAX), &a.folder).cmp(&(b.number.unwrap_or(u32::MAX), &b.folder))
    });
    Ok(out)
}

/// A record, `None` when the file is absent, or why it cannot be used.
fn read_record<T>(
    dir: &Path,
    name: &str,
    parse: fn(&str) -> Result<T, RecordError>,
) -> Result<Option<T>, String> {
    match fs::read_to_string(dir.join(name)) {
        Ok(text) => match parse(&text) {
            Ok(v) => Ok(Some(v)),
            Err(RecordError::NotAnObject) => Err("not a JSON object".into()),
            Err(RecordError::Malformed(e)) if e.is_eof() => Err("cut short".into()),
            Err(_) => Err("malformed JSON".into()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.kind().to_string()),
    }
}

fn entry_for(dir: &Path, folder: String, number: Option<u32>, latest: bool) -> RunEntry {
    let plan: Result<Option<RunRecord>, String> =
        read_record(dir, RUN_JSON, records::run_record_from_str);
    let summary: Result<Option<Summary>, String> =
        read_record(dir, SUMMARY_JSON, records::summary_from_str);
    let state = match (&plan, &summary) {
        (_, Err(why)) => RunState::Broken(format!("summary.json {why}")),
        (Err(why), _) => RunState::Broken(format!("run.json {why}")),
        (_, Ok(Some(s))) => match s.outcome {
            Some(o) => RunState::Finished(o.as_str().to_string()),
            // Post-processing alone wrote it: the runner never finished.
            None => RunState::Incomplete,
        },
        (Ok(None), Ok(None)) => RunState::Broken("no run.json".into()),
        (Ok(Some(_)), Ok(None)) => RunState::Incomplete,
    };
    // The runner's summary when it wrote one (it always writes `outcome`),
    // else the plan.
    let runner = summary
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .filter(|s| s.outcome.is_some());
    let plan = plan.as_ref().ok().and_then(Option::as_ref);
    let text = |v: &String| (!v.is_empty()).then(|| v.clone());
    let date = runner
        .and_then(|s| text(&s.started_at))
        .or_else(|| plan.and_then(|p| text(&p.created_at)));
    RunEntry {
        number,
        date,
        experiment: runner
            .and_then(|s| text(&s.experiment))
            .or_else(|| plan.and_then(|p| text(&p.experiment))),
        instances: runner
            .map(|s| s.instances)
            .or(plan.map(|p| p.instances))
            .map(u64::from),
        duration_s: runner.map(|s| s.duration_s),
        seed: runner.map(|s| s.seed).or(plan.map(|p| p.seed)),
        verdicts: runner
            .map(|s| {
                s.verdicts
                    .iter()
                    .filter(|v| !v.skipped)
                    .map(|v| (v.name.clone(), v.passed))
                    .collect()
            })
            .unwrap_or_default(),
        state,
        size_bytes: size_of(dir),
        latest,
        has_report: dir.join(REPORT_HTML).is_file(),
        folder,
    }
}

/// Bytes in the files under `dir`, not following symlinks; unreadable
/// parts count as nothing.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// `135.2` -> `2m15s`.
pub fn format_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{sec:02}s")
    } else {
        format!("{m}m{sec:02}s")
    }
}

/// `reconstructed ok, totals FAILED`; `-` for none.
fn verdict_words(verdicts: &[(String, bool)]) -> String {
    if verdicts.is_empty() {
        return "-".into();
    }
    verdicts
        .iter()
        .map(|(n, ok)| format!("{n} {}", if *ok { "ok" } else { "FAILED" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table `peerlab runs` prints, one line per run, newest last.
pub fn format_table(entries: &[RunEntry]) -> String {
    let header = [
        "#",
        "RUN",
        "DATE",
        "EXPERIMENT",
        "INSTANCES",
        "SEED",
        "DURATION",
        "OUTCOME",
        "VERDICTS",
        "SIZE",
    ];
    let rows: Vec<[String; 10]> = entries
        .iter()
        .map(|e| {
            [
                e.number
                    .map(|n| format!("{n}"))
                    .unwrap_or_else(|| "-".into()),
                if e.latest {
                    format!("{} (latest)", e.folder)
                } else {
                    e.folder.clone()
                },
                e.date
                    .as_deref()
                    .map(|d| d.replacen('T', " ", 1))
                    .unwrap_or_else(|| "-".into()),
                e.experiment.clone().unwrap_or_else(|| "-".into()),
                e.instances
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                e.duration_s
                    .map(format_duration)
                    .unwrap_or_else(|| "-".into()),
                e.state.label(),
                verdict_words(&e.verdicts),
                crate::plot::human_bytes(e.size_bytes as f64),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Numbers right-aligned, text left-aligned; no trailing spaces.
            let right = matches!(i, 0 | 4 | 5 | 6 | 9);
            let pad = w - c.chars().count();
            if i > 0 {
                l.push_str("  ");
            }
            if right {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(5.25), "5.2s");
        assert_eq!(format_duration(135.2), "2m15s");
        assert_eq!(format_duration(3725.0), "1h02m05s");
        assert_eq!(format_duration(f64::NAN), "?");
    }

    #[test]
    fn table_aligns_columns() {
        let e = RunEntry {
            folder: "0012-benaloh".into(),
            number: Some(12),
            date: Some("2026-11-25T03:15:17Z".into()),
            experiment: Some("benaloh".into()),
            instances: Some(5),
            duration_s: Some(135.2),
            seed: Some(7),
            verdicts: vec![("reconstructed".into(), true), ("totals".into(), false)],
            state: RunState::Finished("passed".into()),
            size_bytes: 1536,
            latest: true,
            has_report: true,
        };
        let broken = RunEntry {
            folder: "0013-x".into(),
            number: Some(13),
            date: None,
            experiment: None,
            instances: None,
            duration_s: None,
            seed: None,
            verdicts: Vec::new(),
            state: RunState::Broken("run.json cut short".into()),
            size_bytes: 10,
            latest: false,
            has_report: false,
        };
        let t = format_table(&[e, broken]);
        let expected = concat!(
            " #  RUN                    DATE                  EXPERIMENT  INSTANCES  SEED  DURATION  OUTCOME                      VERDICTS                            SIZE\n",
            "12  0012-benaloh (latest)  2026-11-25 03:15:17Z  benaloh             5     7     2m15s  passed                       reconstructed ok, totals FAILED  1.5 KiB\n",
            "13  0013-x                 -                     -                   -     -         -  broken (run.json cut short)  -                                   10 B\n",
        );
        assert_eq!(t, expected);
    }
}
