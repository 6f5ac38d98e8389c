//! The end of an instance process's stderr, for the `.err` of an instance
//! that ended abnormally: its last lines and the first line that says what
//! went wrong (a panic's message, a fatal error), which a backtrace would
//! otherwise push out of the tail.
//!
//! Owns: reading with bounded memory and time (at most [`WINDOW`] bytes from
//! the end of the file, lines cut at [`MAX_LINE`] bytes, a fixed number
//! kept). Must not: interpret the process's exit (the supervisor does).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the end of a stderr file is read.
pub const WINDOW: u64 = 16 << 20;

/// Longest line kept, in bytes; the rest is cut and counted.
pub const MAX_LINE: usize = 1000;

/// Lines of a cause kept (a panic's location line and its message).
const CAUSE_LINES: usize = 6;

/// What the end of a stderr says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The last lines (at most the number asked for).
    pub lines: Vec<String>,
    /// The first cause found in the window (e.g. `thread 'x' panicked at
    /// f.rs:1:2:` and its message), when it is not among `lines` already.
    pub cause: Vec<String>,
    /// Whether the file was longer than [`WINDOW`] (its start was not read).
    pub skipped: bool,
}

/// Whether a line starts a cause: a panic, an abort, an error report.
fn is_cause(line: &str) -> bool {
    let l = line.trim_start();
    l.contains("panicked at")
        || l.starts_with("fatal runtime error")
        || l.starts_with("memory allocation of")
        || l.starts_with("peerlab: error")
        || l.starts_with("error:")
        || l.starts_with("Error:")
        || l.contains(" ERROR ")
}

/// Whether a line ends a cause's message (a backtrace or a note follows).
fn ends_cause(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("note:")
        || l.starts_with("stack backtrace:")
        || l.starts_with("0: ")
        || is_cause(line)
}

/// The last `keep` lines of `path` and the first cause in its last
/// [`WINDOW`] bytes.
pub fn of_file(path: &Path, keep: usize) -> io::Result<Tail> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let skipped = len > WINDOW;
    if skipped {
        f.seek(SeekFrom::Start(len - WINDOW))?;
    }
    let mut tail = read(f, keep, skipped)?;
    tail.skipped = skipped;
    Ok(tail)
}

/// A line being read: its first [`MAX_LINE`] bytes and its full length.
#[derive(Default)]
struct Line {
    bytes: Vec<u8>,
    len: u64,
}

impl Line {
    fn push(&mut self, chunk: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.len += chunk.len() as u64;
    }

    fn take(&mut self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.len > self.bytes.len() as u64 {
            s.push_str(&format!(
                " … ({} more bytes)",
                self.len - self.bytes.len() as u64
            ));
        }
        self.bytes.clear();
        self.len = 0;
        s
    }
}

/// What [`read`] keeps of the lines it has read.
struct Collected {
    keep: usize,
    lines: VecDeque<String>,
    cause: Vec<String>,
    /// Whether the cause is complete (its message ended).
    cause_done: bool,
    /// Lines read since the cause started (to know if it is still in `lines`).
    since_cause: usize,
}

impl Collected {
    /// Take one whole line: the first cause's, and the last `keep`.
    fn push(&mut self, text: String) {
        if self.cause.is_empty() {
            if is_cause(&text) {
                self.cause.push(text.clone());
                self.since_cause = 0;
            }
        } else {
            self.since_cause += 1;
            if !self.cause_done {
                if ends_cause(&text) || self.cause.len() >= CAUSE_LINES {
                    self.cause_done = true;
                } else {
                    self.cause.push(text.clone());
                }
            }
        }
        self.lines.push_back(text);
        if self.lines.len() > self.keep {
            self.lines.pop_front();
        }
    }
}

/// Read `r` to its end keeping the last `keep` lines and the first cause;
/// `partial_first`: the first line is the end of a line cut by a seek
/// (dropped).
pub fn read(mut r: impl Read, keep: usize, partial_first: bool) -> io::Result<Tail> {
    let mut kept = Collected {
        keep,
        lines: VecDeque::with_capacity(keep + 1),
        cause: Vec::new(),
        cause_done: false,
        since_cause: 0,
    };
    let mut skip_line = partial_first;
    let mut line = Line::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            line.push(&chunk[..nl]);
            chunk = &chunk[nl + 1..];
            let text = line.take();
            if std::mem::take(&mut skip_line) {
                continue;
            }
            kept.push(text);
        }
        line.push(chunk);
    }
    if line.len > 0 && !skip_line {
        kept.push(line.take());
    }
    let Collected {
        lines,
        mut cause,
        since_cause,
        ..
    } = kept;
    // A cause still within the tail needs no repeating.
    if !cause.is_empty() && since_cause < lines.len() {
        cause.clear();
    }
    Ok(Tail {
        lines: lines.into(),
        cause,
        skipped: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    #[test]
    fn a_panic_followed_by_a_backtrace_keeps_its_message() {
        let mut input = vec![
            "starting",
            "thread 'tokio-runtime-worker' panicked at plugins/x/src/lib.rs:10:5:",
            "kaput: the share was empty",
            "stack backtrace:",
        ];
        let frames: Vec<String> = (0..60).map(|i| format!("  {i}: frame{i}")).collect();
        input.extend(frames.iter().map(String::as_str));
        let t = read(&text(&input)[..], 20, false).unwrap();
        assert_eq!(t.lines.len(), 20);
        assert_eq!(t.lines.last().unwrap(), "  59: frame59");
        assert_eq!(
            t.cause,
            vec![
                "thread 'tokio-runtime-worker' panicked at plugins/x/src/lib.rs:10:5:",
                "kaput: the share was empty"
            ]
        );
    }

    #[test]
    fn a_cause_within_the_tail_is_not_repeated() {
        let input = text(&["a", "peerlab: error: cannot bind", "b"]);
        let t = read(&input[..], 20, false).unwrap();
        assert_eq!(t.lines, vec!["a", "peerlab: error: cannot bind", "b"]);
        assert!(t.cause.is_empty());
    }

    #[test]
    fn a_huge_stderr_is_streamed_and_its_lines_cut() {
        // 200 MB of output, no file: a reader that makes it up as it goes.
        // One 100 MB line, 1M short lines, then the panic.
        let long_line = io::repeat(b'x').take(100 << 20);
        let mut short = Vec::new();
        for _ in 0..10_000 {
            short.extend_from_slice(&[b'z'; 99]);
            short.push(b'\n');
        }
        let end = text(&[
            "thread 'main' panicked at src/main.rs:1:1:",
            "out of patience",
            "note: run with `RUST_BACKTRACE=1`",
        ]);
        let mut input: Box<dyn Read> = Box::new(long_line.chain(&b"\n"[..]));
        for _ in 0..100 {
            input = Box::new(input.chain(io::Cursor::new(short.clone())));
        }
        let input = input.chain(&end[..]);
        let t = read(input, 20, false).unwrap();
        assert_eq!(t.lines.len(), 20);
        assert!(t.lines.iter().all(|l| l.len() <= MAX_LINE + 40), "{t:?}");
        assert_eq!(t.lines[17], "thread 'main' panicked at src/main.rs:1:1:");
        assert!(t.cause.is_empty(), "in the tail already");
    }

    #[test]
    fn a_huge_file_is_read_from_its_last_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("process001.stderr");
        // 200 MB without a newline (sparse: no disk used), then the panic.
        let f = File::create(&path).unwrap();
        f.set_len(200 << 20).unwrap();
        drop(f);
        let mut end = text(&[
            "",
            "thread 'main' panicked at src/lib.rs:3:4:",
            "the real cause",
            "stack backtrace:",
        ]);
        for i in 0..40 {
            end.extend(format!("  {i}: frame\n").bytes());
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        io::Write::write_all(&mut f, &end).unwrap();
        let t = of_file(&path, 20).unwrap();
        assert!(t.skipped);
        assert_eq!(t.cause[1], "the real cause");
        assert_eq!(t.lines.len(), 20);
        assert!(
            t.lines.iter().map(String::len).sum::<usize>() < 20 * (MAX_LINE + 40),
            "lines are cut"
        );
    }
}
