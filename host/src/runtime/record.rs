//! One instance's output files: what it prints (`.out`), its errors and
//! logs (`.err`), its counters (`.stats.jsonl`) and its annotations,
//! commands and faults (`.events.jsonl`), as docs/outputs.md specifies.
//!
//! Printed lines are written at once (a crash must not lose them); the
//! JSON-lines files at every sample and at the end, except a scenario
//! command's event, written before the command runs (a hang or an abort
//! must not hide which command ran). Files are opened only while written,
//! so one process can host thousands of instances.
//!
//! A write that fails (a full disk) never stops the instance: what could
//! not be written is counted per file and reported with the instance's end
//! ([`Record::losses`]). Nothing here prints to the console (stderr may be
//! on the same full disk, or a closed pipe).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use peerlab_run::schema::StatsLine;
use peerlab_run::{EventLine, InstancePaths};

use super::inflight::Slot;

/// One output file, opened only while being written: a process may host
/// thousands of instances, more than it may keep files open.
struct Sink {
    path: PathBuf,
    buf: Vec<u8>,
    lost: Lost,
}

/// What could not be written to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// Lines not written (or only in part).
    pub lines: u64,
    pub bytes: u64,
    /// The first error.
    pub error: String,
}

impl Sink {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            buf: Vec::new(),
            lost: Lost::default(),
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
            // Counted, never printed: stderr may be on the same full disk.
            if self.lost.lines == 0 && self.lost.bytes == 0 {
                self.lost.error = e.to_string();
            }
            self.lost.bytes += self.buf.len() as u64;
            self.lost.lines += self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
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
    /// This instance's line in its process's in-flight file (real
    /// processes only; see [`super::inflight`]).
    in_flight: Option<Slot>,
    /// Statistics recorded by modules, by name (written as `stat/<name>`;
    /// the prefix is added per sample, not per update, which modules make
    /// for every message).
    custom: BTreeMap<String, f64>,
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
            in_flight: None,
            custom: BTreeMap::new(),
        })
    }

    /// Write down which callback runs from now on in `slot`.
    pub fn attach_in_flight(&mut self, slot: Slot) {
        self.in_flight = Some(slot);
    }

    /// A module callback starts: say which (before it runs).
    pub fn enter(&mut self, what: std::fmt::Arguments<'_>) {
        if let Some(slot) = self.in_flight.as_mut() {
            slot.set(what);
        }
    }

    /// The callback returned.
    pub fn leave(&mut self) {
        if let Some(slot) = self.in_flight.as_mut() {
            slot.clear();
        }
    }

    /// Write the buffered events now (a scenario command's event goes to
    /// disk before the command runs).
    pub fn flush_events(&mut self) {
        self.events.flush();
    }

    /// What could not be written so far, per file (absolute paths).
    pub fn losses(&self) -> Vec<(&Path, &Lost)> {
        [&self.out, &self.err, &self.stats, &self.events]
            .into_iter()
            .filter(|s| s.lost.bytes > 0)
            .map(|s| (s.path.as_path(), &s.lost))
            .collect()
    }

    /// The losses in words, for the instance's end report; `None` when
    /// everything was written.
    pub fn losses_text(&self) -> Option<String> {
        let parts: Vec<String> = self
            .losses()
            .into_iter()
            .map(|(path, lost)| {
                format!(
                    "{} line{} ({} bytes) could not be written to {}: {}",
                    lost.lines,
                    if lost.lines == 1 { "" } else { "s" },
                    lost.bytes,
                    path.display(),
                    lost.error
                )
            })
            .collect();
        (!parts.is_empty()).then(|| format!("output lost: {}", parts.join("; ")))
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

    pub fn event(&mut self, event: &EventLine<'_>) {
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
                observations: Default::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Point one of the instance's files at /dev/full: every write to it
    /// fails with "No space left on device", as on a full disk.
    fn on_full_disk(run_dir: &Path, rel: &Path) {
        let path = run_dir.join(rel);
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    }

    #[test]
    fn a_full_disk_is_counted_per_file_and_never_stops_the_instance() {
        let dir = tempfile::tempdir().unwrap();
        let paths = InstancePaths::new("localhost", 1, 7);
        let mut rec = Record::create(dir.path(), &paths).unwrap();
        on_full_disk(dir.path(), &paths.out);
        on_full_disk(dir.path(), &paths.events);
        rec.print("lost one");
        rec.print("lost two");
        rec.error("kept");
        rec.event(&EventLine::new(
            1.0,
            peerlab_run::schema::event_kind::ANNOTATION,
        ));
        rec.sample(1.0, false, Vec::new());
        rec.flush();
        let losses = rec.losses();
        assert_eq!(losses.len(), 2, "{losses:?}");
        let out = losses[0];
        assert_eq!(out.0, dir.path().join(&paths.out));
        assert_eq!(
            (out.1.lines, out.1.bytes),
            (2, "lost one\nlost two\n".len() as u64)
        );
        assert!(out.1.error.contains("No space left"), "{:?}", out.1);
        assert_eq!(losses[1].0, dir.path().join(&paths.events));
        assert_eq!(losses[1].1.lines, 1);
        let text = rec.losses_text().unwrap();
        assert!(
            text.contains(&format!(
                "2 lines (18 bytes) could not be written to {}",
                dir.path().join(&paths.out).display()
            )),
            "{text}"
        );
        // The files that could be written were.
        assert_eq!(
            fs::read_to_string(dir.path().join(&paths.err)).unwrap(),
            "kept\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(&paths.stats))
                .unwrap()
                .lines()
                .count(),
            1
        );
        drop(rec);
    }

    #[test]
    fn nothing_lost_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = InstancePaths::new("localhost", 1, 1);
        let mut rec = Record::create(dir.path(), &paths).unwrap();
        rec.print("fine");
        assert!(rec.losses().is_empty());
        assert_eq!(rec.losses_text(), None);
    }
}
