//! Where an instance's records go in the run folder: [`FileStorage`], the
//! host's [`Storage`] for `peerlab_instance::record::Record`, writing the
//! instance's `.out`, `.err`, `.stats.jsonl` and `.events.jsonl` files
//! (docs/outputs.md) and its line of the process's in-flight file.
//!
//! Files are opened only while written, so one process can host thousands
//! of instances. An error goes back to the record, which counts it (a full
//! disk never stops an instance). Must not: print to the console (stderr
//! may be on the same full disk, or a closed pipe), decide when to write
//! (the instance's record does).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use peerlab_instance::record::{OutputFile, Record, Storage};
use peerlab_run::InstancePaths;

use super::inflight::Slot;

/// Bytes of statistics lines a simulated instance buffers before they are
/// written (`Record::batch_statistics`): about four lines of the overlay's
/// counters, so a file is opened a quarter as often, while 100,000
/// instances buffer at most 400 MB.
pub const SIMULATED_STATS_BATCH: usize = 4096;

/// An instance's files in the run folder.
pub struct FileStorage {
    out: PathBuf,
    err: PathBuf,
    stats: PathBuf,
    events: PathBuf,
    /// This instance's line in its process's in-flight file (real
    /// processes only; see [`super::inflight`]).
    in_flight: Option<Slot>,
}

/// Create (empty) the file at `run_dir/rel` and its directory.
fn create(run_dir: &Path, rel: &Path) -> io::Result<PathBuf> {
    let path = run_dir.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok(path)
}

impl FileStorage {
    /// Create the instance's (empty) files under `run_dir`.
    pub fn create(run_dir: &Path, paths: &InstancePaths) -> io::Result<Self> {
        Ok(Self {
            out: create(run_dir, &paths.out)?,
            err: create(run_dir, &paths.err)?,
            stats: create(run_dir, &paths.stats)?,
            events: create(run_dir, &paths.events)?,
            in_flight: None,
        })
    }

    /// Write down which callback runs from now on in `slot`.
    pub fn attach_in_flight(&mut self, slot: Slot) {
        self.in_flight = Some(slot);
    }

    fn path(&self, file: OutputFile) -> &Path {
        match file {
            OutputFile::Out => &self.out,
            OutputFile::Err => &self.err,
            OutputFile::Stats => &self.stats,
            OutputFile::Events => &self.events,
        }
    }
}

impl Storage for FileStorage {
    fn append(&mut self, file: OutputFile, bytes: &[u8]) -> io::Result<()> {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(file))
            .and_then(|mut f| f.write_all(bytes))
    }

    fn name(&self, file: OutputFile) -> String {
        self.path(file).display().to_string()
    }

    fn enter(&mut self, what: std::fmt::Arguments<'_>) {
        if let Some(slot) = self.in_flight.as_mut() {
            slot.set(what);
        }
    }

    fn leave(&mut self) {
        if let Some(slot) = self.in_flight.as_mut() {
            slot.clear();
        }
    }
}

/// The records of the instance whose files are `paths` under `run_dir`
/// (created empty), with its in-flight line if it has one.
pub fn create_record(
    run_dir: &Path,
    paths: &InstancePaths,
    in_flight: Option<Slot>,
) -> io::Result<Record> {
    let mut storage = FileStorage::create(run_dir, paths)?;
    if let Some(slot) = in_flight {
        storage.attach_in_flight(slot);
    }
    Ok(Record::new(Box::new(storage)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_run::EventLine;

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
        let mut rec = create_record(dir.path(), &paths, None).unwrap();
        on_full_disk(dir.path(), &paths.out);
        on_full_disk(dir.path(), &paths.events);
        rec.print("lost one");
        rec.print("lost two");
        rec.error("kept");
        rec.event(&EventLine::new(
            1.0,
            peerlab_run::schema::event_kind::ANNOTATION,
        ));
        rec.sample(1.0, false, Default::default(), Default::default());
        rec.flush();
        let losses = rec.losses();
        assert_eq!(losses.len(), 2, "{losses:?}");
        let out = &losses[0];
        assert_eq!(out.0, dir.path().join(&paths.out).display().to_string());
        assert_eq!(
            (out.1.lines, out.1.bytes),
            (2, "lost one\nlost two\n".len() as u64)
        );
        assert!(out.1.error.contains("No space left"), "{:?}", out.1);
        assert_eq!(
            losses[1].0,
            dir.path().join(&paths.events).display().to_string()
        );
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
        let mut rec = create_record(dir.path(), &paths, None).unwrap();
        rec.print("fine");
        assert!(rec.losses().is_empty());
        assert_eq!(rec.losses_text(), None);
    }
}
