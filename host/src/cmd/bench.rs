//! `peerlab bench benaloh`: the Benaloh protocol through the real host, the
//! real `benaloh` plugin and the UDP overlay, measured from the run folder.
//!
//! Each measurement is an ordinary local run: a generated scenario
//! (automatic mode: every instance broadcasts its subset sum as soon as its
//! local shares are in) handed to [`runner::local::run`], the runner and
//! instance runtime `peerlab run` uses, then judged by the plugin's verdicts.
//! Every figure comes from the files the run wrote: the protocol window from
//! the instances' events (the first `share_local` command to the last
//! [`TOTAL_KNOWN`] annotation the plugin records), messages from their
//! statistics, CPU and memory from the processes' resources files (sampled
//! every [`RESOURCES_INTERVAL`] s for the bench). The arithmetic over those
//! files is pure ([`measure`] and the functions it calls).
//!
//! Must not: run or time instances itself, or assert speed (the numbers are
//! for people; tests only check that they are produced and correct).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use peerlab_report::model::{EventKind, InstanceData, ProcessData, ResourceSample};
use serde::Serialize;

use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::modules::{Registry, SearchPaths};
use crate::runner::{self, RunSettings, folder};

/// The annotation the benaloh plugin records when an instance's total is known.
pub const TOTAL_KNOWN: &str = "benaloh: total known";
/// The module names the generated scenario loads.
const MODULES: [&str; 2] = ["gumby.modules.dispersy_module.DispersyModule", "benaloh"];
/// The statistics counted as the protocol's messages (datagrams sent).
const MESSAGE_COUNTERS: [&str; 2] = ["msg_out/local-share", "msg_out/broadcast-share"];
/// Seconds between resource samples in bench runs (config key `resources_interval`).
pub const RESOURCES_INTERVAL: f64 = 0.1;
/// Scenario time of `share_local`: every instance has its peers by then.
const SHARE_AT: f64 = 1.0;

/// Arguments of `peerlab bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The Benaloh protocol (automatic mode) through the real host, plugin and UDP overlay
    Benaloh(BenalohArgs),
}

/// Arguments of `peerlab bench benaloh`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab bench benaloh                                  # N = 100, 400, 1000, all in one process
  peerlab bench benaloh --peers 100 --processes 100      # one process per instance
  peerlab bench benaloh --peers 400 --shared-verification both --json

Each instance sends its subset sum to every peer (--fanout N-1), as the py-ipv8 reference does.
The protocol wall time runs from the first `share_local` to the moment the last instance knows its total.
Messages are the local-share and broadcast-share datagrams sent; CPU is the instance processes' user+system
time within that window; peak RSS is summed over the instance processes.
Needs the benaloh plugin: run `cargo build --release --workspace` first.
Exit status: 0 when every run computed the right total, 1 when one did not, 2 when it could not run.")]
pub struct BenalohArgs {
    /// Instance counts to measure, in order (comma-separated or repeated)
    #[arg(short = 'n', long = "peers", value_name = "N", value_delimiter = ',',
          default_values_t = [100u32, 400, 1000])]
    pub peers: Vec<u32>,
    /// OS processes to spread the instances over (N: one process per instance)
    #[arg(short = 'p', long, value_name = "P", default_value_t = 1)]
    pub processes: u32,
    /// Whether instances of one process share signature verifications
    /// (config key shared_verification); `both` measures each N twice
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = PoolArg::Auto)]
    pub shared_verification: PoolArg,
    /// Print one JSON object per measurement on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Seed of the runs (keys, secrets, shares, peer choices)
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Scenario second at which instances print their totals and end
    /// [default: 6 + N/50, enough for the protocol to finish]
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Peers each subset sum is sent to (config key broadcast_fanout); the
    /// rest get it through catch-up sync [default: N-1, every peer, as the
    /// py-ipv8 reference]
    #[arg(long, value_name = "F")]
    pub fanout: Option<u32>,
    /// Output root for the bench's runs
    #[arg(short, long, value_name = "DIR", default_value = "output/bench")]
    pub output: PathBuf,
    /// Keep every run folder (by default only runs that were not correct are kept)
    #[arg(long)]
    pub keep: bool,
    /// Extra directories to search for plugins (also PEERLAB_PLUGIN_PATH, ':'-separated)
    #[arg(
        long,
        value_name = "DIR",
        env = "PEERLAB_PLUGIN_PATH",
        value_delimiter = ':'
    )]
    pub plugin_path: Vec<PathBuf>,
}

/// `--shared-verification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolArg {
    /// The runtime's default: on when a process hosts several instances
    Auto,
    /// Instances of a process verify each signed packet once between them
    On,
    /// Every instance verifies every signature itself
    Off,
    /// Measure with the pool on and then off
    Both,
}

impl PoolArg {
    /// The config value to set for each measurement (`None`: leave the default).
    fn settings(self) -> Vec<Option<&'static str>> {
        match self {
            PoolArg::Auto => vec![None],
            PoolArg::On => vec![Some("on")],
            PoolArg::Off => vec![Some("off")],
            PoolArg::Both => vec![Some("on"), Some("off")],
        }
    }
}

/// One measured run: the fields of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub peers: u32,
    /// OS processes the instances ran in.
    pub processes: u32,
    /// Whether the processes shared signature verifications (the pool).
    pub shared_verification: bool,
    /// Peers each subset sum was sent to directly.
    pub fanout: u32,
    /// First local share sent until the last instance had its total (`None`: some never had it).
    pub protocol_wall_s: Option<f64>,
    /// local-share and broadcast-share datagrams sent by all instances.
    pub messages: u64,
    pub msgs_per_s: Option<f64>,
    /// User + system CPU of the instance processes within the protocol window.
    pub cpu_s: Option<f64>,
    /// Peak resident memory, summed over the instance processes.
    pub peak_rss_mb: f64,
    pub kib_per_instance: f64,
    /// Instances that recorded their total.
    pub totals_known: u32,
    /// CPU cores other processes of this machine used on average during the
    /// run (`None` where /proc/stat cannot be read): above zero, the figures
    /// are slower than on an idle machine.
    pub other_load: Option<f64>,
    /// Every instance finished, knew its total, and every verdict passed.
    pub correct: bool,
    /// Where the run's files are (deleted unless kept).
    pub run_dir: String,
}

/// Entry point of `peerlab bench`.
pub fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<u8> {
    match args.what {
        BenchCommand::Benaloh(a) => benaloh(global, a),
    }
}

fn benaloh(global: &GlobalArgs, args: BenalohArgs) -> anyhow::Result<u8> {
    // Progress lines (not warnings or failures) are left out with --quiet.
    let quiet = global.quiet;
    anyhow::ensure!(
        !args.peers.is_empty(),
        "--peers needs at least one instance count"
    );
    if let Some(&n) = args.peers.iter().find(|&&n| n < 2) {
        anyhow::bail!("--peers {n}: the Benaloh protocol needs at least 2 instances");
    }
    anyhow::ensure!(
        args.processes >= 1,
        "--processes must be 1 or more (N for one process per instance)"
    );
    if let Some(d) = args.deadline {
        anyhow::ensure!(
            d.is_finite() && d > SHARE_AT + 1.0,
            "--deadline {d}: give more than {} scenario seconds (shares are sent at {SHARE_AT} s)",
            SHARE_AT + 1.0
        );
    }
    let plugin_path: Vec<PathBuf> = args.plugin_path.iter().map(|p| absolute(p)).collect();
    let registry = load_plugin(&plugin_path)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create the output root {}", args.output.display()))?;
    let output = absolute(&args.output);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let plans: Vec<(u32, Option<&str>)> = args
        .peers
        .iter()
        .flat_map(|&n| {
            args.shared_verification
                .settings()
                .into_iter()
                .map(move |p| (n, p))
        })
        .collect();
    progress(
        quiet,
        format!(
            "peerlab bench benaloh: {} run(s) on {}, seed {}, output {}",
            plans.len(),
            machine(),
            args.seed,
            output.display()
        ),
    );
    let mut results = Vec::new();
    for (k, &(n, pool)) in plans.iter().enumerate() {
        let per = n.div_ceil(args.processes.min(n));
        let processes = n.div_ceil(per);
        let deadline = args.deadline.unwrap_or_else(|| default_deadline(n));
        let mut settings = settings(&args, &output, &plugin_path, n, per, pool, deadline)?;
        settings.progress = !quiet;
        progress(
            quiet,
            format!(
                "[{}/{}] N={n}: {processes} process(es), shared verification {}, deadline {deadline} s",
                k + 1,
                plans.len(),
                pool.unwrap_or("auto"),
            ),
        );
        let started = Instant::now();
        let busy_before = machine_busy_s();
        let own_before = own_cpu_s();
        let ticker = (!quiet && !std::io::stderr().is_terminal()).then(|| {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!(
                        "      N={n}: running, {:.0} s (the scenario ends at {deadline} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            })
        });
        let outcome = rt.block_on(runner::local::run(&settings));
        if let Some(t) = ticker {
            t.abort();
        }
        // The generated scenario was needed only while the run ran; a kept
        // run folder has its copy in sources/.
        let _ = std::fs::remove_file(&settings.scenario_path);
        let outcome = outcome.with_context(|| format!("the run with N={n} could not run"))?;
        let run_wall = started.elapsed().as_secs_f64();
        let others = (busy_before, machine_busy_s());
        let own = own_cpu_s() - own_before;
        let mut m = judge_and_measure(&registry, &settings, outcome, processes)?;
        if let (Some(a), Some(b)) = others {
            let instances_cpu = instances_cpu_s(Path::new(&m.run_dir)).unwrap_or(0.0);
            m.other_load = Some(other_load(b - a, own + instances_cpu, run_wall));
        }
        if let Some(l) = m.other_load.filter(|l| *l >= 0.25) {
            eprintln!(
                "      warning: other processes used {l:.2} cores on average during this run: \
                 the figures are slower than on an idle machine"
            );
        }
        let how = match (m.correct, m.protocol_wall_s) {
            (true, Some(w)) => format!("correct, protocol {w:.3} s"),
            (false, Some(w)) => format!("NOT correct (protocol {w:.3} s)"),
            _ => format!("NOT correct: {} of {n} totals known", m.totals_known),
        };
        let line = format!(
            "      N={n}: {how} in {:.1} s of wall time",
            started.elapsed().as_secs_f64()
        );
        if m.correct {
            progress(quiet, line);
        } else {
            eprintln!("{line}");
        }
        if m.correct && !args.keep {
            let _ = std::fs::remove_dir_all(&m.run_dir);
            forget_latest(&output);
        } else {
            eprintln!("      run folder: {}", m.run_dir);
        }
        if args.json {
            println!("{}", serde_json::to_string(&m)?);
        }
        results.push(m);
    }
    if !args.json {
        print!("{}", table(&results));
    }
    Ok(if results.iter().all(|m| m.correct) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Remove `<root>/latest` when the run folder it names was removed, so no
/// dangling link is left behind.
fn forget_latest(root: &Path) {
    let link = root.join("latest");
    if link.symlink_metadata().is_ok() && !link.exists() {
        let _ = std::fs::remove_file(&link);
    }
}

/// A progress line on stderr, unless `--quiet`.
fn progress(quiet: bool, line: String) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// Find and load the plugins the scenario needs, or say how to build them.
fn load_plugin(plugin_path: &[PathBuf]) -> anyhow::Result<Registry> {
    let paths = SearchPaths::standard(plugin_path, None);
    if paths.find("benaloh").0.is_none() {
        let dirs: Vec<String> = paths
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        anyhow::bail!(
            "the benaloh plugin is not built (no libbenaloh.so in {}): run cargo build --release --workspace first",
            dirs.join(", ")
        );
    }
    let (registry, errors) = Registry::load_partial(&MODULES, &paths);
    if let Some((_, e)) = errors.first() {
        anyhow::bail!(
            "cannot load the benaloh plugin: {e}: run cargo build --release --workspace first"
        );
    }
    Ok(registry)
}

/// Scenario seconds after which instances print and end, by default.
pub fn default_deadline(n: u32) -> f64 {
    (6.0 + f64::from(n) / 50.0).ceil()
}

/// `75` -> `1:15`, `8.5` -> `8.5` (scenario times).
fn scenario_time(secs: f64) -> String {
    let m = (secs / 60.0).floor();
    let s = secs - m * 60.0;
    if m >= 1.0 {
        format!("{}:{}{}", m as u64, if s < 10.0 { "0" } else { "" }, s)
    } else {
        format!("{s}")
    }
}

/// The generated scenario: automatic mode, shares at [`SHARE_AT`], totals printed at `deadline`.
pub fn scenario_text(deadline: f64) -> String {
    let end = scenario_time(deadline);
    format!(
        "# Generated by `peerlab bench benaloh`: the Benaloh protocol in automatic mode.\n\
         &module {}\n\
         &module {}\n\
         @@ isolate_community BenalohCommunity\n\
         @0 start_session\n\
         @0 introduce_peers\n\
         @{} share_local auto=true\n\
         @{end} print_local_value\n\
         @{end} print_total_sum\n",
        MODULES[0],
        MODULES[1],
        scenario_time(SHARE_AT)
    )
}

fn settings(
    args: &BenalohArgs,
    output: &Path,
    plugin_path: &[PathBuf],
    n: u32,
    per_process: u32,
    pool: Option<&str>,
    deadline: f64,
) -> anyhow::Result<RunSettings> {
    let experiment = format!("bench-benaloh-{n}");
    let scenario_path = output.join(format!("{experiment}.scenario"));
    let text = scenario_text(deadline);
    std::fs::write(&scenario_path, &text)
        .with_context(|| format!("cannot write {}", scenario_path.display()))?;
    let sources = std::fs::canonicalize(&scenario_path)
        .map(|p| vec![(p, std::sync::Arc::from(text.as_str()))])
        .unwrap_or_default();
    let mut config = BTreeMap::new();
    config.insert("experiment_name".to_string(), experiment.clone());
    config.insert("instances_to_run".to_string(), n.to_string());
    config.insert(
        "resources_interval".to_string(),
        RESOURCES_INTERVAL.to_string(),
    );
    if let Some(p) = pool {
        config.insert("shared_verification".to_string(), p.to_string());
    }
    let fanout = args.fanout.unwrap_or(n - 1).max(1);
    config.insert("broadcast_fanout".to_string(), fanout.to_string());
    Ok(RunSettings {
        experiment,
        config_path: None,
        scenario_path,
        config,
        instances: n,
        instances_per_process: per_process,
        seed: args.seed,
        time_scale: 1.0,
        timeout: Duration::from_secs_f64(deadline + 30.0),
        registration_timeout: Duration::from_secs(30) + Duration::from_millis(50 * u64::from(n)),
        start_delay: Duration::from_secs(1),
        output_root: output.to_path_buf(),
        plugin_path: plugin_path.to_vec(),
        modules: MODULES.iter().map(|m| m.to_string()).collect(),
        sync_port: 0,
        progress: true,
        sources,
    })
}

/// Add the verdicts to the run's summary (as `peerlab run` does), then
/// measure the run from its folder.
fn judge_and_measure(
    registry: &Registry,
    settings: &RunSettings,
    outcome: runner::RunOutcome,
    processes: u32,
) -> anyhow::Result<Measurement> {
    let runner::RunOutcome {
        run_dir,
        mut summary,
    } = outcome;
    let verdicts = runner::verdicts::collect(registry, &run_dir, &summary, &settings.config);
    summary.set_verdicts(verdicts);
    folder::write_summary(&run_dir, folder::SummaryContent::Runner(&summary))
        .with_context(|| format!("cannot write {}", run_dir.join("summary.json").display()))?;
    for v in summary.verdicts.iter().filter(|v| !v.passed) {
        eprintln!("      verdict {}: FAIL — {}", v.name, v.message);
    }
    let record = peerlab_run::read::read_run_record(&run_dir).context("cannot read run.json")?;
    let loaded = load_run(&run_dir)?;
    let passed = summary.passed() && !summary.verdicts.is_empty();
    Ok(measure(&MeasureInput {
        peers: settings.instances,
        processes,
        shared_verification: crate::experiment::shared::shared_verification(&record),
        fanout: settings
            .config
            .get("broadcast_fanout")
            .and_then(|f| f.parse().ok())
            .unwrap_or(0),
        passed,
        instances: &loaded.0,
        processes_data: &loaded.1,
        run_dir: &run_dir,
    }))
}

/// Every instance's events and statistics, and every process's resources.
fn load_run(run_dir: &Path) -> anyhow::Result<(Vec<InstanceData>, Vec<ProcessData>)> {
    use peerlab_report::load;
    let index = load::index(run_dir)
        .map_err(|e| anyhow::anyhow!("cannot read the run folder {}: {e}", run_dir.display()))?;
    let instances = index
        .instances
        .iter()
        .map(|f| load::instance(run_dir, f))
        .collect();
    let processes = index
        .processes
        .iter()
        .map(|f| load::process(run_dir, f))
        .collect();
    Ok((instances, processes))
}

/// What [`measure`] reads.
pub struct MeasureInput<'a> {
    pub peers: u32,
    pub processes: u32,
    pub shared_verification: bool,
    pub fanout: u32,
    /// Every instance finished and every verdict passed.
    pub passed: bool,
    pub instances: &'a [InstanceData],
    pub processes_data: &'a [ProcessData],
    pub run_dir: &'a Path,
}

/// The figures of one run, from its files.
pub fn measure(input: &MeasureInput<'_>) -> Measurement {
    let window = protocol_window(input.instances);
    let wall = window.wall();
    let messages = count_messages(input.instances);
    let cpu = match (window.start, window.end) {
        (Some(a), Some(b)) => Some(
            input
                .processes_data
                .iter()
                .map(|p| cpu_between(&p.samples, a, b))
                .sum(),
        ),
        _ => None,
    };
    let peak_kb: f64 = input
        .processes_data
        .iter()
        .map(|p| peak_rss_kb(&p.samples))
        .sum();
    let known = window.known as u32;
    Measurement {
        peers: input.peers,
        processes: input.processes,
        shared_verification: input.shared_verification,
        fanout: input.fanout,
        protocol_wall_s: wall.map(round3),
        messages,
        msgs_per_s: wall
            .filter(|w| *w > 0.0)
            .map(|w| (messages as f64 / w).round()),
        cpu_s: cpu.map(round3),
        peak_rss_mb: round3(peak_kb / 1024.0),
        kib_per_instance: round3(peak_kb / f64::from(input.peers.max(1))),
        totals_known: known,
        other_load: None,
        correct: input.passed && known == input.peers,
        run_dir: input.run_dir.display().to_string(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The protocol's window over all instances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The earliest `share_local` command.
    pub start: Option<f64>,
    /// The latest total-known annotation, once every instance has one.
    pub end: Option<f64>,
    /// Instances with a total-known annotation.
    pub known: usize,
}

impl Window {
    pub fn wall(&self) -> Option<f64> {
        Some(self.end? - self.start?)
    }
}

/// First `share_local` to last [`TOTAL_KNOWN`]; `end` only when every instance recorded it.
pub fn protocol_window(instances: &[InstanceData]) -> Window {
    let mut start: Option<f64> = None;
    let mut end: Option<f64> = None;
    let mut known = 0;
    for inst in instances {
        let shared = inst
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Command && e.text == "share_local")
            .map(|e| e.t)
            .reduce(f64::min);
        if let Some(t) = shared {
            start = Some(start.map_or(t, |s| s.min(t)));
        }
        let total = inst
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Annotation && e.text == TOTAL_KNOWN)
            .map(|e| e.t)
            .reduce(f64::min);
        if let Some(t) = total {
            known += 1;
            end = Some(end.map_or(t, |e| e.max(t)));
        }
    }
    Window {
        start,
        end: end.filter(|_| known == instances.len() && known > 0),
        known,
    }
}

/// The protocol's datagrams sent, over all instances (counters restarted by
/// a reset are added up across the reset).
pub fn count_messages(instances: &[InstanceData]) -> u64 {
    let mut total = 0.0;
    for inst in instances {
        let ids: Vec<u32> = inst
            .counter_names
            .iter()
            .enumerate()
            .filter(|(_, n)| MESSAGE_COUNTERS.contains(&n.as_str()))
            .map(|(i, _)| i as u32)
            .collect();
        let value = |s: &peerlab_report::model::StatsSample| -> f64 {
            s.values
                .iter()
                .filter(|(i, _)| ids.contains(i))
                .map(|(_, v)| v)
                .sum()
        };
        for (k, s) in inst.stats.iter().enumerate() {
            let last_of_segment = inst.stats.get(k + 1).is_none_or(|next| next.reset);
            if last_of_segment {
                total += value(s);
            }
        }
    }
    total.round() as u64
}

/// CPU seconds (user + system) a process used between `t0` and `t1`,
/// interpolating linearly between its samples.
pub fn cpu_between(samples: &[ResourceSample], t0: f64, t1: f64) -> f64 {
    let cpu = |t: f64| -> Option<f64> {
        let total = |s: &ResourceSample| s.cpu_user_s + s.cpu_system_s;
        let first = samples.first()?;
        if t <= first.t {
            return Some(total(first));
        }
        for w in samples.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if t <= b.t {
                let f = if b.t > a.t {
                    (t - a.t) / (b.t - a.t)
                } else {
                    1.0
                };
                return Some(total(a) + f * (total(b) - total(a)));
            }
        }
        samples.last().map(total)
    };
    match (cpu(t0), cpu(t1)) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    }
}

/// The highest resident memory a process's samples show, in KiB.
pub fn peak_rss_kb(samples: &[ResourceSample]) -> f64 {
    samples.iter().map(|s| s.rss_kb).fold(0.0, f64::max)
}

/// Busy CPU seconds of the whole machine so far (every core), from /proc/stat.
fn machine_busy_s() -> Option<f64> {
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
fn own_cpu_s() -> f64 {
    let r = crate::runtime::resources::read_self();
    r.cpu_user_s + r.cpu_system_s
}

/// CPU seconds of a run's instance processes, from each one's last resources sample.
fn instances_cpu_s(run_dir: &Path) -> Option<f64> {
    let (_, processes) = load_run(run_dir).ok()?;
    Some(
        processes
            .iter()
            .filter_map(|p| p.samples.last())
            .map(|s| s.cpu_user_s + s.cpu_system_s)
            .sum(),
    )
}

/// Cores other processes used on average: the machine's busy CPU seconds
/// minus ours, over the run's wall time.
pub fn other_load(machine_busy_s: f64, ours_s: f64, wall_s: f64) -> f64 {
    if wall_s <= 0.0 {
        return 0.0;
    }
    round3(((machine_busy_s - ours_s) / wall_s).max(0.0))
}

/// The measurements as a table.
pub fn table(results: &[Measurement]) -> String {
    let mut rows = vec![
        [
            "N",
            "procs",
            "pool",
            "wall s",
            "messages",
            "msgs/s",
            "cpu s",
            "peak RSS MB",
            "KiB/inst",
            "correct",
            "others",
        ]
        .map(String::from),
    ];
    for m in results {
        rows.push([
            m.peers.to_string(),
            m.processes.to_string(),
            if m.shared_verification { "on" } else { "off" }.to_string(),
            m.protocol_wall_s.map_or("-".into(), |w| format!("{w:.3}")),
            thousands(m.messages),
            m.msgs_per_s.map_or("-".into(), |r| thousands(r as u64)),
            m.cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
            format!("{:.1}", m.peak_rss_mb),
            format!("{:.0}", m.kib_per_instance),
            if m.correct { "yes" } else { "no" }.to_string(),
            m.other_load.map_or("-".into(), |l| format!("{l:.2}")),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2 cores (Intel(R) Xeon(R) Processor)`, from procfs.
fn machine() -> String {
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

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_report::model::{Event, StatsSample};

    fn ev(t: f64, kind: EventKind, text: &str) -> Event {
        Event {
            t,
            kind,
            text: text.into(),
        }
    }

    fn instance(
        id: u32,
        share: f64,
        total: Option<f64>,
        msgs: &[(f64, bool, f64, f64)],
    ) -> InstanceData {
        let mut events = vec![
            ev(0.0, EventKind::Command, "start_session"),
            ev(share, EventKind::Command, "share_local"),
        ];
        if let Some(t) = total {
            events.push(ev(t, EventKind::Annotation, TOTAL_KNOWN));
        }
        events.push(ev(9.0, EventKind::Annotation, "something else"));
        InstanceData {
            id,
            counter_names: vec![
                "msg_in/local-share".into(),
                "msg_out/local-share".into(),
                "msg_out/broadcast-share".into(),
            ],
            stats: msgs
                .iter()
                .map(|&(t, reset, local, bcast)| StatsSample {
                    t,
                    reset,
                    values: vec![(0, 1000.0), (1, local), (2, bcast)],
                })
                .collect(),
            events,
            warnings: Vec::new(),
        }
    }

    fn res(t: f64, cpu: f64, rss: f64) -> ResourceSample {
        ResourceSample {
            t,
            pid: Some(1),
            cpu_user_s: cpu * 0.75,
            cpu_system_s: cpu * 0.25,
            rss_kb: rss,
            read_bytes: 0.0,
            write_bytes: 0.0,
        }
    }

    #[test]
    fn the_window_runs_from_the_first_share_to_the_last_total() {
        let insts = [
            instance(1, 1.002, Some(1.5), &[]),
            instance(2, 1.001, Some(1.75), &[]),
            instance(3, 1.010, Some(1.25), &[]),
        ];
        let w = protocol_window(&insts);
        assert_eq!(w.start, Some(1.001));
        assert_eq!(w.end, Some(1.75));
        assert_eq!(w.known, 3);
        assert!((w.wall().unwrap() - 0.749).abs() < 1e-9);
        // One instance never knew its total: no end, and it is counted.
        let insts = [
            instance(1, 1.0, Some(1.5), &[]),
            instance(2, 1.0, None, &[]),
        ];
        let w = protocol_window(&insts);
        assert_eq!((w.end, w.known, w.wall()), (None, 1, None));
    }

    #[test]
    fn messages_add_the_last_sample_of_every_counter_segment() {
        let insts = [
            instance(
                1,
                1.0,
                None,
                &[(1.0, false, 5.0, 10.0), (2.0, false, 9.0, 20.0)],
            ),
            // Reset at t=2: 4+8 before it, 1+2 after.
            instance(
                2,
                1.0,
                None,
                &[
                    (1.0, false, 4.0, 8.0),
                    (2.0, true, 0.0, 0.0),
                    (3.0, false, 1.0, 2.0),
                ],
            ),
            instance(3, 1.0, None, &[]),
        ];
        assert_eq!(count_messages(&insts), 29 + 12 + 3);
    }

    #[test]
    fn cpu_is_interpolated_between_samples() {
        let s = [
            res(0.0, 1.0, 100.0),
            res(1.0, 2.0, 300.0),
            res(2.0, 4.0, 200.0),
        ];
        assert!((cpu_between(&s, 0.5, 1.5) - 1.5).abs() < 1e-9);
        assert!((cpu_between(&s, -1.0, 9.0) - 3.0).abs() < 1e-9);
        assert_eq!(cpu_between(&[], 0.0, 1.0), 0.0);
        assert_eq!(peak_rss_kb(&s), 300.0);
    }

    #[test]
    fn a_measurement_sums_processes_and_judges_correctness() {
        let insts = [
            instance(1, 1.0, Some(2.0), &[(3.0, false, 1.0, 10.0)]),
            instance(2, 1.0, Some(3.0), &[(3.0, false, 1.0, 10.0)]),
        ];
        let procs = [
            ProcessData {
                samples: vec![res(0.0, 0.0, 1024.0), res(4.0, 4.0, 2048.0)],
                ..Default::default()
            },
            ProcessData {
                samples: vec![res(0.0, 0.0, 1024.0), res(4.0, 2.0, 1024.0)],
                ..Default::default()
            },
        ];
        let input = MeasureInput {
            peers: 2,
            processes: 2,
            shared_verification: false,
            fanout: 1,
            passed: true,
            instances: &insts,
            processes_data: &procs,
            run_dir: Path::new("/tmp/run"),
        };
        let m = measure(&input);
        assert_eq!(m.protocol_wall_s, Some(2.0));
        assert_eq!(m.messages, 22);
        assert_eq!(m.msgs_per_s, Some(11.0));
        assert_eq!(m.cpu_s, Some(3.0));
        assert_eq!(m.peak_rss_mb, 3.0);
        assert_eq!(m.kib_per_instance, 1536.0);
        assert!(m.correct);
        let json: serde_json::Value = serde_json::to_value(&m).unwrap();
        for field in [
            "peers",
            "protocol_wall_s",
            "messages",
            "msgs_per_s",
            "cpu_s",
            "peak_rss_mb",
            "correct",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        // Failed verdicts or a missing total make it incorrect.
        assert!(
            !measure(&MeasureInput {
                passed: false,
                ..input
            })
            .correct
        );
        let one_short = [insts[0].clone(), instance(2, 1.0, None, &[])];
        let m = measure(&MeasureInput {
            instances: &one_short,
            ..input
        });
        assert!(!m.correct);
        assert_eq!(
            (m.protocol_wall_s, m.cpu_s, m.totals_known),
            (None, None, 1)
        );
    }

    #[test]
    fn the_table_aligns_and_groups_digits() {
        let m = Measurement {
            peers: 400,
            processes: 1,
            shared_verification: true,
            fanout: 399,
            protocol_wall_s: Some(1.5),
            messages: 1_234_567,
            msgs_per_s: Some(823_045.0),
            cpu_s: Some(2.5),
            peak_rss_mb: 80.25,
            kib_per_instance: 205.4,
            totals_known: 400,
            other_load: Some(0.04),
            correct: true,
            run_dir: String::new(),
        };
        let t = table(&[m]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("  N  procs  pool"), "{t}");
        assert!(
            lines[1].contains("1,234,567") && lines[1].contains("823,045"),
            "{t}"
        );
        assert!(lines[1].ends_with("yes    0.04"), "{t}");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

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

    #[test]
    fn the_scenario_shares_early_and_ends_at_the_deadline() {
        let s = scenario_text(75.0);
        assert!(s.contains("@1 share_local auto=true\n"), "{s}");
        assert!(s.contains("@1:15 print_total_sum\n"), "{s}");
        assert_eq!(scenario_time(8.5), "8.5");
        assert_eq!(scenario_time(65.0), "1:05");
        let (scenario, diags) = peerlab_lang::parse_scenario(
            "bench.scenario",
            &s,
            &mut peerlab_lang::NoIncludes,
            &peerlab_lang::Vars::default(),
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(scenario.timeline_length(), 75.0);
        assert_eq!(default_deadline(1000), 26.0);
    }
}
