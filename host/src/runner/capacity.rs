//! Whether a run of this size can start on this machine: an estimate of the
//! memory its instances need and of the processes the local runner would
//! start, against what the machine has, made before anything starts (by
//! `peerlab check` and `peerlab run`, through `experiment::plan::check_capacity`).
//!
//! The estimate is a floor, from the smallest figures measured
//! (docs/performance.md, README's scale table): a run refused here could
//! not fit; a run accepted may still need more. [`Machine::this`] reads
//! `/proc` and the resource limits; [`check`] is pure. Nothing here starts
//! or stops anything, and the SLURM runner's nodes are not judged (their
//! memory is not this machine's).

use peerlab_lang::Diagnostic;
use peerlab_lang::source::{human_bytes, thousands};

/// The least memory one instance takes: simulated gossip peaked at 111 KB
/// per instance at 10,000 instances and 110 KB at 100,000 (README's scale
/// table, issue 21); the UDP benchmark measures 170 KiB per instance at
/// N = 1000; Benaloh at 5,000 simulated is 1.3 MB.
pub const INSTANCE_BYTES: u64 = 100 << 10;

/// The least memory one instance process takes besides its instances
/// (runtime, loaded plugins, libraries): 8.4 MB measured.
pub const PROCESS_BYTES: u64 = 8 << 20;

/// The most local processes peerlab starts for one run, whatever the
/// machine allows: beyond it, `instances_per_process` is the way.
pub const MAX_LOCAL_PROCESSES: u64 = 10_000;

/// Tasks (threads) of one instance process besides its async workers: the
/// main thread and the runtime's blocking/timer thread.
const BASE_TASKS: u64 = 2;

/// What this machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Memory this process may use: RAM, or less under a cgroup limit.
    pub memory: Option<u64>,
    /// CPUs (each instance process runs up to this many async workers).
    pub cpus: u64,
    /// RLIMIT_NPROC: tasks this user may have (threads count).
    pub nproc: Option<u64>,
    /// `/proc/sys/kernel/pid_max`.
    pub pid_max: Option<u64>,
    /// RLIMIT_NOFILE (hard: peerlab raises its soft limit to it): one
    /// sync connection per process is held by the run.
    pub nofile: Option<u64>,
}

impl Machine {
    /// Read this machine's figures (each `None` when it cannot be read).
    pub fn this() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        let ram = meminfo.as_deref().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
        let memory = match (ram, cgroup_memory_limit()) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        };
        Machine {
            memory,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            nproc: rlimit(libc::RLIMIT_NPROC, false),
            pid_max: std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|t| t.trim().parse().ok()),
            nofile: rlimit(libc::RLIMIT_NOFILE, true),
        }
    }
}

/// A resource limit (soft or hard); `None` when unlimited or unreadable.
fn rlimit(resource: libc::__rlimit_resource_t, hard: bool) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return None;
    }
    let v = if hard { limit.rlim_max } else { limit.rlim_cur };
    (v != libc::RLIM_INFINITY).then_some(v)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), when there is one.
fn cgroup_memory_limit() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut limits = Vec::new();
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup/{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory/{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Ok(t) = std::fs::read_to_string(file)
            && let Ok(v) = t.trim().parse::<u64>()
        {
            limits.push(v);
        }
    }
    limits.into_iter().min()
}

/// The run to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Instances.
    pub instances: u64,
    /// Instances hosted by one OS process (real network).
    pub per_process: u64,
    /// Everything in this one process, on the simulated network.
    pub simulated: bool,
    /// The local runner (the SLURM runner's nodes are not judged).
    pub local: bool,
}

impl Plan {
    /// OS processes the local runner starts.
    pub fn processes(&self) -> u64 {
        self.instances.div_ceil(self.per_process.max(1))
    }
}

/// Round down to two significant digits, for "at most about N".
fn about(n: u64) -> u64 {
    let mut scale = 1;
    while n / scale >= 100 {
        scale *= 10;
    }
    n / scale * scale
}

/// Every reason `plan` cannot run on `machine` (no location: the caller
/// points them at the instance count). Errors when `strict` (a run about
/// to start here); otherwise what depends on this machine is a warning (a
/// config checked on a laptop may run elsewhere) and only peerlab's own
/// cap on local processes is an error.
pub fn check(plan: &Plan, machine: &Machine, strict: bool) -> Vec<Diagnostic> {
    let on_this_machine = |msg: String| {
        if strict {
            Diagnostic::error(msg)
        } else {
            Diagnostic::warning(msg)
        }
    };
    let mut out = Vec::new();
    if plan.instances == 0 || !(plan.simulated || plan.local) {
        return out;
    }
    let processes = if plan.simulated { 0 } else { plan.processes() };
    let need = plan
        .instances
        .saturating_mul(INSTANCE_BYTES)
        .saturating_add(processes.saturating_mul(PROCESS_BYTES));
    if let Some(have) = machine.memory
        && need > have
    {
        let n = thousands(plan.instances as usize);
        let (what, fit, help) = if plan.simulated {
            (
                format!("{n} simulated instances need at least {} of memory ({} each)", human_bytes(need), human_bytes(INSTANCE_BYTES)),
                have / INSTANCE_BYTES,
                "run fewer instances, or spread them over a cluster (runner = slurm); the figure per instance is the least measured (docs/performance.md)".to_string(),
            )
        } else {
            let per = plan.per_process.max(1);
            let per_instance = INSTANCE_BYTES + PROCESS_BYTES / per;
            (
                format!(
                    "{n} instances in {} processes need at least {} of memory ({} per process, {} per instance)",
                    thousands(processes as usize),
                    human_bytes(need),
                    human_bytes(PROCESS_BYTES),
                    human_bytes(INSTANCE_BYTES)
                ),
                have / per_instance,
                "host more instances per process (instances_per_process, --instances-per-process: each process costs about 8 MiB), use the simulated network, or a cluster (runner = slurm)".to_string(),
            )
        };
        out.push(
            on_this_machine(format!(
                "{what}; this machine has {}: at most about {} fit",
                human_bytes(have),
                thousands(about(fit) as usize)
            ))
            .with_code("too-large-for-machine")
            .with_help(help),
        );
    }
    if !plan.simulated && plan.local {
        let tasks_each = BASE_TASKS + machine.cpus.min(plan.per_process.max(1));
        let mut limits: Vec<(u64, String)> = vec![(
            MAX_LOCAL_PROCESSES,
            "that is peerlab's own cap for one run".to_string(),
        )];
        if let Some(n) = machine.nproc {
            limits.push((
                n / tasks_each,
                format!(
                    "the user's process limit (RLIMIT_NPROC, `ulimit -u`) is {} tasks, and each process runs about {tasks_each}",
                    thousands(n as usize)
                ),
            ));
        }
        if let Some(p) = machine.pid_max {
            limits.push((
                p / tasks_each,
                format!(
                    "the kernel's pid_max is {}, and each process runs about {tasks_each} tasks",
                    thousands(p as usize)
                ),
            ));
        }
        if let Some(f) = machine.nofile {
            limits.push((
                f.saturating_sub(64),
                format!(
                    "the run holds one connection per process and may open {} files (RLIMIT_NOFILE)",
                    thousands(f as usize)
                ),
            ));
        }
        if let Some((max, why)) = limits
            .into_iter()
            .filter(|(m, _)| processes > *m)
            .min_by_key(|(m, _)| *m)
        {
            let per = plan.instances.div_ceil(max.max(1));
            let msg = format!(
                "{} instances would run in {} local processes: {why} (at most {} processes)",
                thousands(plan.instances as usize),
                thousands(processes as usize),
                thousands(max as usize)
            );
            out.push(
                if processes > MAX_LOCAL_PROCESSES {
                    Diagnostic::error(msg)
                } else {
                    on_this_machine(msg)
                }
                .with_code("too-many-processes")
                .with_help(format!(
                    "host several instances per process: instances_per_process = {per} (or --instances-per-process {per}) needs {} processes; or use the simulated network",
                    thousands(plan.instances.div_ceil(per) as usize)
                )),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            memory: Some(24 << 30),
            cpus: 2,
            nproc: Some(96_364),
            pid_max: Some(32_768),
            nofile: Some(20_000),
        }
    }

    fn check_strict(p: &Plan, m: &Machine) -> Vec<Diagnostic> {
        check(p, m, true)
    }

    fn plan(instances: u64, per_process: u64, simulated: bool) -> Plan {
        Plan {
            instances,
            per_process,
            simulated,
            local: true,
        }
    }

    #[test]
    fn ten_million_simulated_instances_do_not_fit_in_24_gib() {
        let d = check_strict(&plan(10_000_000, 1, true), &machine());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].message,
            "10,000,000 simulated instances need at least 953.7 GiB of memory (100 KiB each); this machine has 24 GiB: at most about 250,000 fit"
        );
        assert!(check_strict(&plan(10_000, 1, true), &machine()).is_empty());
    }

    #[test]
    fn a_hundred_thousand_local_processes_are_refused_with_what_would_do() {
        let d = check_strict(&plan(100_000, 1, false), &machine());
        let text: Vec<String> = d.iter().map(|d| d.render_short()).collect();
        assert_eq!(d.len(), 2, "{text:#?}");
        assert!(
            text[0].contains("100,000 instances in 100,000 processes need at least"),
            "{text:#?}"
        );
        assert!(text[1].contains("100,000 instances would run in 100,000 local processes: that is peerlab's own cap for one run (at most 10,000 processes)"), "{text:#?}");
        assert!(text[1].contains("instances_per_process = 10 "), "{text:#?}");
        // 9.5 GiB of instances is not the problem but 100,000 processes
        // are: at 100 per process they fit, and twice as many do not
        // (19 GiB of instances and 2,000 processes of 8 MiB).
        assert!(check_strict(&plan(100_000, 100, false), &machine()).is_empty());
        assert_eq!(
            check_strict(&plan(200_000, 100, false), &machine()).len(),
            1
        );
    }

    #[test]
    fn the_tightest_system_limit_is_named() {
        let mut m = machine();
        m.pid_max = Some(3_000);
        m.memory = None;
        let d = check_strict(&plan(2_000, 1, false), &m);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.contains("pid_max is 3,000"),
            "{}",
            d[0].message
        );
        assert!(
            d[0].message.contains("(at most 1,000 processes)"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn without_strict_only_the_fixed_cap_is_an_error() {
        let d = check(&plan(10_000_000, 1, true), &machine(), false);
        assert_eq!(d.len(), 1);
        assert!(!d[0].is_error());
        let d = check(&plan(100_000, 1, false), &machine(), false);
        assert_eq!(d.len(), 2);
        assert!(!d[0].is_error() && d[1].is_error(), "{d:?}");
    }

    #[test]
    fn slurm_runs_are_not_judged_here() {
        let p = Plan {
            local: false,
            ..plan(10_000_000, 1, false)
        };
        assert!(check_strict(&p, &machine()).is_empty());
    }

    #[test]
    fn rounding_keeps_two_digits() {
        assert_eq!(about(125_829), 120_000);
        assert_eq!(about(99), 99);
        assert_eq!(about(0), 0);
    }
}
