//! `peerlab run`: plan a run from a `.conf` (or a `.scenario` with
//! `--instances`), check it completely before starting anything, start it
//! with the chosen runner, then judge it (verdicts), write `junit.xml`, and
//! post-process (summary aggregates, plots, report).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use peerlab_lang::{Diagnostic, Format, Location, Runner, Severity, has_errors, render_all};

use crate::experiment::{self, Overrides, RunChoices};
use crate::global::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::modules::Registry;
use crate::runner::{self, RunOutcome, RunSettings};
use peerlab_verdicts::choice::VerdictChoice;

/// Arguments of `peerlab run`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab run scenarios/benaloh/benaloh.conf
  peerlab run scenarios/benaloh/benaloh.conf --time-scale 0.05 --seed 7
  peerlab run my.scenario --instances 10 --output runs/
  peerlab run exp.conf --follow 1-3      # instances 1 to 3's output as it is written

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
    /// Threads of a simulated run (overrides sim_threads) [default: this machine's cores];
    /// the outputs are byte for byte the same for any number; NATs, or a network whose
    /// datagrams can arrive at once (no delay, no topology latency), run on one thread and
    /// say so
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Output root; each run gets its own numbered folder in it [default: output]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub plugin: super::PluginPathArg,
    /// Skip plots and report.html (summary aggregates are still computed)
    #[arg(long)]
    pub no_plots: bool,
    /// Judge nothing: no module's verdicts run (same as `verdicts = none` in the config)
    #[arg(long)]
    pub no_verdicts: bool,
    /// Show instances' .out/.err lines as they are written, prefixed with the id
    /// (SELECTOR: ids like 1,3-5, or all [default]); other instances' first error at once
    #[arg(long, value_name = "SELECTOR", num_args = 0..=1, default_missing_value = "all",
          value_parser = crate::follow::Selector::parse)]
    pub follow: Option<crate::follow::Selector>,
    /// Leave OUTPUT/index.html as it is (a sweep updates its own history)
    #[arg(long, hide = true)]
    pub no_history: bool,
    /// Names for the sources, by the SHA-256 of their text (`peerlab
    /// rerun`: the original run's), so events and errors repeat.
    #[arg(skip)]
    pub source_names: std::collections::BTreeMap<String, String>,
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

impl PlanArgs {
    /// The overrides these flags stand for.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            instances: self.instances,
            time_scale: self.time_scale,
            runner: self.runner.map(|r| match r {
                RunnerArg::Local => Runner::Local,
                RunnerArg::Slurm => Runner::Slurm,
            }),
            instances_per_process: self.instances_per_process,
            timeout: self.timeout,
            simulate: self.simulate,
        }
    }
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

/// Entry point of `peerlab run`.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<u8> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut loaded = experiment::load(&args.experiment, &env);
    let overrides = args.plan.overrides();
    experiment::check_plan(&mut loaded, &overrides, true);
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
    let checked = experiment::check_loaded(
        &mut loaded,
        Some(&args.plugin.plugin_path),
        global.verbose > 0,
        true,
    );
    let Some(registry) = checked else {
        anyhow::bail!("internal error: the scenario's modules were not checked");
    };
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

    if (overrides.simulate || loaded.experiment.network == peerlab_lang::Network::Simulated)
        && overrides.time_scale.is_some_and(|f| f != 1.0)
    {
        eprintln!(
            "peerlab: note: --time-scale is ignored with the simulated network: its virtual time already runs as fast as the CPU allows"
        );
    }
    let mut plan = experiment::plan_run(
        &loaded,
        &scenario,
        &overrides,
        &RunChoices {
            seed: args.seed,
            output: args.output.clone(),
            plugin_path: args.plugin.plugin_path.clone(),
        },
        !global.quiet,
    )?;
    if let Some(n) = args.threads {
        if plan.simulate {
            plan.settings
                .config
                .insert("sim_threads".into(), n.to_string());
        } else {
            eprintln!(
                "peerlab: note: --threads is ignored: only a simulated run (--simulate, network = simulated) runs its instances on threads of its own"
            );
        }
    }
    plan.settings.metrics = registry.metric_decls();
    plan.settings.source_names = args.source_names.clone();
    let choice = if args.no_verdicts {
        (VerdictChoice::None, "--no-verdicts".to_string())
    } else {
        let c = VerdictChoice::of(&loaded.experiment).unwrap_or_default();
        let why = format!("verdicts = {}", c.describe());
        (c, why)
    };
    plan.settings.plugins = crate::provenance::plugin_records(&registry);
    if !global.quiet {
        for warning in crate::provenance::debug_build_warnings(&plan.settings.plugins) {
            eprintln!("peerlab: warning: {warning}");
        }
    }
    let settings = &plan.settings;
    eprintln!(
        "peerlab: running `{}`: {} instances, seed {}, time scale {}",
        settings.experiment, settings.instances, settings.seed, settings.time_scale
    );
    let follower = args
        .follow
        .clone()
        .map(|sel| crate::follow::Follower::start(settings.output_root.clone(), sel));
    let outcome = runner::start(settings, plan.simulate, plan.runner, &loaded.experiment);
    if let Some(f) = follower {
        f.finish();
    }
    let outcome = outcome?;
    let code = finish(outcome, &registry, settings, &choice, args.no_plots)?;
    if !args.no_history {
        crate::cmd::runs::update_history(&settings.output_root);
    }
    Ok(code)
}

/// Judge, record, post-process and report the run ([`runner::finish::conclude`]).
fn finish(
    outcome: RunOutcome,
    registry: &Registry,
    settings: &RunSettings,
    (choice, why): &(VerdictChoice, String),
    no_plots: bool,
) -> anyhow::Result<u8> {
    let passed =
        runner::finish::conclude(outcome, registry, &settings.config, choice, why, !no_plots)?;
    Ok(if passed { EXIT_OK } else { EXIT_FAILED })
}

fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
