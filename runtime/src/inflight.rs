//! The in-flight file of an instance process (`process<PPP>.inflight`):
//! for each of its instances, the module callback running right now.
//!
//! A hung or killed process cannot say where it was, so it is written down
//! before every callback: one fixed-size line per instance in a file the
//! process maps into memory (`MAP_SHARED`). A write is a copy into memory,
//! no system call (cheap enough for every message callback), and the
//! kernel keeps the page when the process is stopped, killed or aborts.
//! The supervisor reads it with [`read`] when it ends an instance.
//!
//! Owns: the file's layout and its mapping. Must not: decide what a hang
//! is, or write anything but the slots (the runtime says what runs).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Bytes per instance line, newline included.
const SLOT: usize = 512;

/// The shared mapping of one process's in-flight file.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; every `Slot` writes only its own
// range, and nothing in this process reads it.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap, unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// One instance's line in the in-flight file.
pub struct Slot {
    map: Arc<Mapping>,
    offset: usize,
    /// Length of the `ID ` prefix, kept as written at creation.
    prefix: usize,
    /// Bytes of the body written by the last `set` (the rest is blank).
    used: usize,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("offset", &self.offset)
            .finish()
    }
}

/// Create the in-flight file at `path` with one idle line per id, and
/// return the slots in the order of `ids`.
pub fn create(path: &Path, ids: &[u32]) -> io::Result<Vec<Slot>> {
    let len = SLOT * ids.len().max(1);
    let mut text = Vec::with_capacity(len);
    for &id in ids {
        let start = text.len();
        write!(text, "{id:05} ")?;
        text.resize(start + SLOT - 1, b' ');
        text.push(b'\n');
    }
    text.resize(len, b'\n');
    fs::write(path, &text)?;
    let file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of a file we just sized to `len`.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let map = Arc::new(Mapping {
        ptr: ptr.cast(),
        len,
    });
    Ok(ids
        .iter()
        .enumerate()
        .map(|(i, id)| Slot {
            map: map.clone(),
            offset: i * SLOT,
            prefix: format!("{id:05} ").len().min(SLOT - 1),
            used: 0,
        })
        .collect())
}

impl Slot {
    fn body(&mut self) -> &mut [u8] {
        // SAFETY: the range lies inside the mapping (checked at creation)
        // and belongs to this slot alone; `&mut self` makes it exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.ptr.add(self.offset + self.prefix),
                SLOT - 1 - self.prefix,
            )
        }
    }

    /// Say what runs now (cut to fit the line).
    pub fn set(&mut self, what: std::fmt::Arguments<'_>) {
        let before = self.used;
        let body = self.body();
        let mut rest: &mut [u8] = &mut *body;
        let _ = rest.write_fmt(what);
        let left = rest.len();
        let used = body.len() - left;
        // Blank what the last text left beyond this one (the rest is blank).
        if before > used {
            body[used..before].fill(b' ');
        }
        // A newline in the text would split the line: blank it.
        body[..used]
            .iter_mut()
            .filter(|b| **b == b'\n')
            .for_each(|b| *b = b' ');
        self.used = used;
    }

    /// Nothing runs now.
    pub fn clear(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.body()[..used].fill(b' ');
    }
}

/// What instance `id` was running when its process last wrote the file at
/// `path`; `None` when it was between callbacks or the file says nothing
/// of it.
pub fn read(path: &Path, id: u32) -> Option<String> {
    read_all(path).remove(&id)
}

/// Every instance of the file at `path` that was inside a callback, with
/// the callback (an unreadable file says nothing).
pub fn read_all(path: &Path) -> HashMap<u32, String> {
    let Ok(bytes) = fs::read(path) else {
        return HashMap::new();
    };
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (id, what) = line.split_once(' ')?;
            let what = what.trim();
            if what.is_empty() {
                return None;
            }
            Some((id.parse().ok()?, what.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_has_its_line_and_a_reader_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("process001.inflight");
        let mut slots = create(&path, &[3, 4, 100_000]).unwrap();
        assert_eq!(read(&path, 3), None, "idle at first");
        slots[0].set(format_args!("benaloh.share_local (b.scenario:{})", 12));
        slots[2].set(format_args!("{}", "x".repeat(1000)));
        assert_eq!(
            read(&path, 3).as_deref(),
            Some("benaloh.share_local (b.scenario:12)")
        );
        assert_eq!(read(&path, 4), None);
        assert_eq!(read(&path, 100_000).map(|s| s.len()), Some(SLOT - 8));
        slots[1].set(format_args!("two\nlines"));
        assert_eq!(read(&path, 4).as_deref(), Some("two lines"));
        // What was written survives the writer (the mapping is gone).
        drop(slots);
        assert_eq!(
            read(&path, 3).as_deref(),
            Some("benaloh.share_local (b.scenario:12)")
        );
        assert_eq!(fs::read(&path).unwrap().len(), 3 * SLOT, "fixed-size lines");
    }

    #[test]
    fn clearing_says_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.inflight");
        let mut slots = create(&path, &[1]).unwrap();
        slots[0].set(format_args!("a long callback name to be cleared"));
        slots[0].set(format_args!("short"));
        assert_eq!(read(&path, 1).as_deref(), Some("short"));
        slots[0].clear();
        assert_eq!(read(&path, 1), None);
    }
}
