//! One instance's output records: what it prints (`.out`), its errors and
//! logs (`.err`), its counters (`.stats.jsonl`) and its annotations,
//! commands and faults (`.events.jsonl`), as docs/outputs.md specifies.
//!
//! The instance formats its records into per-file buffers here; where the
//! bytes go is its driver's [`Storage`] (the host's writes the run folder's
//! files; a test's may keep them in memory). The hand-over is a call, not
//! an output the driver polls, because some records must be stored while
//! the instance is in the middle of its work: a scenario command's event
//! before the command runs, and the callback an instance is in (a hang or
//! an abort must not hide either).
//!
//! When records are handed over, and so what a killed process can lose:
//! - printed and logged lines (`.out`, `.err`) at once, one hand-over per
//!   line: nothing. They stay unbuffered on purpose: a line printed inside
//!   a callback that never returns must be visible while the instance
//!   hangs (`tests/tests/lifecycle.rs::killing_peerlab_run_takes_every_instance_process_with_it`
//!   waits for one), and so must the lines before an abort;
//! - statistics and events (`.stats.jsonl`, `.events.jsonl`) buffered, at
//!   every sample (once a second) and at the end, and the events also
//!   before each scenario command runs: at most the last second's events
//!   since the last command, and the last second's statistics line.
//!   A simulated run (all instances in one process, which a kill ends
//!   together) hands statistics over in batches instead
//!   ([`Record::batch_statistics`]): a kill loses up to a batch of lines
//!   per instance, a stop (`Ctrl-C`, the time limit) nothing.
//!
//! A hand-over that fails (a full disk) never stops the instance: what
//! could not be stored is counted per file ([`Record::losses`]) and
//! reported with the instance's end: its outcome is failed, and its end
//! event (when the events file can still be written) says `failed` with
//! the losses as its `text`. Must not: do I/O itself, print to the
//! console (stderr may be on the same full disk, or a closed pipe).

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use peerlab_run::EventLine;
use peerlab_run::metrics::Histogram;
use peerlab_run::schema::StatsLine;

/// One of an instance's output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFile {
    /// What it prints (`.out`).
    Out,
    /// Its errors and logs (`.err`).
    Err,
    /// Its statistics samples (`.stats.jsonl`).
    Stats,
    /// Its events (`.events.jsonl`).
    Events,
}

/// Where an instance's records go: the driver's side of [`Record`].
pub trait Storage: Send {
    /// Append whole lines to `file`.
    fn append(&mut self, file: OutputFile, bytes: &[u8]) -> io::Result<()>;
    /// What `file` is in words (its path), for the report of what was lost.
    fn name(&self, file: OutputFile) -> String;
    /// A module callback starts: say which (before it runs), for a
    /// supervisor that must name the callback of a hung instance.
    fn enter(&mut self, _what: fmt::Arguments<'_>) {}
    /// The callback returned.
    fn leave(&mut self) {}
}

/// One output file's buffer.
struct Sink {
    file: OutputFile,
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
    fn new(file: OutputFile) -> Self {
        Self {
            file,
            buf: Vec::new(),
            lost: Lost::default(),
        }
    }

    fn flush(&mut self, storage: &mut dyn Storage) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = storage.append(self.file, &self.buf) {
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

/// The records of one instance.
pub struct Record {
    out: Sink,
    err: Sink,
    stats: Sink,
    events: Sink,
    storage: Box<dyn Storage>,
    /// Statistics recorded by modules, by name (written as `stat/<name>`;
    /// the prefix is added per sample, not per update, which modules make
    /// for every message).
    custom: BTreeMap<String, f64>,
    /// Statistics are handed over once this many bytes are buffered (0:
    /// at every sample).
    stats_batch: usize,
}

impl Record {
    /// Records that go to `storage`.
    pub fn new(storage: Box<dyn Storage>) -> Self {
        Self {
            out: Sink::new(OutputFile::Out),
            err: Sink::new(OutputFile::Err),
            stats: Sink::new(OutputFile::Stats),
            events: Sink::new(OutputFile::Events),
            storage,
            custom: BTreeMap::new(),
            stats_batch: 0,
        }
    }

    /// Hand statistics lines over once `bytes` of them are buffered, not
    /// at every sample: fewer writes (and, for the host's files, opens)
    /// where thousands of instances share one process and a kill ends them
    /// all. The end hands over the rest.
    pub fn batch_statistics(&mut self, bytes: usize) {
        self.stats_batch = bytes;
    }

    /// A module callback starts: say which (before it runs).
    pub fn enter(&mut self, what: fmt::Arguments<'_>) {
        self.storage.enter(what);
    }

    /// The callback returned.
    pub fn leave(&mut self) {
        self.storage.leave();
    }

    /// Write the buffered events now (a scenario command's event goes to
    /// disk before the command runs).
    pub fn flush_events(&mut self) {
        self.events.flush(self.storage.as_mut());
    }

    /// What could not be written so far, per file (named by the storage:
    /// the host's names the absolute path).
    pub fn losses(&self) -> Vec<(String, &Lost)> {
        [&self.out, &self.err, &self.stats, &self.events]
            .into_iter()
            .filter(|s| s.lost.bytes > 0)
            .map(|s| (self.storage.name(s.file), &s.lost))
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
                    path,
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
        self.out.flush(self.storage.as_mut());
    }

    /// A line for the instance's error log.
    pub fn error(&mut self, line: &str) {
        self.err.buf.extend_from_slice(line.as_bytes());
        self.err.buf.push(b'\n');
        self.err.flush(self.storage.as_mut());
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

    /// Write one sample: `counters` (the overlay's and the module
    /// metrics') plus the module statistics (`stat/<name>`), and the
    /// observations of the interval.
    pub fn sample(
        &mut self,
        t: f64,
        reset: bool,
        mut counters: BTreeMap<String, f64>,
        observations: BTreeMap<String, Histogram>,
    ) {
        counters.extend(self.custom.iter().map(|(k, v)| (format!("stat/{k}"), *v)));
        let _ = serde_json::to_writer(
            &mut self.stats.buf,
            &StatsLine {
                t,
                reset,
                counters: &counters,
                observations,
            },
        );
        self.stats.buf.push(b'\n');
        self.stats.flush(self.storage.as_mut());
        self.events.flush(self.storage.as_mut());
    }

    /// Write one sample the caller formats into the statistics buffer
    /// (`write(buf, module statistics)`: see `stats_line.rs`), then hand
    /// the statistics and events over, as [`Record::sample`] does.
    pub fn sample_with(&mut self, write: impl FnOnce(&mut Vec<u8>, &BTreeMap<String, f64>)) {
        write(&mut self.stats.buf, &self.custom);
        if self.stats.buf.len() >= self.stats_batch {
            self.stats.flush(self.storage.as_mut());
        }
        self.events.flush(self.storage.as_mut());
    }

    /// Hand every buffered record to the storage.
    pub fn flush(&mut self) {
        let storage = self.storage.as_mut();
        for sink in [
            &mut self.out,
            &mut self.err,
            &mut self.stats,
            &mut self.events,
        ] {
            sink.flush(storage);
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.flush();
    }
}
