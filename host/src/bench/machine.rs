//! The machine a bench runs on: its description, its busy CPU time
//! (/proc/stat) and this process's own, and the load other processes put on
//! it during a run, so figures from a busy machine are flagged.
//!
//! Must not: read the run folder or judge figures.

/// Busy CPU seconds of the whole machine so far (every core), from /proc/stat.
pub fn machine_busy_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some(proc_stat_busy_ticks(&text)? as f64 / ticks)
}

/// Busy ticks (user, nice, system, irq, softirq, steal) of the `cpu` line of /proc/stat.
pub fn proc_stat_busy_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    (f.len() >= 4).then(|| get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

/// This process's CPU seconds (the sync server and supervision of a run).
pub fn own_cpu_s() -> f64 {
    let r = peerlab_runtime::resources::read_self();
    r.cpu_user_s + r.cpu_system_s
}

/// Cores other processes used on average: the machine's busy CPU seconds
/// minus ours, over the run's wall time.
pub fn other_load(machine_busy_s: f64, ours_s: f64, wall_s: f64) -> f64 {
    if wall_s <= 0.0 {
        return 0.0;
    }
    super::measure::round3(((machine_busy_s - ours_s) / wall_s).max(0.0))
}

/// `2 cores (Intel(R) Xeon(R) Processor)`, from procfs.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    format!("{cores} cores ({model})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_load_is_the_machine_minus_the_run() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
        assert_eq!(proc_stat_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(proc_stat_busy_ticks("intr 1\n"), None);
        assert_eq!(other_load(30.0, 10.0, 20.0), 1.0);
        // Our own figure can exceed the machine's by rounding: never negative.
        assert_eq!(other_load(10.0, 10.5, 5.0), 0.0);
        assert_eq!(other_load(1.0, 0.0, 0.0), 0.0);
    }
}
