//! `peerlab bench`'s measuring: a protocol ([`BenchWorkload`], the
//! workload a module declares, found by [`find`]) through the real host,
//! the real plugin and the UDP overlay, measured from the run folder.
//!
//! Each measurement is an ordinary local run: a generated scenario handed
//! to [`runner::local::run`], the runner and instance runtime `peerlab run`
//! uses, then judged and recorded by [`runner::finish`] as `peerlab run`
//! does. Every figure comes from the files the run wrote, read through the
//! run folder's reader (peerlab-run's records, the report's loader) and the
//! report's aggregation: the protocol window from the instances' events,
//! messages from their statistics, CPU and memory from the processes'
//! resources files (sampled every [`RESOURCES_INTERVAL`] s for the bench).
//! The arithmetic over those files is pure ([`measure`]).
//!
//! Must not: run or time instances itself, assert speed (the numbers are
//! for people; tests only check that they are produced and correct), or
//! name a plugin's commands, metrics or messages: every such name comes
//! from the module's declaration ([`workload`]).

mod error;
pub mod find;
pub mod machine;
pub mod measure;
pub mod table;
pub mod workload;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peerlab_report::model::{InstanceData, ProcessData};

use crate::modules::Registry;
use crate::runner::{self, RunSettings};
use peerlab_verdicts::choice::VerdictChoice;

pub use error::BenchError;
pub use measure::Measurement;
pub use table::table;
pub use workload::{BenchWorkload, SHARE_AT, default_deadline};

/// Seconds between resource samples in bench runs (config key `resources_interval`).
pub const RESOURCES_INTERVAL: f64 = 0.1;

/// What to measure and how.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The module whose declared workload to run (`peerlab bench <name>`).
    pub name: String,
    /// Instance counts to measure, in order.
    pub peers: Vec<u32>,
    /// OS processes to spread the instances over.
    pub processes: u32,
    /// The `shared_verification` value of each measurement of one N
    /// (`None`: leave the runtime's default).
    pub shared_verification: Vec<Option<&'static str>>,
    pub seed: u64,
    /// Scenario second at which instances end [default: [`default_deadline`]].
    pub deadline: Option<f64>,
    /// Peers each broadcast is sent to [default: N-1].
    pub fanout: Option<u32>,
    /// Output root of the runs.
    pub output: PathBuf,
    /// Keep every run folder (otherwise only runs that were not correct).
    pub keep: bool,
    pub plugin_path: Vec<PathBuf>,
    /// Leave progress lines out (warnings and failures are still printed).
    pub quiet: bool,
}

impl BenchOptions {
    /// Refuse what cannot be measured, before anything is loaded.
    pub fn check(&self) -> Result<(), BenchError> {
        if self.peers.is_empty() {
            return Err(BenchError::NoPeers);
        }
        if self.processes < 1 {
            return Err(BenchError::NoProcesses);
        }
        if let Some(d) = self.deadline
            && !(d.is_finite() && d > SHARE_AT + 1.0)
        {
            return Err(BenchError::Deadline { deadline: d });
        }
        Ok(())
    }

    /// Refuse what the workload cannot measure.
    pub fn check_for(&self, workload: &BenchWorkload) -> Result<(), BenchError> {
        if let Some(&n) = self.peers.iter().find(|&&n| n < 2) {
            return Err(BenchError::TooFewPeers {
                n,
                protocol: workload.protocol.clone(),
            });
        }
        if self.fanout.is_some() && workload.fanout_key.is_empty() {
            return Err(BenchError::NoFanout {
                plugin: workload.name.clone(),
            });
        }
        Ok(())
    }
}

/// Measure every (N, shared verification) pair in order, calling `each`
/// with each measurement as soon as it is made; progress goes to stderr.
pub fn run(
    opts: &BenchOptions,
    mut each: impl FnMut(&Measurement) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<Vec<Measurement>, BenchError> {
    let quiet = opts.quiet;
    opts.check()?;
    let plugin_path: Vec<PathBuf> = opts.plugin_path.iter().map(|p| absolute(p)).collect();
    let (workload, registry) = find::load(&opts.name, &plugin_path)?;
    opts.check_for(&workload)?;
    let workload = &workload;
    std::fs::create_dir_all(&opts.output).map_err(|source| BenchError::OutputRoot {
        path: opts.output.clone(),
        source,
    })?;
    let output = absolute(&opts.output);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::AsyncRuntime)?;
    let plans: Vec<(u32, Option<&str>)> = opts
        .peers
        .iter()
        .flat_map(|&n| opts.shared_verification.iter().map(move |&p| (n, p)))
        .collect();
    progress(
        quiet,
        format!(
            "peerlab bench {}: {} run(s) on {}, seed {}, output {}",
            workload.name,
            plans.len(),
            machine::machine(),
            opts.seed,
            output.display()
        ),
    );
    let mut results = Vec::new();
    for (k, &(n, pool)) in plans.iter().enumerate() {
        let per = n.div_ceil(opts.processes.min(n));
        let processes = n.div_ceil(per);
        let deadline = opts.deadline.unwrap_or_else(|| default_deadline(n));
        let mut settings = settings(
            opts,
            workload,
            &output,
            &plugin_path,
            n,
            per,
            pool,
            deadline,
        )?;
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
        let busy_before = machine::machine_busy_s();
        let own_before = machine::own_cpu_s();
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
        let outcome = outcome.map_err(|source| BenchError::Run { n, source })?;
        let run_wall = started.elapsed().as_secs_f64();
        let others = (busy_before, machine::machine_busy_s());
        let own = machine::own_cpu_s() - own_before;
        let (mut m, instances_cpu) =
            judge_and_measure(workload, &registry, &settings, outcome, processes)?;
        if let (Some(a), Some(b)) = others {
            m.other_load = Some(machine::other_load(b - a, own + instances_cpu, run_wall));
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
        if m.correct && !opts.keep {
            let _ = std::fs::remove_dir_all(&m.run_dir);
            forget_latest(&output);
        } else {
            eprintln!("      run folder: {}", m.run_dir);
        }
        each(&m).map_err(BenchError::Each)?;
        results.push(m);
    }
    Ok(results)
}

/// Remove `<root>/latest` when the run folder it names was removed, so no
/// dangling link is left behind.
fn forget_latest(root: &Path) {
    let link = root.join("latest");
    if link.symlink_metadata().is_ok() && !link.exists() {
        let _ = std::fs::remove_file(&link);
    }
}

/// A progress line on stderr, unless quiet.
fn progress(quiet: bool, line: String) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// The run of `n` instances: its generated scenario (written to the output
/// root) and settings.
#[allow(clippy::too_many_arguments)]
fn settings(
    opts: &BenchOptions,
    workload: &BenchWorkload,
    output: &Path,
    plugin_path: &[PathBuf],
    n: u32,
    per_process: u32,
    pool: Option<&str>,
    deadline: f64,
) -> Result<RunSettings, BenchError> {
    let experiment = format!("bench-{}-{n}", workload.name);
    let scenario_path = output.join(format!("{experiment}.scenario"));
    let text = workload.scenario_text(deadline);
    std::fs::write(&scenario_path, &text).map_err(|source| BenchError::WriteScenario {
        path: scenario_path.clone(),
        source,
    })?;
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
    if !workload.fanout_key.is_empty() {
        let fanout = opts.fanout.unwrap_or(n - 1).max(1);
        config.insert(workload.fanout_key.clone(), fanout.to_string());
    }
    Ok(RunSettings {
        experiment,
        config_path: None,
        scenario_path,
        config,
        instances: n,
        instances_per_process: per_process,
        seed: opts.seed,
        time_scale: 1.0,
        timeout: Duration::from_secs_f64(deadline + 30.0),
        registration_timeout: Duration::from_secs(30) + Duration::from_millis(50 * u64::from(n)),
        start_delay: Duration::from_secs(1),
        output_root: output.to_path_buf(),
        plugin_path: plugin_path.to_vec(),
        modules: workload.all_modules(),
        metrics: Vec::new(),
        sync_port: 0,
        progress: true,
        plugins: Vec::new(),
        sources,
        source_names: Default::default(),
    })
}

/// Judge and record the run as `peerlab run` does ([`runner::finish`]),
/// then measure it from its folder. Also returns the CPU seconds its
/// instance processes used in all.
fn judge_and_measure(
    workload: &BenchWorkload,
    registry: &Registry,
    settings: &RunSettings,
    outcome: runner::RunOutcome,
    processes: u32,
) -> Result<(Measurement, f64), BenchError> {
    let judged = runner::finish::judge_and_write(
        outcome,
        registry,
        &settings.config,
        &VerdictChoice::All,
        "",
    );
    if !judged.unwritten.is_empty() {
        return Err(BenchError::Unwritten {
            unwritten: judged.unwritten,
        });
    }
    let (run_dir, summary) = (judged.run_dir, judged.summary);
    for v in summary.verdicts.iter().filter(|v| !v.passed) {
        eprintln!("      {}", runner::finish::verdict_line(v));
    }
    let record = peerlab_run::read::read_run_record(&run_dir).map_err(BenchError::RunRecord)?;
    let (instances, processes_data) = load_run(&run_dir)?;
    let aggregates = measure::aggregate(&instances, &processes_data);
    let passed = summary.passed() && !summary.verdicts.is_empty();
    let m = measure::measure(&measure::MeasureInput {
        workload,
        peers: settings.instances,
        processes,
        shared_verification: crate::experiment::shared::shared_verification(&record),
        time_scale: settings.time_scale,
        fanout: settings
            .config
            .get(&workload.fanout_key)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0),
        passed,
        instances: &instances,
        processes_data: &processes_data,
        aggregates: &aggregates,
        run_dir: &run_dir,
    });
    Ok((m, aggregates.resources.cpu_s))
}

/// Every instance's events and statistics, and every process's resources,
/// through the report's loader.
fn load_run(run_dir: &Path) -> Result<(Vec<InstanceData>, Vec<ProcessData>), BenchError> {
    use peerlab_report::load;
    let index = load::index(run_dir).map_err(|error| BenchError::RunFolder {
        dir: run_dir.to_path_buf(),
        error,
    })?;
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

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
