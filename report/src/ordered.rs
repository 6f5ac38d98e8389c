//! [`InOrder`]: text that several loading threads produce, one chunk per
//! instance, written to one file in instance order as the chunks come, so
//! `timeseries.csv` never has to be held whole in memory. A thread waits
//! before starting an instance more than `window` places ahead
//! of the next one to write, so at most that many chunks wait in memory.
//!
//! Must not: know what the chunks hold (the pipeline decides), or leave a
//! half-written file under the final name (it writes `<name>.tmp` and
//! renames it in [`InOrder::finish`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// Chunks numbered 0, 1, 2, ... written in that order; see the module docs.
pub struct InOrder {
    state: Mutex<State>,
    turn: Condvar,
    window: usize,
    path: PathBuf,
    tmp: PathBuf,
}

struct State {
    /// The number of the next chunk to write.
    next: usize,
    /// Chunks that came before their turn.
    waiting: BTreeMap<usize, String>,
    /// `None` when nothing is written (no file asked for).
    out: Option<BufWriter<File>>,
    /// The first write error; later chunks are then dropped.
    error: Option<io::Error>,
}

impl InOrder {
    /// Writes `header` to `<path>.tmp` and returns the writer; with `path`
    /// `None` chunks are ordered and dropped (nothing is written).
    pub fn create(path: Option<&Path>, header: &str, window: usize) -> io::Result<Self> {
        let (out, path, tmp) = match path {
            Some(p) => {
                let mut tmp = p.as_os_str().to_owned();
                tmp.push(".tmp");
                let tmp = PathBuf::from(tmp);
                let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
                w.write_all(header.as_bytes())?;
                (Some(w), p.to_path_buf(), tmp)
            }
            None => (None, PathBuf::new(), PathBuf::new()),
        };
        Ok(InOrder {
            state: Mutex::new(State {
                next: 0,
                waiting: BTreeMap::new(),
                out,
                error: None,
            }),
            turn: Condvar::new(),
            window: window.max(1),
            path,
            tmp,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until chunk `i` may be produced (it is within the window of
    /// the next one to write). The thread holding the next chunk never
    /// waits, so this cannot deadlock while every taken number is put.
    pub fn wait_turn(&self, i: usize) {
        let mut st = self.lock();
        while i >= st.next + self.window {
            st = self.turn.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Hands over chunk `i` (every number from 0 up must come exactly once)
    /// and writes every chunk whose turn has come.
    pub fn put(&self, i: usize, chunk: String) {
        let mut st = self.lock();
        st.waiting.insert(i, chunk);
        let mut wrote = false;
        loop {
            let next = st.next;
            let Some(c) = st.waiting.remove(&next) else {
                break;
            };
            st.next += 1;
            wrote = true;
            if st.error.is_none()
                && let Some(out) = st.out.as_mut()
                && let Err(e) = out.write_all(c.as_bytes())
            {
                st.error = Some(e);
            }
        }
        drop(st);
        if wrote {
            self.turn.notify_all();
        }
    }

    /// Gives up chunk `i` (its thread stopped before producing it): the
    /// later chunks are still ordered, so no thread waits forever, and
    /// [`InOrder::finish`] fails.
    pub fn abandon(&self, i: usize) {
        {
            let mut st = self.lock();
            if st.error.is_none() {
                st.error = Some(io::Error::other(format!(
                    "chunk {i} was never produced (a loading thread stopped)"
                )));
            }
        }
        self.put(i, String::new());
    }

    /// Flushes and renames the file to its name; returns it (`None` when
    /// nothing was asked for). On an error the temporary file is removed.
    pub fn finish(self) -> Result<Option<PathBuf>, (PathBuf, io::Error)> {
        let st = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let Some(out) = st.out else { return Ok(None) };
        let done = match st.error {
            Some(e) => Err(e),
            None if !st.waiting.is_empty() => Err(io::Error::other(format!(
                "{} chunks never came before their turn (a loading thread stopped)",
                st.waiting.len()
            ))),
            None => out
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|_| std::fs::rename(&self.tmp, &self.path)),
        };
        match done {
            Ok(()) => Ok(Some(self.path)),
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                Err((self.path, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn chunks_from_many_threads_land_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.csv");
        let w = InOrder::create(Some(&path), "h\n", 3).unwrap();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= 200 {
                            break;
                        }
                        w.wait_turn(i);
                        // Later chunks often finish first.
                        if i.is_multiple_of(7) {
                            std::thread::yield_now();
                        }
                        w.put(
                            i,
                            if i.is_multiple_of(5) {
                                String::new()
                            } else {
                                format!("{i}\n")
                            },
                        );
                        assert!(w.lock().waiting.len() <= 3 + 4);
                    }
                });
            }
        });
        assert_eq!(w.finish().unwrap().as_deref(), Some(path.as_path()));
        let want: String = std::iter::once("h\n".to_string())
            .chain((0..200).filter(|i| i % 5 != 0).map(|i| format!("{i}\n")))
            .collect();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
        assert!(!tmp.path().join("out.csv.tmp").exists());
    }

    #[test]
    fn a_missing_chunk_is_an_error_and_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.csv");
        let w = InOrder::create(Some(&path), "h\n", 2).unwrap();
        w.put(1, "late\n".into());
        let (p, e) = w.finish().unwrap_err();
        assert_eq!(p, path);
        assert!(e.to_string().contains("never came"), "{e}");
        assert!(!path.exists() && !tmp.path().join("out.csv.tmp").exists());
    }
}
