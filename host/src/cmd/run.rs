//! `peerlab run`: plan a run from a `.conf` (or a `.scenario` with
//! `--instances`), check it completely before starting anything, start it
//! with the chosen runner, then judge it (verdicts), write `junit.xml`, and
//! post-process (summary aggregates, plots, report).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use peerlab_lang::{Diagnostic, Format, Location, Port, Runner, Severity, has_errors, render_all};

use super::check::Loaded;
use crate::global::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::modules::Registry;
use crate::runner::verdict_choice::VerdictChoice;
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
    #[command(flatten)]
    pub plan: PlanArgs,
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
    /// Skip plots and report.html (summary aggregates are still computed)
    #[arg(long)]
    pub no_plots: bool,
    /// Judge nothing: no module's verdicts run (same as `verdicts = none` in the config)
    #[arg(long)]
    pub no_verdicts: bool,
}

/// The flags of `peerlab run` that change what is run, and so what is
/// checked: `peerlab check` takes the same ones.
#[derive(Args, Debug, Clone, Default)]
pub struct PlanArgs {
    /// Number of instances (overrides the config's instances_to_run)
    #[arg(short = 'n', long, value_name = "N")]
    pub instances: Option<u32>,
    /// Multiply every scenario time and timeout by F (0.05 runs a 2-minute scenario in 6 s)
    #[arg(long, value_name = "F", allow_negative_numbers = true, value_parser = positive_number)]
    pub time_scale: Option<f64>,
    /// Where to run the instances (overrides the config's runner)
    #[arg(long, value_enum)]
    pub runner: Option<RunnerArg>,
    /// Instances hosted by one OS process (overrides instances_per_process)
    #[arg(long, value_name = "K")]
    pub instances_per_process: Option<u32>,
    /// End the run after this many scenario seconds (overrides experiment_time / node_timeout)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = positive_number)]
    pub timeout: Option<f64>,
    /// Run every instance in this process on a simulated network in virtual time
    /// (same as `network = simulated`); time scale is 1 there, as virtual time
    /// already runs as fast as the CPU allows
    #[arg(long, conflicts_with = "runner")]
    pub simulate: bool,
}

/// A value above 0 for `--time-scale` and `--timeout` (clap prints the
/// flag and the value with the reason).
fn positive_number(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number; give a number above 0, e.g. 0.5"))?;
    if f.is_finite() && f > 0.0 {
        Ok(f)
    } else {
        Err(format!("it must be a number above 0, e.g. 0.5 (got {s})"))
    }
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
    check_plan(&mut loaded, &args.plan, true);
    let Some(scenario) = loaded.scenario.clone() else {
        // An unreadable file already says why there is no scenario.
        if !has_errors(&loaded.diagnostics) {
            loaded.diagnostics.push(
                Diagnostic::error("the experiment has no scenario")
                    .with_code("no-scenario")
                    .at(Location::file_only(args.experiment.display().to_string()))
                    .with_help("set scenario_file in the config"),
            );
        }
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

    // Everything that `peerlab check` would catch stops the run here, and
    // everything it warns about is shown.
    let (registry, problems) =
        super::check::resolve_modules(&loaded, &scenario, &args.plugin_path, global.verbose > 0);
    let plugin_path = with_config_plugin_path(&args.plugin_path, &loaded);
    crate::modules::forget_known_keys(&mut loaded.diagnostics, &registry.config_keys());
    loaded.diagnostics.extend(problems);
    loaded
        .diagnostics
        .extend(super::check::check_host_keys(&loaded.experiment));
    loaded
        .diagnostics
        .extend(crate::runner::verdict_choice::check_choice(
            &loaded.experiment,
            &registry,
        ));
    loaded
        .diagnostics
        .extend(super::check::check_capacity(&loaded.experiment, true));
    let problems: Vec<Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| match d.severity {
            Severity::Error => true,
            Severity::Warning => !global.quiet,
            _ => global.verbose > 0,
        })
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

    let simulate =
        args.plan.simulate || loaded.experiment.network == peerlab_lang::Network::Simulated;
    if simulate && args.plan.time_scale.is_some_and(|f| f != 1.0) {
        eprintln!(
            "peerlab: note: --time-scale is ignored with the simulated network: its virtual time already runs as fast as the CPU allows"
        );
    }
    let mut settings = settings(&args, &loaded, &scenario, simulate)?;
    settings.plugin_path = plugin_path.iter().map(|p| absolute(p)).collect();
    settings.progress = !global.quiet;
    check_output_root(&settings.output_root)?;
    let choice = if args.no_verdicts {
        (VerdictChoice::None, "--no-verdicts".to_string())
    } else {
        let c = VerdictChoice::of(&loaded.experiment).unwrap_or_default();
        let why = format!("verdicts = {}", c.describe());
        (c, why)
    };
    let runner = args
        .plan
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
        // The simulation runs on this thread; the runtime's workers listen
        // for stop signals meanwhile.
        let interrupt = {
            let _in_runtime = rt.enter();
            runner::interrupt::Interrupt::listen().context("cannot listen for stop signals")?
        };
        let outcome = runner::sim::run(&settings, &interrupt)?;
        drop(rt);
        return finish(outcome, &registry, &settings, &choice, args.no_plots);
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
    finish(outcome, &registry, &settings, &choice, args.no_plots)
}

/// Apply the run-shaping flags to a loaded experiment and add the problems
/// `peerlab run` refuses or warns about that depend on them: the instance
/// count (and the peer selectors checked against it), and the run limit
/// (scenario time × time scale). `peerlab run` and `peerlab check` both
/// call this, so they agree. `run`: a lone scenario without `--instances`
/// is an error (check only notes it).
pub fn check_plan(loaded: &mut Loaded, plan: &PlanArgs, run: bool) {
    let file = Location::file_only(loaded.path.display().to_string());
    let is_scenario = loaded.path.extension().is_some_and(|e| e == "scenario");
    if is_scenario && plan.instances.is_none() {
        let d = if run {
            Diagnostic::error("a scenario run needs an instance count")
                .with_help("give --instances N, or run a .conf that sets instances_to_run")
        } else {
            Diagnostic::note("a scenario alone has no instance count: `peerlab run` needs --instances N")
                .with_help("give the same --instances N to `peerlab check` to check the peer selectors against it")
        };
        loaded
            .diagnostics
            .push(d.with_code("no-instances").at(file.clone()));
    }
    if let Some(n) = plan.instances {
        loaded.experiment.instances = n;
    }
    if let Some(k) = plan.instances_per_process {
        loaded.experiment.instances_per_process = k;
    }
    if plan.simulate {
        loaded.experiment.network = peerlab_lang::Network::Simulated;
    }
    if let Some(r) = plan.runner {
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
                .at(file.clone())
                .with_help("set instances_to_run in the config or give --instances N"),
        );
    }
    let Some(scenario) = &loaded.scenario else {
        return;
    };
    // A config that states its count had the selectors checked when it was
    // read. Check them (once) against the count given with --instances, and
    // for a run against the default count too (a check leaves a count the
    // config does not state unchecked, as Gumby's helper scripts set it).
    let unchecked = !is_scenario && !states_count(&loaded.experiment);
    if plan.instances.is_some() || (run && unchecked) {
        if plan.instances.is_some() && !is_scenario {
            loaded
                .diagnostics
                .retain(|d| d.code != Some("peer-out-of-range"));
        }
        let seen: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| d.render_short())
            .collect();
        for d in scenario.check_peers(instances) {
            if !seen.contains(&d.render_short()) {
                loaded.diagnostics.push(d);
            }
        }
    }
    let simulated = loaded.experiment.network == peerlab_lang::Network::Simulated;
    if let Err(why) = run_limit(plan, &loaded.experiment, scenario, simulated) {
        loaded
            .diagnostics
            .push(Diagnostic::error(why).with_code("bad-run-limit"));
    }
}

fn states_count(exp: &peerlab_lang::Experiment) -> bool {
    [
        "instances_to_run",
        "das4_instances_to_run",
        "sync_subscribers_amount",
    ]
    .iter()
    .any(|k| exp.raw.contains_key(*k))
}

/// The run's time scale and its wall-clock limit (the scenario's end or
/// the configured limit, times the scale, plus 5 s), or why they are not
/// usable, naming what to change.
fn run_limit(
    plan: &PlanArgs,
    exp: &peerlab_lang::Experiment,
    scenario: &peerlab_lang::Scenario,
    simulate: bool,
) -> Result<(f64, Duration), String> {
    let time_scale = if simulate {
        1.0
    } else {
        plan.time_scale.or(exp.time_scale).unwrap_or(1.0)
    };
    // The run ends at the configured time; without one, a little after the
    // scenario's last command (an instance ends by itself after it).
    let limit_s = plan
        .timeout
        .or(exp.time_limit().map(|(_, d)| d.as_secs_f64()))
        .unwrap_or(scenario.timeline_length() + 30.0);
    let max = MAX_RUN.as_secs_f64();
    if !(limit_s.is_finite() && limit_s <= max) {
        return Err(format!(
            "a run limit of {limit_s} scenario seconds is not a usable time: give --timeout or experiment_time up to {} s",
            MAX_RUN.as_secs()
        ));
    }
    let scale_from = if plan.time_scale.is_some() {
        "--time-scale"
    } else {
        "time_scale"
    };
    match Duration::try_from_secs_f64(limit_s * time_scale) {
        Ok(d) if d <= MAX_RUN => Ok((time_scale, d + Duration::from_secs(5))),
        _ => Err(format!(
            "{scale_from} {} stretches the run limit of {limit_s} scenario seconds beyond a year of wall time: give a time scale up to {}",
            number(time_scale),
            number(max / limit_s)
        )),
    }
}

/// A number for a message: plain when short, in `1e300` form when not.
fn number(f: f64) -> String {
    if f != 0.0 && !(1e-3..1e6).contains(&f.abs()) {
        format!("{f:.3e}")
    } else {
        format!("{}", (f * 1000.0).round() / 1000.0)
    }
}

/// `--plugin-path` directories, then the config's `plugin_path` ones
/// (relative to the config file's directory).
pub fn with_config_plugin_path(cli: &[PathBuf], loaded: &Loaded) -> Vec<PathBuf> {
    let mut out = cli.to_vec();
    if let Some(v) = loaded.experiment.raw.get("plugin_path") {
        let base = search_dir(&loaded.experiment_dir);
        for item in v.value.items() {
            let item = item.trim();
            if !item.is_empty() {
                out.push(base.join(item));
            }
        }
    }
    out
}

/// The experiment's directory as a search folder: the current directory
/// for a file given without one (`x.conf`), never the empty path.
pub fn search_dir(dir: &Path) -> PathBuf {
    if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        dir.to_path_buf()
    }
}

/// Refuse an output root that cannot hold run folders before anything
/// starts: one that is a file (or lies under one).
fn check_output_root(root: &Path) -> anyhow::Result<()> {
    let mut p = Some(root);
    while let Some(dir) = p {
        if dir.exists() {
            if !dir.is_dir() {
                let what = if dir == root {
                    format!("the output root {} is a file", root.display())
                } else {
                    format!(
                        "the output root {} lies under {}, which is a file",
                        root.display(),
                        dir.display()
                    )
                };
                anyhow::bail!("{what}: choose another --output (or output_dir in the config)");
            }
            return Ok(());
        }
        p = dir.parent().filter(|d| !d.as_os_str().is_empty());
    }
    Ok(())
}

/// Build the runner's settings from the checked experiment and the flags.
fn settings(
    args: &RunArgs,
    loaded: &super::check::Loaded,
    scenario: &peerlab_lang::Scenario,
    simulate: bool,
) -> anyhow::Result<RunSettings> {
    let exp = &loaded.experiment;
    let (time_scale, timeout) =
        run_limit(&args.plan, exp, scenario, simulate).map_err(anyhow::Error::msg)?;
    let seed = args
        .seed
        .or(exp.seed)
        .unwrap_or_else(|| rand::random::<u64>() >> 12);
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
    (choice, why): &(VerdictChoice, String),
    no_plots: bool,
) -> anyhow::Result<u8> {
    let RunOutcome {
        run_dir,
        mut summary,
    } = outcome;
    summary.verdicts =
        runner::verdicts::collect_some(registry, &run_dir, &summary, &settings.config, |m| {
            choice.judges(m)
        });
    summary.verdicts.extend(choice.skipped(registry, why));
    if summary.outcome == "passed" && summary.verdicts.iter().any(|v| !v.passed) {
        summary.outcome = "failed".into();
    }
    // Both are attempted whatever happens to the other (a full disk); what
    // could not be written is the run's last message.
    let mut unwritten = Vec::new();
    let summary_path = run_dir.join("summary.json");
    if let Err(e) = folder::write_json(&summary_path, &summary) {
        unwritten.push(format!("cannot write {}: {e}", summary_path.display()));
    }
    let junit_path = run_dir.join("junit.xml");
    if let Err(e) = folder::write_atomic(&junit_path, runner::junit::render(&summary).as_bytes()) {
        unwritten.push(format!("cannot write {}: {e}", junit_path.display()));
    }

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
            if v.skipped {
                "SKIPPED"
            } else if v.passed {
                "PASS"
            } else {
                "FAIL"
            },
            v.message
        );
    }
    let judged: Vec<_> = summary.verdicts.iter().filter(|v| !v.skipped).collect();
    let skipped = summary.verdicts.len() - judged.len();
    let finished = summary
        .instance_status
        .iter()
        .filter(|s| s.status == "finished")
        .count();
    eprintln!(
        "peerlab: run {} {}: {finished}/{} instances finished, {} of {} verdicts passed{}, {:.1} s",
        summary.run_id,
        summary.outcome.to_uppercase(),
        summary.instances,
        judged.iter().filter(|v| v.passed).count(),
        judged.len(),
        if skipped > 0 {
            format!(" ({skipped} module(s) not judged)")
        } else {
            String::new()
        },
        summary.duration_s
    );
    match report.and_then(|r| r.report_html) {
        Some(html) => eprintln!("peerlab: report: {}", html.display()),
        None => eprintln!("peerlab: outputs: {}", run_dir.display()),
    }
    if !unwritten.is_empty() {
        anyhow::bail!(
            "the run ended but its results are incomplete: {}",
            unwritten.join("; ")
        );
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
