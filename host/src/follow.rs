//! `peerlab run --follow [SELECTOR]`: the selected instances' `.out` and
//! `.err` lines on the terminal as they are written, prefixed with the
//! instance id (`[3] line` on stdout, `[3] ! line` on stderr), and the
//! first error line of every other instance at once (`.err` also holds
//! log lines: a line saying error, panic, failed or refused). A thread tails the
//! files of the run folder the run creates (it finds it as the new
//! `NNNN-name` folder of the output root, then reads `run.json`'s
//! placement), polling them; at the end it reads them once more.
//!
//! Must not: change the run or its files; it only reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use peerlab_run::layout::{InstanceFile, RUN_JSON};

/// Which instances to follow: `all`, or ids and ranges (`1,3-5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    All,
    Ids(BTreeSet<u32>),
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let t = text.trim();
        if t.is_empty() || t == "all" {
            return Ok(Selector::All);
        }
        let bad = || {
            format!(
                "--follow `{text}`: expected instance ids like 1,3-5 or `all` (give --follow after the experiment: peerlab run EXP --follow 1-3)"
            )
        };
        let mut ids = BTreeSet::new();
        for part in t.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: u32 = lo.parse().map_err(|_| bad())?;
            let hi: u32 = hi.parse().map_err(|_| bad())?;
            if lo == 0 || hi < lo || hi - lo > 1_000_000 {
                return Err(bad());
            }
            ids.extend(lo..=hi);
        }
        Ok(Selector::Ids(ids))
    }

    pub fn contains(&self, id: u32) -> bool {
        match self {
            Selector::All => true,
            Selector::Ids(ids) => ids.contains(&id),
        }
    }
}

/// One file being tailed.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    /// The complete lines written since the last call.
    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut out = Vec::new();
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            out.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        out
    }
}

/// The follower thread; [`Follower::finish`] ends it after a last read.
pub struct Follower {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// `.err` holds log lines too: an error says so.
fn looks_like_an_error(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["error", "panic", "failed", "refused"]
        .iter()
        .any(|w| l.contains(w))
}

fn run_folders(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Follower {
    /// Start following the next run folder created under `root`. Call it
    /// before the run starts.
    pub fn start(root: PathBuf, selector: Selector) -> Follower {
        let before = run_folders(&root);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || follow(&root, &before, &selector, &flag));
        Follower {
            stop,
            handle: Some(handle),
        }
    }

    /// Read what is left and stop.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn follow(root: &Path, before: &BTreeSet<String>, selector: &Selector, stop: &AtomicBool) {
    let mut run_dir: Option<PathBuf> = None;
    // (id, is_err) -> tail
    let mut tails: BTreeMap<(u32, bool), Tail> = BTreeMap::new();
    let mut first_error_shown: BTreeSet<u32> = BTreeSet::new();
    loop {
        let last = stop.load(Ordering::SeqCst);
        if run_dir.is_none() {
            run_dir = run_folders(root)
                .difference(before)
                .map(|n| root.join(n))
                .find(|d| d.join(RUN_JSON).is_file());
            if let Some(dir) = &run_dir
                && let Ok(record) = peerlab_run::read::read_run_record(dir)
            {
                for p in &record.placement {
                    for (kind, is_err) in [(InstanceFile::Out, false), (InstanceFile::Err, true)] {
                        tails.insert(
                            (p.id, is_err),
                            Tail {
                                path: dir.join(kind.rel(&p.host, p.node, p.id)),
                                offset: 0,
                                partial: Vec::new(),
                            },
                        );
                    }
                }
            }
        }
        for ((id, is_err), tail) in tails.iter_mut() {
            let lines = tail.lines();
            if selector.contains(*id) {
                for l in lines {
                    if *is_err {
                        eprintln!("[{id}] ! {l}");
                    } else {
                        println!("[{id}] {l}");
                    }
                }
            } else if *is_err
                && !first_error_shown.contains(id)
                && let Some(l) = lines.iter().find(|l| looks_like_an_error(l))
            {
                first_error_shown.insert(*id);
                eprintln!("peerlab: instance {id}: {l}");
            }
        }
        if last {
            return;
        }
        // Files are polled: a short wait between looks.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_bad_ones_say_how() {
        assert_eq!(Selector::parse("all").unwrap(), Selector::All);
        let s = Selector::parse("1, 3-5").unwrap();
        assert!(s.contains(1) && s.contains(4) && !s.contains(2) && !s.contains(6));
        for bad in ["exp.conf", "0", "5-3", "x-2"] {
            assert!(Selector::parse(bad).unwrap_err().contains("instance ids"));
        }
    }

    #[test]
    fn a_tail_gives_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.out");
        std::fs::write(&p, "one\ntw").unwrap();
        let mut t = Tail {
            path: p.clone(),
            offset: 0,
            partial: Vec::new(),
        };
        assert_eq!(t.lines(), ["one"]);
        std::fs::write(&p, "one\ntwo\nthree\n").unwrap();
        assert_eq!(t.lines(), ["two", "three"]);
        assert!(t.lines().is_empty());
    }
}
