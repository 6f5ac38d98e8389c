//! The loader: the only module that reads a run folder's files for a report
//! ([`crate::history`] reads only `run.json` and `summary.json`, to list
//! runs). It turns files into the plain data of [`crate::model`], one pass
//! over each file, and never does maths beyond parsing. What each file holds and where it is
//! are peerlab-run's (its layout, record types and line types): the report
//! reads the same types the host writes.
//!
//! Nothing here is fatal except a folder that is not there: a missing,
//! unreadable or malformed file becomes a [`Warning`] and the data it could
//! not give is left out. A half-written last line (an instance that crashed
//! mid-write) is expected and reported as such.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use peerlab_run::layout::{self, InstanceFile, RUN_JSON, SUMMARY_JSON};
use peerlab_run::read::{self as records, OrderedCounters, RecordError};
use peerlab_run::schema::{EventKind, EventLine, ResourceLine, StatsLine};

use crate::error::{ReportError, Warning};
use crate::model::{
    AutoplotFile, Event, InstanceData, InstanceFiles, ProcessData, ProcessFile, ResourceSample,
    RunIndex, StatsSample,
};

/// At most this many line warnings per file; the rest are counted in one.
const LINE_WARNINGS_PER_FILE: usize = 5;

/// Lists what the run folder holds and reads `run.json` and `summary.json`.
pub fn index(run_dir: &Path) -> Result<RunIndex, ReportError> {
    if !run_dir.is_dir() {
        return Err(ReportError::NoRunFolder {
            path: run_dir.to_path_buf(),
        });
    }
    let mut index = RunIndex::default();

    match read_optional(run_dir, RUN_JSON)? {
        Some(text) => match records::run_record_from_str(&text) {
            Ok(plan) => index.plan = Some(plan),
            Err(e) => index.warnings.push(Warning::file(
                RUN_JSON,
                format!("{}; ignored", record_problem(&e)),
            )),
        },
        None => index.warnings.push(Warning::file(
            RUN_JSON,
            "missing: the run's plan is unknown",
        )),
    }
    index.summary_text = read_optional(run_dir, SUMMARY_JSON)?;
    match &index.summary_text {
        Some(text) => match records::summary_from_str(text) {
            Ok(summary) => index.summary = Some(summary),
            Err(e @ RecordError::Schema(_)) => index.warnings.push(Warning::file(
                SUMMARY_JSON,
                format!("{}; the runner's fields are ignored", record_problem(&e)),
            )),
            Err(e) => index.warnings.push(Warning::file(
                SUMMARY_JSON,
                format!("{}; left as it is", record_problem(&e)),
            )),
        },
        None => index.warnings.push(Warning::file(
            SUMMARY_JSON,
            "missing: the run did not finish (crashed, interrupted or still running)",
        )),
    }

    let mut instances: HashMap<u32, InstanceFiles> = HashMap::new();
    let mut found_node_dir = false;
    for host_entry in list_dir(run_dir)? {
        let (host, host_path) = host_entry;
        if host == layout::PLOTS_DIR || host.starts_with('.') || !host_path.is_dir() {
            continue;
        }
        let Some(nodes) = list_or_warn(&host_path, &host, &mut index.warnings) else {
            continue;
        };
        for (node_name, node_path) in nodes {
            let Some(node) = node_name
                .strip_prefix("node")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if !node_path.is_dir() {
                continue;
            }
            found_node_dir = true;
            let rel_dir = format!("{host}/{node_name}");
            let Some(files) = list_or_warn(&node_path, &rel_dir, &mut index.warnings) else {
                continue;
            };
            for (file, path) in files {
                let rel = format!("{host}/{node_name}/{file}");
                if path.is_dir() {
                    // Gumby's autoplot: the node's `autoplot/`, or an
                    // instance folder's (`<ID>/autoplot/`).
                    if file == AUTOPLOT_DIR {
                        autoplot_files(&path, &rel, None, &mut index);
                    } else if let Ok(id) = file.parse::<u32>() {
                        let dir = path.join(AUTOPLOT_DIR);
                        if dir.is_dir() {
                            let rel = format!("{rel}/{AUTOPLOT_DIR}");
                            autoplot_files(&dir, &rel, Some(id), &mut index);
                        }
                    }
                    continue;
                }
                if let Some((p, layout::ProcessFile::Resources)) = layout::process_file(&file) {
                    index.processes.push(ProcessFile {
                        process: p,
                        host: host.clone(),
                        node,
                        path: rel,
                    });
                    continue;
                }
                let Some((id, kind)) = layout::instance_file(&file) else {
                    continue;
                };
                if kind == InstanceFile::Capture {
                    // Packet captures are for tcpdump and Wireshark, not the report.
                    continue;
                }
                let entry = instances.entry(id).or_insert_with(|| InstanceFiles {
                    id,
                    host: host.clone(),
                    node,
                    stats: None,
                    events: None,
                    out: None,
                    err: None,
                });
                if entry.host != host || entry.node != node {
                    index.warnings.push(Warning::file(
                        rel.clone(),
                        format!(
                            "instance {id} also has files in {}/node{:03}; using those",
                            entry.host, entry.node
                        ),
                    ));
                    continue;
                }
                let slot = match kind {
                    InstanceFile::Stats => &mut entry.stats,
                    InstanceFile::Events => &mut entry.events,
                    InstanceFile::Out => &mut entry.out,
                    InstanceFile::Err => &mut entry.err,
                    InstanceFile::Capture => continue,
                };
                *slot = Some(rel);
            }
        }
    }
    if index.plan.is_none() && index.summary.is_none() && !found_node_dir {
        return Err(ReportError::NotARun {
            path: run_dir.to_path_buf(),
        });
    }
    index.instances = instances.into_values().collect();
    index.instances.sort_by_key(|i| i.id);
    index
        .processes
        .sort_by(|a, b| (&a.host, a.node, a.process).cmp(&(&b.host, b.node, b.process)));
    index
        .autoplot
        .sort_by(|a, b| (&a.name, &a.path).cmp(&(&b.name, &b.path)));
    Ok(index)
}

/// The folder modules write CSVs to be plotted into (Gumby's autoplot).
pub const AUTOPLOT_DIR: &str = "autoplot";

fn autoplot_files(dir: &Path, rel_dir: &str, instance: Option<u32>, index: &mut RunIndex) {
    let Some(files) = list_or_warn(dir, rel_dir, &mut index.warnings) else {
        return;
    };
    for (file, path) in files {
        let Some(stem) = file.strip_suffix(".csv") else {
            continue;
        };
        if stem.is_empty() || !path.is_file() {
            continue;
        }
        index.autoplot.push(AutoplotFile {
            path: format!("{rel_dir}/{file}"),
            name: stem.to_string(),
            instance,
        });
    }
}

/// The run's `post_process_cmd`, as `run.json` recorded the config.
pub fn post_process_cmd_of(run_dir: &Path) -> Option<String> {
    let plan = records::read_run_record(run_dir).ok()?;
    plan.config
        .get(crate::POST_PROCESS_KEY)
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
}

/// Where `post_process_cmd` puts images for the report's gallery.
pub const EXTRA_PLOTS_DIR: &str = "plots/extra";

/// Largest extra image embedded in the page; a larger one is linked.
pub const MAX_EMBEDDED_EXTRA: u64 = 8 * 1024 * 1024;

/// An image under `plots/extra/`: its relative path and, when it is small
/// enough to embed, its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraImage {
    pub path: String,
    pub bytes: Option<Vec<u8>>,
}

/// The images (`.png`, `.svg`, `.jpg`, `.jpeg`, `.gif`) under
/// `plots/extra/`, sorted by name; none when the folder is absent.
pub fn extra_images(run_dir: &Path, warnings: &mut Vec<Warning>) -> Vec<ExtraImage> {
    let dir = run_dir.join(EXTRA_PLOTS_DIR);
    if !dir.is_dir() {
        return Vec::new();
    }
    let Some(files) = list_or_warn(&dir, EXTRA_PLOTS_DIR, warnings) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, path) in files {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("png" | "svg" | "jpg" | "jpeg" | "gif")) {
            continue;
        }
        let rel = format!("{EXTRA_PLOTS_DIR}/{name}");
        let small = fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_EMBEDDED_EXTRA);
        let bytes = if small {
            match fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) => {
                    warnings.push(Warning::file(
                        rel.clone(),
                        format!("cannot read ({e}); linked, not shown"),
                    ));
                    None
                }
            }
        } else {
            None
        };
        out.push(ExtraImage { path: rel, bytes });
    }
    out
}

/// Reads an autoplot CSV (its text), or says why not.
pub fn autoplot_text(
    run_dir: &Path,
    file: &AutoplotFile,
    warnings: &mut Vec<Warning>,
) -> Option<String> {
    read_or_warn(run_dir, &file.path, warnings)
}

/// What is wrong with a record, in a warning's words.
fn record_problem(e: &RecordError) -> String {
    match e {
        RecordError::NotAnObject => "not a JSON object".into(),
        other => other.to_string(),
    }
}

/// Reads the statistics and events of one instance.
pub fn instance(run_dir: &Path, files: &InstanceFiles) -> InstanceData {
    let mut data = InstanceData {
        id: files.id,
        ..InstanceData::default()
    };
    match &files.stats {
        Some(rel) => {
            if let Some(text) = read_or_warn(run_dir, rel, &mut data.warnings) {
                parse_stats(rel, &text, &mut data);
            }
        }
        None => data.warnings.push(Warning::file(
            InstanceFile::Stats.rel(&files.host, files.node, files.id),
            "missing: this instance recorded no statistics",
        )),
    }
    if let Some(rel) = &files.events
        && let Some(text) = read_or_warn(run_dir, rel, &mut data.warnings)
    {
        parse_events(rel, &text, &mut data);
    }
    data
}

/// Reads one process's resources file.
pub fn process(run_dir: &Path, file: &ProcessFile) -> ProcessData {
    let mut data = ProcessData {
        process: file.process,
        host: file.host.clone(),
        node: file.node,
        path: file.path.clone(),
        ..ProcessData::default()
    };
    let Some(text) = read_or_warn(run_dir, &file.path, &mut data.warnings) else {
        return data;
    };
    let mut lines = LineErrors::new(&file.path);
    for (n, line, last) in lines_of(&text) {
        match serde_json::from_str::<ResourceLine<'_>>(line) {
            Ok(r) => {
                if !plausible(r.t) {
                    lines.bad(n, IMPLAUSIBLE_T, last);
                    continue;
                }
                for &id in r.instances.iter() {
                    if let Err(pos) = data.instances.binary_search(&id) {
                        data.instances.insert(pos, id);
                    }
                }
                data.samples.push(ResourceSample {
                    t: r.t,
                    pid: r.pid,
                    cpu_user_s: r.cpu_user_s,
                    cpu_system_s: r.cpu_system_s,
                    rss_kb: r.rss_kb as f64,
                    read_bytes: r.read_bytes as f64,
                    write_bytes: r.write_bytes as f64,
                });
            }
            Err(e) => lines.json(n, &e, last),
        }
    }
    lines.finish(&mut data.warnings);
    data
}

fn parse_stats(rel: &str, text: &str, data: &mut InstanceData) {
    let mut names: HashMap<String, u32> = HashMap::new();
    let mut obs_names: HashMap<String, u32> = HashMap::new();
    let mut lines = LineErrors::new(rel);
    for (n, line, last) in lines_of(text) {
        let raw: StatsLine<OrderedCounters<'_>> = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                lines.json(n, &e, last);
                continue;
            }
        };
        if !plausible(raw.t) {
            lines.bad(n, IMPLAUSIBLE_T, last);
            continue;
        }
        let mut values = Vec::with_capacity(raw.counters.0.len());
        for (name, value) in raw.counters.0 {
            let idx = match names.get(name.as_ref()) {
                Some(&i) => i,
                None => {
                    let i = data.counter_names.len() as u32;
                    data.counter_names.push(name.clone().into_owned());
                    names.insert(name.into_owned(), i);
                    i
                }
            };
            values.push((idx, value));
        }
        let mut observations = Vec::with_capacity(raw.observations.len());
        for (name, hist) in raw.observations {
            let idx = match obs_names.get(name.as_str()) {
                Some(&i) => i,
                None => {
                    let i = data.observation_names.len() as u32;
                    data.observation_names.push(name.clone());
                    obs_names.insert(name, i);
                    i
                }
            };
            observations.push((idx, hist));
        }
        data.stats.push(StatsSample {
            t: raw.t,
            reset: raw.reset,
            values,
            observations,
        });
    }
    lines.finish(&mut data.warnings);
}

fn parse_events(rel: &str, text: &str, data: &mut InstanceData) {
    let mut lines = LineErrors::new(rel);
    for (n, line, last) in lines_of(text) {
        let raw: EventLine<'_> = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                lines.json(n, &e, last);
                continue;
            }
        };
        if !plausible(raw.t) {
            lines.bad(n, IMPLAUSIBLE_T, last);
            continue;
        }
        let kind = raw.kind();
        // Where the instance listened is not a moment of the timeline, and
        // its text differs per instance: peers.json has every address.
        if kind == EventKind::Address {
            continue;
        }
        let text = match kind {
            EventKind::Command => raw.callback.or(raw.text).map(|c| c.into_owned()),
            EventKind::End => raw
                .status
                .map(|s| s.as_str().to_string())
                .or(raw.text.map(|t| t.into_owned())),
            _ => raw.text.map(|t| t.into_owned()),
        }
        .unwrap_or_default();
        data.events.push(Event {
            t: raw.t,
            kind,
            text,
        });
    }
    lines.finish(&mut data.warnings);
}

/// Non-empty lines with their 1-based number and whether the line is the
/// file's last and lacks its newline (a write cut short).
fn lines_of(text: &str) -> impl Iterator<Item = (usize, &str, bool)> {
    let unterminated = !text.is_empty() && !text.ends_with('\n');
    let count = text.lines().count();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(move |(i, l)| (i + 1, l, unterminated && i + 1 == count))
}

/// Collects line warnings for one file, keeping the first few.
struct LineErrors<'a> {
    file: &'a str,
    kept: Vec<Warning>,
    total: usize,
}

impl<'a> LineErrors<'a> {
    fn new(file: &'a str) -> Self {
        LineErrors {
            file,
            kept: Vec::new(),
            total: 0,
        }
    }

    fn json(&mut self, line: usize, e: &serde_json::Error, last: bool) {
        if last && e.is_eof() {
            self.push(
                line,
                "truncated last line (the instance probably stopped while writing it); skipped"
                    .into(),
            );
        } else {
            self.push(line, format!("malformed line ({e}); skipped"));
        }
    }

    fn bad(&mut self, line: usize, what: &str, _last: bool) {
        self.push(line, format!("{what}; line skipped"));
    }

    fn push(&mut self, line: usize, message: String) {
        self.total += 1;
        if self.kept.len() < LINE_WARNINGS_PER_FILE {
            self.kept.push(Warning::line(self.file, line, message));
        }
    }

    fn finish(self, out: &mut Vec<Warning>) {
        let hidden = self.total - self.kept.len();
        out.extend(self.kept);
        if hidden > 0 {
            out.push(Warning::file(
                self.file,
                format!("{hidden} more malformed lines skipped"),
            ));
        }
    }
}

/// Counts line warnings, including the ones folded into "N more" entries.
pub fn skipped_lines(warnings: &[Warning]) -> usize {
    warnings
        .iter()
        .map(|w| {
            if w.line.is_some() && w.message.ends_with("skipped") {
                1
            } else if w.line.is_none() && w.message.ends_with("more malformed lines skipped") {
                w.message
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            } else {
                0
            }
        })
        .sum()
}

fn read_optional(run_dir: &Path, rel: &str) -> Result<Option<String>, ReportError> {
    let path = run_dir.join(rel);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

fn read_or_warn(run_dir: &Path, rel: &str, warnings: &mut Vec<Warning>) -> Option<String> {
    match fs::read(run_dir.join(rel)) {
        Ok(bytes) => Some(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(Warning::file(rel, "not valid UTF-8; bad bytes replaced"));
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        }),
        Err(e) => {
            warnings.push(Warning::file(rel, format!("cannot read ({e}); left out")));
            None
        }
    }
}

/// Lists a folder inside the run; a folder that cannot be read is a warning.
fn list_or_warn(
    dir: &Path,
    rel: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Vec<(String, std::path::PathBuf)>> {
    match list_dir(dir) {
        Ok(v) => Some(v),
        Err(e) => {
            let why = match e {
                ReportError::Read { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            warnings.push(Warning::file(
                rel,
                format!("cannot list this folder ({why}); its files are left out"),
            ));
            None
        }
    }
}

fn list_dir(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, ReportError> {
    let rd = fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| ReportError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The farthest from the run's start a sample may be (a year): anything
/// beyond is a damaged line, and would make the time bins enormous.
const MAX_T: f64 = 365.0 * 24.0 * 3600.0;

const IMPLAUSIBLE_T: &str = "t is not a finite number within a year of the run's start";

fn plausible(t: f64) -> bool {
    t.is_finite() && t.abs() <= MAX_T
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_tolerate_garbage_and_a_half_line() {
        let text = concat!(
            "{\"t\": 1.0, \"counters\": {\"msg_out/a\": 2, \"peers\": 1}}\n",
            "not json\n",
            "\n",
            "{\"t\": 2.0, \"reset\": true, \"counters\": {\"msg_out/a\": 1, \"msg_in/\\u0062\": 3}}\n",
            "{\"t\": 3.0, \"counters\": {\"msg_out/a\": 4, \"peers\": 2}}\n",
            "{\"t\": 4.0, \"counters\": {\"msg_o",
        );
        let mut data = InstanceData::default();
        parse_stats("h/node001/00001.stats.jsonl", text, &mut data);
        assert_eq!(data.counter_names, vec!["msg_out/a", "peers", "msg_in/b"]);
        assert_eq!(data.stats.len(), 3);
        assert!(data.stats[1].reset);
        assert_eq!(data.stats[2].values, vec![(0, 4.0), (1, 2.0)]);
        assert_eq!(data.warnings.len(), 2);
        assert_eq!(data.warnings[0].line, Some(2));
        assert!(
            data.warnings[0].message.starts_with("malformed line"),
            "{}",
            data.warnings[0]
        );
        assert_eq!(data.warnings[1].line, Some(6));
        assert!(
            data.warnings[1].message.starts_with("truncated last line"),
            "{}",
            data.warnings[1]
        );
        assert_eq!(skipped_lines(&data.warnings), 2);
    }

    #[test]
    fn many_bad_lines_are_counted_not_listed() {
        let text = "x\n".repeat(12);
        let mut data = InstanceData::default();
        parse_stats("f", &text, &mut data);
        assert_eq!(data.warnings.len(), LINE_WARNINGS_PER_FILE + 1);
        assert_eq!(
            data.warnings.last().unwrap().message,
            "7 more malformed lines skipped"
        );
        assert_eq!(skipped_lines(&data.warnings), 12);
    }

    #[test]
    fn null_or_string_counters_make_the_line_malformed() {
        let text =
            "{\"t\": 1, \"counters\": {\"a\": null}}\n{\"t\": 2, \"counters\": {\"a\": \"x\"}}\n";
        let mut data = InstanceData::default();
        parse_stats("f", text, &mut data);
        assert!(data.stats.is_empty());
        assert_eq!(data.warnings.len(), 2);
    }

    #[test]
    fn events_take_their_text_from_the_right_field() {
        let text = concat!(
            "{\"t\": 15.0, \"kind\": \"annotation\", \"text\": \"start-experiment\"}\n",
            "{\"t\": 30.0, \"kind\": \"command\", \"callback\": \"share_local\", \"line\": 9}\n",
            "{\"t\": 135.0, \"kind\": \"end\", \"status\": \"finished\"}\n",
            "{\"t\": 136.0, \"kind\": \"mystery\"}\n",
        );
        let mut data = InstanceData::default();
        parse_events("f", text, &mut data);
        let got: Vec<_> = data
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("annotation", "start-experiment"),
                ("command", "share_local"),
                ("end", "finished"),
                ("mystery", "")
            ]
        );
        assert!(data.warnings.is_empty());
    }
}
