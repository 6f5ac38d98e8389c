//! CPU (from getrusage), memory and I/O (from procfs) of this OS process,
//! written to the process's `resources.jsonl` every `resources_interval`
//! (once a second by default; see docs/outputs.md).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use std::borrow::Cow;

use peerlab_run::ResourceLine;
use serde::Serialize;

/// One reading of this process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Reading {
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub rss_kb: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// This process's reading: as [`read`]`("self")`, but CPU time from
/// `getrusage`, which counts to the microsecond where procfs counts in
/// 10 ms ticks (too coarse for a process that runs for a few milliseconds,
/// e.g. one of a hundred single-instance processes).
pub fn read_self() -> Reading {
    let mut r = read("self");
    // SAFETY: getrusage writes one rusage into the zeroed value we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        r.cpu_user_s = secs(u.ru_utime);
        r.cpu_system_s = secs(u.ru_stime);
    }
    r
}

/// Read `/proc/<pid>/…`; fields that cannot be read stay 0.
pub fn read(pid: &str) -> Reading {
    let mut r = Reading::default();
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        let ticks = clock_ticks();
        let (user, system) = parse_stat_times(&stat);
        r.cpu_user_s = user as f64 / ticks;
        r.cpu_system_s = system as f64 / ticks;
    }
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        r.rss_kb = parse_status_kb(&status, "VmRSS:");
    }
    if let Ok(io) = fs::read_to_string(format!("/proc/{pid}/io")) {
        r.read_bytes = parse_io(&io, "read_bytes:");
        r.write_bytes = parse_io(&io, "write_bytes:");
    }
    r
}

/// The peak resident set of this process so far (VmHWM), in KiB.
pub fn peak_rss_kb(pid: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| parse_status_kb(&s, "VmHWM:"))
        .unwrap_or(0)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime and stime (fields 14 and 15) from `/proc/pid/stat`. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat_times(stat: &str) -> (u64, u64) {
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (0, 0);
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is at index N - 3.
    let get = |n: usize| fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0);
    (get(14), get(15))
}

fn parse_status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn parse_io(io: &str, key: &str) -> u64 {
    io.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A line on stderr that never panics (stderr may be a closed pipe or a
/// file on a full disk; `eprintln!` would panic).
fn warn(line: std::fmt::Arguments) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// Appends readings of this process to its resources file.
///
/// A write that fails is not silent: [`ResourceLog::record`] says once on
/// stderr (the process's `.err` file) which file could not be written and
/// stops sampling, so the run goes on and its folder says why the series
/// ends early.
pub struct ResourceLog {
    out: BufWriter<fs::File>,
    path: std::path::PathBuf,
    pid: u32,
    instances: Vec<u32>,
    stopped: bool,
}

impl ResourceLog {
    pub fn create(path: &Path, instances: Vec<u32>) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        Ok(Self {
            out: BufWriter::new(fs::File::create(path)?),
            path: path.to_path_buf(),
            pid: std::process::id(),
            instances,
            stopped: false,
        })
    }

    /// [`ResourceLog::create`], or `None` after saying on stderr why not.
    pub fn create_or_warn(path: &Path, instances: Vec<u32>) -> Option<Self> {
        match Self::create(path, instances) {
            Ok(log) => Some(log),
            Err(e) => {
                warn(format_args!(
                    "peerlab: cannot create the resources file {}: {e}; this process's CPU and memory are not recorded",
                    path.display()
                ));
                None
            }
        }
    }

    /// Take and write a reading at time `t`; after the first failed write,
    /// say so once on stderr and record nothing more. Returns whether the
    /// reading was written.
    pub fn record(&mut self, t: f64) -> bool {
        if self.stopped {
            return false;
        }
        match self.sample(t) {
            Ok(_) => true,
            Err(e) => {
                self.stopped = true;
                warn(format_args!(
                    "peerlab: cannot write the resources file {}: {e}; resource sampling stopped at t = {t:.1} s",
                    self.path.display()
                ));
                false
            }
        }
    }

    /// Take a reading now and write it with time `t`.
    pub fn sample(&mut self, t: f64) -> io::Result<Reading> {
        let reading = read_self();
        let line = ResourceLine {
            t,
            pid: Some(self.pid),
            instances: Cow::Borrowed(&self.instances),
            cpu_user_s: reading.cpu_user_s,
            cpu_system_s: reading.cpu_system_s,
            rss_kb: reading.rss_kb,
            read_bytes: reading.read_bytes,
            write_bytes: reading.write_bytes,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_stops_sampling_instead_of_being_ignored() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut log = ResourceLog::create(Path::new("/dev/full"), vec![1]).unwrap();
        assert!(!log.record(0.0), "the first write fails");
        assert!(log.stopped, "and sampling stops");
        assert!(!log.record(1.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut ok = ResourceLog::create(&path, vec![1]).unwrap();
        assert!(ok.record(0.0) && ok.record(1.0));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0";
        assert_eq!(parse_stat_times(stat), (17, 5));
        assert_eq!(parse_stat_times("garbage"), (0, 0));
    }

    #[test]
    fn own_cpu_counts_finer_than_ticks() {
        let before = read_self();
        // Busy for about 2 ms: less than one procfs tick.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(2) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = read_self();
        let used =
            (after.cpu_user_s + after.cpu_system_s) - (before.cpu_user_s + before.cpu_system_s);
        assert!(used > 0.0 && used < 1.0, "{used}");
        assert!(after.rss_kb > 0);
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        let r = read("self");
        assert!(r.rss_kb > 0, "{r:?}");
        assert!(r.cpu_user_s + r.cpu_system_s >= 0.0);
        assert!(peak_rss_kb("self") >= r.rss_kb);
    }
}
