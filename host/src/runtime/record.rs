//! One instance's output files: what it prints (`.out`), its errors and
//! logs (`.err`), its counters (`.stats.jsonl`) and its annotations,
//! commands and faults (`.events.jsonl`), as docs/outputs.md specifies.
//!
//! Printed lines are written at once (a crash must not lose them); the
//! JSON-lines files at every sample and at the end. Files are opened only
//! while written, so one process can host thousands of instances.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runner::folder::InstancePaths;

/// One output file, opened only while being written: a process may host
/// thousands of instances, more than it may keep files open.
struct Sink {
    path: PathBuf,
    buf: Vec<u8>,
}

impl Sink {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            buf: Vec::new(),
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let written = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&self.buf));
        if let Err(e) = written {
            // Nowhere better to say it: the instance's own files are the problem.
            eprintln!("peerlab: cannot write {}: {e}", self.path.display());
        }
        self.buf.clear();
    }
}

/// The writers of one instance.
pub struct Record {
    out: Sink,
    err: Sink,
    stats: Sink,
    events: Sink,
    /// Statistics recorded by modules, by name (written as `stat/<name>`;
    /// the prefix is added per sample, not per update, which modules make
    /// for every message).
    custom: BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct StatsLine<'a> {
    t: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
    counters: &'a BTreeMap<String, f64>,
}

/// One line of `.events.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub t: f64,
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(t: f64, kind: &'a str) -> Self {
        Self {
            t,
            kind,
            text: None,
            callback: None,
            module: None,
            file: None,
            line: None,
            status: None,
        }
    }
}

/// Create (empty) the file at `run_dir/rel` and its directory.
fn create(run_dir: &Path, rel: &Path) -> io::Result<Sink> {
    let path = run_dir.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok(Sink::new(path))
}

impl Record {
    pub fn create(run_dir: &Path, paths: &InstancePaths) -> io::Result<Self> {
        Ok(Self {
            out: create(run_dir, &paths.out)?,
            err: create(run_dir, &paths.err)?,
            stats: create(run_dir, &paths.stats)?,
            events: create(run_dir, &paths.events)?,
            custom: BTreeMap::new(),
        })
    }

    /// A line the instance prints (Gumby's stdout).
    pub fn print(&mut self, line: &str) {
        self.out.buf.extend_from_slice(line.as_bytes());
        self.out.buf.push(b'\n');
        self.out.flush();
    }

    /// A line for the instance's error log.
    pub fn error(&mut self, line: &str) {
        self.err.buf.extend_from_slice(line.as_bytes());
        self.err.buf.push(b'\n');
        self.err.flush();
    }

    pub fn event(&mut self, event: &Event<'_>) {
        let _ = serde_json::to_writer(&mut self.events.buf, event);
        self.events.buf.push(b'\n');
    }

    pub fn stat_add(&mut self, name: &str, value: f64) {
        match self.custom.get_mut(name) {
            Some(v) => *v += value,
            None => {
                self.custom.insert(name.to_owned(), value);
            }
        }
    }

    pub fn stat_set(&mut self, name: &str, value: f64) {
        match self.custom.get_mut(name) {
            Some(v) => *v = value,
            None => {
                self.custom.insert(name.to_owned(), value);
            }
        }
    }

    /// Forget module statistics (after `reset_dispersy_statistics`).
    pub fn reset_custom(&mut self) {
        self.custom.clear();
    }

    /// Write one sample: the overlay's counters plus the module statistics.
    pub fn sample(
        &mut self,
        t: f64,
        reset: bool,
        overlay: impl IntoIterator<Item = (String, f64)>,
    ) {
        let mut counters: BTreeMap<String, f64> = self
            .custom
            .iter()
            .map(|(k, v)| (format!("stat/{k}"), *v))
            .collect();
        counters.extend(overlay);
        let _ = serde_json::to_writer(
            &mut self.stats.buf,
            &StatsLine {
                t,
                reset,
                counters: &counters,
            },
        );
        self.stats.buf.push(b'\n');
        self.stats.flush();
        self.events.flush();
    }

    pub fn flush(&mut self) {
        self.out.flush();
        self.err.flush();
        self.stats.flush();
        self.events.flush();
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.flush();
    }
}
