//! Planning a run: the command line's overrides applied to a loaded
//! experiment, the checks that depend on them (instance count, run limit,
//! this machine's capacity, the host's own config keys), and the runner's
//! settings built from the result. `peerlab check` and `peerlab run` both
//! call it, so they agree on what would run.
//!
//! It must not print, start anything or write files; it reads only the
//! experiment's files' canonical paths (for the run record's sources).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use peerlab_lang::{Diagnostic, Location, Port, Runner};

use super::ExperimentError;
use super::load::{Loaded, with_config_plugin_path};
use crate::runner::RunSettings;

/// What the command line overrides in an experiment (the flags of `peerlab
/// run` that change what runs; `peerlab check` takes the same ones).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Number of instances (overrides `instances_to_run`).
    pub instances: Option<u32>,
    /// Multiplies every scenario time and timeout (above 0).
    pub time_scale: Option<f64>,
    /// Where to run the instances (overrides `runner`).
    pub runner: Option<Runner>,
    /// Instances hosted by one OS process (overrides `instances_per_process`).
    pub instances_per_process: Option<u32>,
    /// Scenario seconds after which the run ends (overrides `experiment_time`).
    pub timeout: Option<f64>,
    /// Run on the simulated network (as `network = simulated`).
    pub simulate: bool,
}

/// What `peerlab run` chooses beyond the experiment: the seed, the output
/// root and extra plugin directories.
#[derive(Debug, Clone, Default)]
pub struct RunChoices {
    /// The run seed (default: the config's, else a fresh one).
    pub seed: Option<u64>,
    /// The output root (default: the config's `output_dir`).
    pub output: Option<PathBuf>,
    /// Plugin directories from the command line.
    pub plugin_path: Vec<PathBuf>,
}

/// The longest run peerlab plans (a year): beyond it, times stop being
/// meaningful and arithmetic on instants could overflow.
const MAX_RUN: Duration = Duration::from_secs(365 * 24 * 3600);

/// Apply the run-shaping flags to a loaded experiment and add the problems
/// `peerlab run` refuses or warns about that depend on them: the instance
/// count (and the peer selectors checked against it), and the run limit
/// (scenario time × time scale). `peerlab run` and `peerlab check` both
/// call this, so they agree. `run`: a lone scenario without `--instances`
/// is an error (check only notes it).
pub fn check_plan(loaded: &mut Loaded, plan: &Overrides, run: bool) {
    let file = Location::file_only(loaded.path.display().to_string());
    let is_scenario = loaded.path.extension().is_some_and(|e| e == "scenario");
    if is_scenario && plan.instances.is_none() && !loaded.experiment.states_instance_count() {
        let d = if run {
            Diagnostic::error("a scenario run needs an instance count")
                .with_help("give --instances N (or PEERLAB_INSTANCES_TO_RUN=N), or run a .conf that sets instances_to_run")
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
        loaded.experiment.runner = r;
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
    // (a bad `external_cmd` value has its own error already)
    let cmd_given = loaded.experiment.raw.contains_key("external_cmd");
    for why in loaded.experiment.external.check(instances, cmd_given) {
        loaded.diagnostics.push(
            Diagnostic::error(why)
                .with_code("bad-external")
                .at(file.clone()),
        );
    }
    if loaded.experiment.external.instances > 0
        && loaded.experiment.network == peerlab_lang::Network::Simulated
    {
        let at = match loaded
            .experiment
            .raw
            .get("external_instances")
            .map(|v| &v.origin)
        {
            Some(peerlab_lang::experiment::Origin::File(at)) => at.clone(),
            _ => file.clone(),
        };
        loaded.diagnostics.push(
            Diagnostic::error("external instances cannot run on the simulated network: they are other programs, with their own sockets and the real clock, and a simulated run's instances live on a virtual clock inside peerlab")
                .with_code("bad-external")
                .at(at)
                .with_help("run over the real network (network = real, no --simulate; locally or under SLURM), or set external_instances = 0"),
        );
    }
    if let Some(base) = loaded.experiment.runtime.instance_port_base
        && u32::from(base) + instances.saturating_sub(1) > 65535
    {
        loaded.diagnostics.push(
            Diagnostic::error(format!(
                "`instance_port_base = {base}` leaves no port for the last of {instances} instances (the highest port is 65535)"
            ))
            .with_code("bad-value")
            .at(file.clone())
            .with_help("choose a lower base"),
        );
    }
    capture_size(loaded, &file);
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
    plan: &Overrides,
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

/// Build the runner's settings from the checked experiment, the overrides
/// and the run's own choices (seed, output root, plugin path).
pub fn run_settings(
    loaded: &Loaded,
    scenario: &peerlab_lang::Scenario,
    plan: &Overrides,
    choices: &RunChoices,
    simulate: bool,
) -> Result<RunSettings, ExperimentError> {
    let exp = &loaded.experiment;
    let (time_scale, timeout) =
        run_limit(plan, exp, scenario, simulate).map_err(ExperimentError::RunLimit)?;
    let seed = choices
        .seed
        .or(exp.seed)
        .unwrap_or_else(|| rand::random::<u64>() >> 12);
    // `registration_timeout`, wall-clock (starting a process does not
    // speed up with the scenario's time scale).
    let registration_timeout = exp
        .registration_timeout
        .unwrap_or(Duration::from_secs(30) + Duration::from_millis(50 * u64::from(exp.instances)));
    let scenario_path = absolute(
        loaded
            .scenario_path
            .as_deref()
            .ok_or(ExperimentError::NoScenarioFile)?,
    );
    let config_path =
        (loaded.path.extension().is_some_and(|e| e == "conf")).then(|| absolute(&loaded.path));
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
        output_root: choices
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(&exp.output_dir)),
        plugin_path: choices.plugin_path.iter().map(|p| absolute(p)).collect(),
        modules: scenario.modules.iter().map(|m| m.name.clone()).collect(),
        // The caller fills it from the modules it resolved.
        metrics: Vec::new(),
        sync_port: match exp.sync_port {
            Port::Fixed(p) => p,
            Port::Unique => 0,
        },
        progress: true,
        plugins: Vec::new(),
        sources: loaded
            .sources
            .iter()
            .filter_map(|f| {
                let path = std::fs::canonicalize(&**f.name()).ok()?;
                Some((path, std::sync::Arc::from(f.text())))
            })
            .collect(),
        // `peerlab rerun` fills it with the original run's names.
        source_names: Default::default(),
    })
}

/// Whether a run of this experiment's size can start on this machine
/// (memory for its instances, local processes), pointing at the instance
/// count, from [`crate::runner::capacity`]. Checked by `peerlab check`
/// (what depends on this machine is a warning there) and, with the
/// command line's overrides applied to `exp` and `for_run`, as errors
/// before `peerlab run` writes or starts anything.
pub fn check_capacity(exp: &peerlab_lang::Experiment, for_run: bool) -> Vec<Diagnostic> {
    use crate::runner::capacity::{Machine, Plan, check};
    let plan = Plan {
        instances: u64::from(exp.instances),
        per_process: u64::from(exp.instances_per_process.max(1)),
        simulated: exp.network == peerlab_lang::Network::Simulated,
        local: exp.runner == peerlab_lang::Runner::Local,
    };
    let at = exp
        .raw
        .get("instances_to_run")
        .filter(|v| v.value.to_string() == exp.instances.to_string())
        .and_then(|v| match &v.origin {
            peerlab_lang::experiment::Origin::File(at) => Some(at.clone()),
            peerlab_lang::experiment::Origin::Env(_) => None,
        });
    check(&plan, &Machine::this(), for_run)
        .into_iter()
        .map(|d| match &at {
            Some(l) => d.at(l.clone()),
            None => d,
        })
        .collect()
}

/// Values of the config keys the host reads itself (the overlay's
/// `OverlayTuning::KEYS`), checked by `peerlab check`
/// and before `peerlab run` starts anything.
pub fn check_host_keys(exp: &peerlab_lang::Experiment) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for key in peerlab_runtime::instance::OverlayTuning::KEYS {
        let Some(v) = exp.raw.get(key) else {
            continue;
        };
        let one = BTreeMap::from([(key.to_string(), v.value.to_string())]);
        if let Err(why) = peerlab_runtime::instance::OverlayTuning::from_config(&one) {
            let d = Diagnostic::error(why).with_code("bad-value");
            out.push(match &v.origin {
                peerlab_lang::experiment::Origin::File(at) => d.at(at.clone()),
                peerlab_lang::experiment::Origin::Env(name) => d.with_help(format!(
                    "the value comes from the environment variable {name}"
                )),
            });
        }
    }
    out
}

/// A run ready to start: the runner's settings and where it runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What every runner needs.
    pub settings: RunSettings,
    /// Where the instances run (unless simulated).
    pub runner: Runner,
    /// The whole run in this process, on the simulated network.
    pub simulate: bool,
}

/// Plan a checked experiment (after [`check_plan`] found no error): the
/// runner's settings with the config's plugin directories after the
/// command line's, the runner, and whether it is simulated. Refuses an
/// output root that cannot hold run folders. `progress`: draw progress.
pub fn plan_run(
    loaded: &Loaded,
    scenario: &peerlab_lang::Scenario,
    plan: &Overrides,
    choices: &RunChoices,
    progress: bool,
) -> Result<Plan, ExperimentError> {
    let simulate = plan.simulate || loaded.experiment.network == peerlab_lang::Network::Simulated;
    let mut settings = run_settings(loaded, scenario, plan, choices, simulate)?;
    settings.plugin_path = with_config_plugin_path(&choices.plugin_path, loaded)
        .iter()
        .map(|p| absolute(p))
        .collect();
    settings.progress = progress;
    check_output_root(&settings.output_root)?;
    Ok(Plan {
        settings,
        runner: plan.runner.unwrap_or(loaded.experiment.runner),
        simulate,
    })
}

/// Refuse an output root that cannot hold run folders before anything
/// starts: one that is a file (or lies under one).
pub fn check_output_root(root: &Path) -> Result<(), ExperimentError> {
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
                return Err(ExperimentError::OutputRoot { what });
            }
            return Ok(());
        }
        p = dir.parent().filter(|d| !d.as_os_str().is_empty());
    }
    Ok(())
}

/// `p` made absolute against the current directory (as it is when that fails).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What `capture = true` may write beyond which `peerlab check` warns.
const CAPTURE_WARN_BYTES: u64 = 10_000_000_000;

/// `capture = true` writes one pcap per instance, each up to
/// `capture_limit`: warn when that may add up to more than 10 GB.
fn capture_size(loaded: &mut Loaded, file: &Location) {
    let runtime = &loaded.experiment.runtime;
    if runtime.capture != Some(true) {
        return;
    }
    let limit = runtime
        .capture_limit
        .unwrap_or(peerlab_lang::CAPTURE_LIMIT_DEFAULT);
    let instances = u64::from(loaded.experiment.instances);
    let total = instances.saturating_mul(limit);
    if total <= CAPTURE_WARN_BYTES {
        return;
    }
    let at = match loaded.experiment.raw.get("capture").map(|v| &v.origin) {
        Some(peerlab_lang::Origin::File(loc)) => loc.clone(),
        _ => file.clone(),
    };
    loaded.diagnostics.push(
        Diagnostic::warning(format!(
            "`capture = true` on {instances} instances may write up to {} GB of packet captures ({} MB each at most, capture_limit)",
            total / 1_000_000_000,
            limit / 1_000_000
        ))
        .with_code("capture-size")
        .at(at)
        .with_help("capture a few instances with the scenario's `capture {..}`, or lower capture_limit"),
    );
}
