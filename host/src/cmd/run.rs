//! `peerlab run`: plan a run from a `.conf` (or a `.scenario` with
//! `--instances`), check it completely before starting anything, start it
//! with the chosen runner, then judge it (verdicts), write `junit.xml`, and
//! post-process (summary aggregates, plots, report).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use peerlab_lang::{Diagnostic, Format, Location, Port, Runner, has_errors, render_all};

use crate::cli::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::modules::{Registry, SearchPaths};
use crate::runner::{self, RunOutcome, RunSettings, folder};

/// Arguments of `peerlab run`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab run scenarios/benaloh/benaloh.conf
  peerlab run scenarios/benaloh/benaloh.conf --time-scale 0.05 --seed 7
  peerlab run my.scenario --instances 10 --output runs/

Outputs go to OUTPUT/<NNNN>-<experiment>/ (see docs/outputs.md); OUTPUT/latest points at the newest run.
Exit status: 0 when every instance finished and every verdict passed, 1 when the run failed, 2 when it could not run.")]
pub struct RunArgs {
    /// The experiment: a Gumby-style .conf, or a .scenario (then give --instances)
    pub experiment: PathBuf,
    /// Number of instances (overrides the config's instances_to_run)
    #[arg(short = 'n', long, value_name = "N")]
    pub instances: Option<u32>,
    /// Multiply every scenario time and timeout by F (0.05 runs a 2-minute scenario in 6 s)
    #[arg(long, value_name = "F")]
    pub time_scale: Option<f64>,
    /// Seed of every random choice in the run (default: a fresh one, printed in the summary)
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Output root; each run gets its own numbered folder in it [default: output]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Extra directories to search for plugins (also PEERLAB_PLUGIN_PATH, ':'-separated)
    #[arg(
        long,
        value_name = "DIR",
        env = "PEERLAB_PLUGIN_PATH",
        value_delimiter = ':'
    )]
    pub plugin_path: Vec<PathBuf>,
    /// Where to run the instances (overrides the config's runner)
    #[arg(long, value_enum)]
    pub runner: Option<RunnerArg>,
    /// Instances hosted by one OS process (overrides instances_per_process)
    #[arg(long, value_name = "K")]
    pub instances_per_process: Option<u32>,
    /// End the run after this many scenario seconds (overrides experiment_time / node_timeout)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Run every instance in this process on a simulated network in virtual time
    /// (same as `network = simulated`); time scale is 1 there, as virtual time
    /// already runs as fast as the CPU allows
    #[arg(long, conflicts_with = "runner")]
    pub simulate: bool,
    /// Skip plots and report.html (summary aggregates are still computed)
    #[arg(long)]
    pub no_plots: bool,
}

/// `--runner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunnerArg {
    /// Processes on this machine
    Local,
    /// A SLURM cluster (sbatch/srun)
    Slurm,
}

/// The longest run peerlab plans (a year): beyond it, times stop being
/// meaningful and arithmetic on instants could overflow.
const MAX_RUN: Duration = Duration::from_secs(365 * 24 * 3600);

/// Entry point of `peerlab run`.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<u8> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut loaded = super::check::load(&args.experiment, &env);
    let is_scenario = args.experiment.extension().is_some_and(|e| e == "scenario");
    if is_scenario && args.instances.is_none() {
        loaded.diagnostics.push(
            Diagnostic::error("a scenario run needs an instance count")
                .with_code("no-instances")
                .at(Location::file_only(args.experiment.display().to_string()))
                .with_help("give --instances N, or run a .conf that sets instances_to_run"),
        );
    }
    if let Some(n) = args.instances {
        loaded.experiment.instances = n;
    }
    if let Some(k) = args.instances_per_process {
        loaded.experiment.instances_per_process = k;
    }
    // The experiment as it will run, for the size check below.
    if args.simulate {
        loaded.experiment.network = peerlab_lang::Network::Simulated;
    }
    if let Some(r) = args.runner {
        loaded.experiment.runner = match r {
            RunnerArg::Local => Runner::Local,
            RunnerArg::Slurm => Runner::Slurm,
        };
    }
    let instances = loaded.experiment.instances;
    if instances == 0 {
        loaded.diagnostics.push(
            Diagnostic::error("the experiment has no instances")
                .with_code("no-instances")
                .at(Location::file_only(args.experiment.display().to_string()))
                .with_help("set instances_to_run in the config or give --instances N"),
        );
    }
    if let Some(f) = args.time_scale
        && !(f.is_finite() && f > 0.0)
    {
        anyhow::bail!("--time-scale must be a positive number, got {f}");
    }
    if let Some(t) = args.timeout
        && !(t.is_finite() && t > 0.0)
    {
        anyhow::bail!("--timeout must be a positive number of scenario seconds, got {t}");
    }
    let Some(scenario) = loaded.scenario.as_ref() else {
        loaded.diagnostics.push(
            Diagnostic::error("the experiment has no scenario")
                .with_code("no-scenario")
                .at(Location::file_only(args.experiment.display().to_string()))
                .with_help("set scenario_file in the config"),
        );
        eprint!(
            "{}",
            render_all(
                &loaded.diagnostics,
                &loaded.sources,
                Format::Human {
                    color: stderr_color()
                }
            )
        );
        return Ok(EXIT_ERROR);
    };

    // Everything that `peerlab check` would catch stops the run here.
    let paths = SearchPaths::standard(&args.plugin_path, Some(&loaded.experiment_dir));
    let (registry, problems) = crate::modules::load_and_check(scenario, &paths, global.verbose > 0);
    crate::modules::forget_known_keys(&mut loaded.diagnostics, &registry.config_keys());
    loaded.diagnostics.extend(problems);
    loaded.diagnostics.extend(scenario.check_peers(instances));
    loaded
        .diagnostics
        .extend(super::check::check_host_keys(&loaded.experiment));
    loaded
        .diagnostics
        .extend(super::check::check_capacity(&loaded.experiment, true));
    let problems: Vec<Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() || global.verbose > 0)
        .cloned()
        .collect();
    if !problems.is_empty() {
        eprint!(
            "{}",
            render_all(
                &problems,
                &loaded.sources,
                Format::Human {
                    color: stderr_color()
                }
            )
        );
    }
    if has_errors(&loaded.diagnostics) {
        eprintln!(
            "peerlab: the experiment was not started: fix the errors above (`peerlab check` lists them too)"
        );
        return Ok(EXIT_ERROR);
    }

    let simulate = args.simulate || loaded.experiment.network == peerlab_lang::Network::Simulated;
    if simulate && args.time_scale.is_some_and(|f| f != 1.0) {
        eprintln!(
            "peerlab: note: --time-scale is ignored with the simulated network: its virtual time already runs as fast as the CPU allows"
        );
    }
    let mut settings = settings(&args, &loaded, scenario, simulate)?;
    settings.progress = !global.quiet;
    let runner = args
        .runner
        .map(|r| match r {
            RunnerArg::Local => Runner::Local,
            RunnerArg::Slurm => Runner::Slurm,
        })
        .unwrap_or(loaded.experiment.runner);
    eprintln!(
        "peerlab: running `{}`: {} instances, seed {}, time scale {}",
        settings.experiment, settings.instances, settings.seed, settings.time_scale
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if simulate {
        let outcome = runner::sim::run(&settings)?;
        drop(rt);
        return finish(outcome, &registry, &settings, args.no_plots);
    }
    let outcome: RunOutcome = match runner {
        Runner::Local => rt.block_on(runner::local::run(&settings))?,
        Runner::Slurm => {
            let slurm =
                runner::slurm::SlurmSettings::from_experiment(&loaded.experiment, &settings)?;
            rt.block_on(runner::slurm::run(&settings, &slurm))?
        }
    };
    drop(rt);
    finish(outcome, &registry, &settings, args.no_plots)
}

/// Build the runner's settings from the checked experiment and the flags.
fn settings(
    args: &RunArgs,
    loaded: &super::check::Loaded,
    scenario: &peerlab_lang::Scenario,
    simulate: bool,
) -> anyhow::Result<RunSettings> {
    let exp = &loaded.experiment;
    let time_scale = if simulate {
        1.0
    } else {
        args.time_scale.or(exp.time_scale).unwrap_or(1.0)
    };
    let seed = args
        .seed
        .or(exp.seed)
        .unwrap_or_else(|| rand::random::<u64>() >> 12);
    let timeline = scenario.timeline_length();
    // The run ends at the configured time; without one, a little after the
    // scenario's last command (an instance ends by itself after it).
    let limit_s = args
        .timeout
        .or(exp.time_limit().map(|(_, d)| d.as_secs_f64()))
        .unwrap_or(timeline + 30.0);
    let timeout = Duration::try_from_secs_f64(limit_s * time_scale)
        .ok()
        .filter(|d| *d <= MAX_RUN)
        .with_context(|| {
            format!(
                "a run limit of {limit_s} scenario seconds is not a usable time: give --timeout or experiment_time up to {} s",
                MAX_RUN.as_secs()
            )
        })?
        + Duration::from_secs(5);
    let registration_timeout =
        Duration::from_secs(30) + Duration::from_millis(50 * u64::from(exp.instances));
    let scenario_path = absolute(
        loaded
            .scenario_path
            .as_deref()
            .context("the experiment has no scenario file")?,
    );
    let config_path = (args.experiment.extension().is_some_and(|e| e == "conf"))
        .then(|| absolute(&args.experiment));
    let mut config: BTreeMap<String, String> = exp
        .raw
        .iter()
        .map(|(k, v)| (k.clone(), v.value.to_string()))
        .collect();
    config.insert("instances_to_run".into(), exp.instances.to_string());
    Ok(RunSettings {
        experiment: exp.name.clone(),
        config_path,
        scenario_path,
        config,
        instances: exp.instances,
        instances_per_process: exp.instances_per_process.max(1),
        seed,
        time_scale,
        timeout,
        registration_timeout,
        start_delay: exp.sync_experiment_start_delay,
        output_root: args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(&exp.output_dir)),
        plugin_path: args.plugin_path.iter().map(|p| absolute(p)).collect(),
        modules: scenario.modules.iter().map(|m| m.name.clone()).collect(),
        sync_port: match exp.sync_port {
            Port::Fixed(p) => p,
            Port::Unique => 0,
        },
        progress: true,
        sources: loaded
            .sources
            .iter()
            .filter_map(|f| {
                let path = std::fs::canonicalize(&**f.name()).ok()?;
                Some((path, std::sync::Arc::from(f.text())))
            })
            .collect(),
    })
}

/// Judge the run, record it, post-process it, and say how it went.
fn finish(
    outcome: RunOutcome,
    registry: &Registry,
    settings: &RunSettings,
    no_plots: bool,
) -> anyhow::Result<u8> {
    let RunOutcome {
        run_dir,
        mut summary,
    } = outcome;
    summary.verdicts = runner::verdicts::collect(registry, &run_dir, &summary, &settings.config);
    if summary.outcome == "passed" && summary.verdicts.iter().any(|v| !v.passed) {
        summary.outcome = "failed".into();
    }
    folder::write_json(&run_dir.join("summary.json"), &summary)
        .with_context(|| format!("cannot write {}", run_dir.join("summary.json").display()))?;
    std::fs::write(run_dir.join("junit.xml"), runner::junit::render(&summary))
        .with_context(|| format!("cannot write {}", run_dir.join("junit.xml").display()))?;

    let opts = peerlab_report::ReportOptions {
        plots: !no_plots,
        ..Default::default()
    };
    let report = match peerlab_report::process_run(&run_dir, &opts) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("peerlab: warning: post-processing failed (the run's files are intact): {e}");
            None
        }
    };

    for s in summary
        .instance_status
        .iter()
        .filter(|s| s.status != "finished")
    {
        let err = run_dir.join(&s.err);
        let see = if err.is_file() {
            format!(" (see {})", err.display())
        } else {
            String::new()
        };
        eprintln!(
            "peerlab: instance {} {}: {}{see}",
            s.id,
            s.status,
            s.error.as_deref().unwrap_or("no details"),
        );
    }
    for v in &summary.verdicts {
        eprintln!(
            "peerlab: verdict {}: {} — {}",
            v.name,
            if v.passed { "PASS" } else { "FAIL" },
            v.message
        );
    }
    let finished = summary
        .instance_status
        .iter()
        .filter(|s| s.status == "finished")
        .count();
    eprintln!(
        "peerlab: run {} {}: {finished}/{} instances finished, {} of {} verdicts passed, {:.1} s",
        summary.run_id,
        summary.outcome.to_uppercase(),
        summary.instances,
        summary.verdicts.iter().filter(|v| v.passed).count(),
        summary.verdicts.len(),
        summary.duration_s
    );
    match report.and_then(|r| r.report_html) {
        Some(html) => eprintln!("peerlab: report: {}", html.display()),
        None => eprintln!("peerlab: outputs: {}", run_dir.display()),
    }
    Ok(if summary.outcome == "passed" {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
