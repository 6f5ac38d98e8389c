//! `peerlab sweep EXP --param KEY=v1,v2 ... --repeat N`: every grid point
//! × repetition as an ordinary `peerlab run` (its own run folder and
//! derived seed) under one sweep folder, several at once when simulated;
//! then the sweep's statistics (`sweep.csv`, `runs.csv`) and report
//! (`sweep.html`). The same command again resumes: only jobs without a
//! complete run are run.
//!
//! Must not: hold the grid, resume, statistics or page logic (that is
//! peerlab-sweep); this file turns flags into a sweep and reports progress.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use peerlab_sweep::exec::{self, Event, JobEnd, Launch};
use peerlab_sweep::folder::{self, SweepRecord};
use peerlab_sweep::grid::{self, Param};
use peerlab_sweep::{aggregate, conf, html};

use crate::global::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};

/// Arguments of `peerlab sweep`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab sweep scenarios/benaloh/benaloh.conf --param instances_to_run=5,10,20 --repeat 5 --simulate
  peerlab sweep gossip.conf -p fanout=2,4 -p network_loss=0,0.05 --repeat 3 --seed 1

Each run is an ordinary run folder under OUTPUT/sweeps/<name>/runs/, with its own seed derived from the base \
seed, the point's values and the repetition. The sweep's name is derived from the command, so running the same \
command again resumes it: completed runs are kept, missing and interrupted ones are run. Ctrl-C stops cleanly \
(running runs end as interrupted). Results: sweep.csv (mean, sd, 95% CI per point and metric), runs.csv and \
sweep.html in the sweep folder.
Exit status: 0 when every run finished and passed, 1 when a run failed or the sweep was stopped, 2 when it could not run.")]
pub struct SweepArgs {
    /// The experiment: a .conf, or a .scenario (then sweep or give instances_to_run)
    pub experiment: PathBuf,
    /// A config key and its values, KEY=v1,v2,... (repeatable: the grid is their product)
    #[arg(short = 'p', long = "param", value_name = "KEY=V1,V2")]
    pub params: Vec<String>,
    /// Runs per grid point, each with its own seed
    #[arg(short = 'r', long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Base of the derived seeds [default: a fresh one, kept in sweep.json]
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Output root; the sweep goes to OUTPUT/sweeps/<name>/ [default: output]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The sweep folder's name [default: the experiment and a hash of the command]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Run every run on the simulated network in virtual time (several at once)
    #[arg(long)]
    pub simulate: bool,
    /// Multiply every scenario time and timeout by F (not with --simulate)
    #[arg(long, value_name = "F", conflicts_with = "simulate")]
    pub time_scale: Option<f64>,
    /// Number of instances (overrides instances_to_run, unless swept)
    #[arg(short = 'n', long, value_name = "N")]
    pub instances: Option<u32>,
    /// Runs at once [default: the cores when simulated, else 1]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub plugin: super::PluginPathArg,
    /// Skip each run's plots and report.html (the sweep's own report is still made)
    #[arg(long)]
    pub no_plots: bool,
}

/// The experiment's name as `peerlab run` names it: `experiment_name`, else
/// the file's stem.
fn experiment_name(path: &Path, text: Option<&str>) -> String {
    let from_conf = text.and_then(|t| {
        let (raw, _) = peerlab_lang::parse_config(&path.display().to_string(), t);
        raw.entries
            .iter()
            .find(|e| e.key == "experiment_name")
            .and_then(|e| e.value.as_str().map(String::from))
    });
    from_conf.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into())
    })
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Entry point of `peerlab sweep`.
pub fn run(global: &GlobalArgs, args: SweepArgs) -> anyhow::Result<u8> {
    let exp = args.experiment.canonicalize().with_context(|| {
        format!(
            "cannot sweep {}: the file cannot be read; give a .conf or .scenario",
            args.experiment.display()
        )
    })?;
    let is_scenario = exp.extension().is_some_and(|e| e == "scenario");
    let text = std::fs::read_to_string(&exp)
        .with_context(|| format!("cannot sweep: cannot read {}", exp.display()))?;
    let mut params: Vec<Param> = Vec::new();
    for p in &args.params {
        let p = Param::parse(p)?;
        if params.iter().any(|q| q.key == p.key) {
            anyhow::bail!(
                "--param {} is given twice: give every value of a key in one --param",
                p.key
            );
        }
        params.push(p);
    }
    if args.repeat == 0 {
        anyhow::bail!("--repeat 0 runs nothing: give 1 or more");
    }
    let experiment = experiment_name(&exp, (!is_scenario).then_some(text.as_str()));
    let root = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("output"));
    let mut identity = vec![
        exp.display().to_string(),
        format!("simulate={}", args.simulate),
    ];
    identity.extend(
        params
            .iter()
            .map(|p| format!("{}={}", p.key, p.values.join(","))),
    );
    identity.push(format!("time_scale={:?}", args.time_scale));
    identity.push(format!("instances={:?}", args.instances));
    identity.push(format!("seed={:?}", args.seed));
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", slug(&experiment), grid::identity_hash(&identity)));
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        anyhow::bail!("--name `{name}` cannot be a folder name: use letters, digits, - and _");
    }
    let dir = root.join(folder::SWEEPS_DIR).join(&name);
    let previous = dir
        .join(folder::SWEEP_JSON)
        .is_file()
        .then(|| folder::read_record(&dir))
        .transpose()?;
    if let Some(prev) = &previous
        && (prev.params != params || prev.experiment_path != exp || prev.simulate != args.simulate)
    {
        anyhow::bail!(
            "the sweep folder {} holds another sweep (of {} with other parameters); choose another --name",
            dir.display(),
            prev.experiment_path.display()
        );
    }
    let base_seed = match (&previous, args.seed) {
        (Some(prev), _) => prev.base_seed,
        (None, Some(s)) => s,
        (None, None) => rand::random::<u64>() >> 1,
    };
    let jobs = grid::jobs(&params, args.repeat, base_seed);
    std::fs::create_dir_all(dir.join(folder::LOGS_DIR))
        .with_context(|| format!("cannot create the sweep folder {}", dir.display()))?;

    // Each point's config, written once per point.
    let conf_name = if is_scenario {
        format!(
            "{}.conf",
            exp.file_stem().unwrap_or_default().to_string_lossy()
        )
    } else {
        exp.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let mut confs: BTreeMap<usize, String> = BTreeMap::new();
    for job in &jobs {
        if confs.contains_key(&job.point_index) {
            continue;
        }
        let rel = format!(
            "{}/p{:02}/{conf_name}",
            folder::POINTS_DIR,
            job.point_index + 1
        );
        let body = if is_scenario {
            conf::scenario_conf(&exp, &experiment, &job.point)
        } else {
            conf::point_conf(
                &text,
                &exp.display().to_string(),
                exp.parent().unwrap_or(Path::new("/")),
                &job.point,
            )?
        };
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
        folder::write_file(&path, &body)?;
        confs.insert(job.point_index, rel);
    }
    let command: Vec<String> = std::env::args().collect();
    let record = SweepRecord {
        name: name.clone(),
        experiment: experiment.clone(),
        experiment_path: exp.clone(),
        params: params.clone(),
        repeat: args.repeat,
        base_seed,
        simulate: args.simulate,
        time_scale: args.time_scale,
        command: command.join(" "),
        created_at: previous
            .as_ref()
            .map(|p| p.created_at.clone())
            .unwrap_or_else(|| crate::runner::folder::timestamp(std::time::SystemTime::now())),
        jobs: jobs
            .iter()
            .map(|j| folder::job_record(j, confs[&j.point_index].clone()))
            .collect(),
    };
    folder::write_record(&dir, &record)?;

    // A swept key no module reads would make every point the same run:
    // `peerlab check` the first point's config and refuse such a key.
    if let Some(first) = record.jobs.first() {
        check_swept_keys(&dir.join(&first.conf), &params, &args)?;
    }

    let (runs, problems) = folder::read_runs(&dir);
    for p in problems {
        eprintln!("peerlab: warning: {p} (that run folder is ignored)");
    }
    let done = folder::completed(&record, &runs);
    let todo: Vec<&folder::JobRecord> = record
        .jobs
        .iter()
        .filter(|j| !done.contains_key(&j.key))
        .collect();
    // Simulated by the flag, the config (`network = simulated`) or a swept
    // `network`: then runs only use CPU and may run side by side.
    let simulated = args.simulate
        || params
            .iter()
            .find(|p| p.key == "network")
            .map(|p| p.values.iter().all(|v| v == "simulated"))
            .unwrap_or_else(|| conf_says_simulated(&exp, &text));
    let parallel = args.jobs.unwrap_or_else(|| {
        if simulated {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            1
        }
    });
    eprintln!(
        "peerlab: sweep `{name}`: {} point(s) × {} = {} runs, {} already complete, {} to run ({} at once), base seed {base_seed}",
        record.points().len(),
        args.repeat,
        record.jobs.len(),
        done.len(),
        todo.len(),
        parallel.min(todo.len().max(1))
    );
    eprintln!("peerlab: sweep folder: {}", dir.display());

    let program =
        std::env::current_exe().context("cannot find the peerlab binary to start runs with")?;
    let runs_dir = dir.join(folder::RUNS_DIR);
    let launches: Vec<Launch> = todo
        .iter()
        .map(|j| {
            let mut a: Vec<OsString> = vec![
                "-q".into(),
                "run".into(),
                dir.join(&j.conf).into(),
                "--no-history".into(),
            ];
            a.extend(["--seed".into(), j.seed.to_string().into()]);
            a.extend(["--output".into(), runs_dir.clone().into_os_string()]);
            if args.simulate {
                a.push("--simulate".into());
            }
            if let Some(f) = args.time_scale {
                a.extend(["--time-scale".into(), f.to_string().into()]);
            }
            if let Some(n) = args.instances
                && !params.iter().any(|p| p.key == "instances_to_run")
            {
                a.extend(["--instances".into(), n.to_string().into()]);
            }
            for p in &args.plugin.plugin_path {
                a.extend(["--plugin-path".into(), p.clone().into_os_string()]);
            }
            if args.no_plots {
                a.push("--no-plots".into());
            }
            Launch {
                program: program.clone(),
                args: a,
                log: dir.join(folder::LOGS_DIR).join(format!("{}.log", j.key)),
            }
        })
        .collect();

    // One worker listens for stop signals while this thread polls the runs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupt = {
        let _in = rt.enter();
        crate::runner::interrupt::Interrupt::listen().context("cannot listen for stop signals")?
    };
    let stop = interrupt.flag();
    let started = Instant::now();
    let total = todo.len();
    let mut finished = 0usize;
    let mut busy = Duration::ZERO;
    let mut broken: Option<usize> = None;
    let ends = exec::run_all(&launches, parallel, &stop, |event| match event {
        Event::Started(_) => {}
        Event::Stopping { running } => {
            if broken.is_none() {
                eprintln!(
                    "peerlab: stopping the sweep: {running} running run(s) end as interrupted; run the same command again to resume"
                );
            }
        }
        Event::Ended { job, end, took } => {
            finished += 1;
            busy += took;
            let j = todo[job];
            let word = match &end {
                JobEnd::Exited(Some(0)) => "passed".to_string(),
                JobEnd::Exited(Some(1)) => "failed".to_string(),
                JobEnd::Exited(Some(c)) => format!("could not run (exit {c})"),
                JobEnd::Exited(None) => "killed".to_string(),
                JobEnd::SpawnFailed(e) => format!("not started: {e}"),
                JobEnd::NotStarted => "not started".to_string(),
            };
            let left = total - finished;
            let eta = if left > 0 && finished > 0 {
                let per = busy.as_secs_f64() / finished as f64;
                format!(
                    ", ETA {}",
                    clock(per * left as f64 / parallel.min(left) as f64)
                )
            } else {
                String::new()
            };
            if !global.quiet {
                eprintln!(
                    "peerlab: sweep {finished}/{total} done{eta}: {} [{}] {word} in {:.1} s",
                    j.key,
                    j.point,
                    took.as_secs_f64()
                );
            }
            let could_not_run = matches!(end, JobEnd::Exited(Some(c)) if c >= 2)
                || matches!(end, JobEnd::SpawnFailed(_));
            if could_not_run && broken.is_none() {
                broken = Some(job);
                // Every other run would fail the same way.
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    let interrupted = interrupt.received().is_some();

    // Aggregate whatever is complete now.
    let (runs, _) = folder::read_runs(&dir);
    let done = folder::completed(&record, &runs);
    let groups = folder::groups(&record, &done);
    let cells = aggregate::cells(&groups);
    let keys = record.keys();
    folder::write_file(
        &dir.join(folder::SWEEP_CSV),
        &aggregate::sweep_csv(&keys, &cells),
    )?;
    folder::write_file(
        &dir.join(folder::RUNS_CSV),
        &aggregate::runs_csv(&keys, &groups),
    )?;
    let missing = record.jobs.len() - done.len();
    folder::write_file(
        &dir.join(folder::SWEEP_HTML),
        &html::sweep_page(&record, &groups, &cells, missing, &dir),
    )?;
    // Each chart also as its own SVG file, for a paper or a README.
    let charts_dir = dir.join(folder::CHARTS_DIR);
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    for c in html::charts(&record, &groups, &cells) {
        folder::write_file(&charts_dir.join(c.file_name()), &c.svg)?;
    }
    crate::cmd::runs::update_history(&root);
    let not_passed = done
        .values()
        .filter(|r| r.outcome != Some(peerlab_run::RunStatus::Passed))
        .count();
    if let Some(job) = broken {
        let log = &launches[job].log;
        eprintln!(
            "peerlab: the sweep stopped: run {} could not run; its output ({}):",
            todo[job].key,
            log.display()
        );
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            eprintln!("  {line}");
        }
        return Ok(EXIT_ERROR);
    }
    eprintln!(
        "peerlab: sweep `{name}`: {} of {} runs complete ({not_passed} not passed), {} run now in {}; report: {}",
        done.len(),
        record.jobs.len(),
        ends.iter()
            .filter(|e| matches!(e, JobEnd::Exited(_)))
            .count(),
        clock(started.elapsed().as_secs_f64()),
        dir.join(folder::SWEEP_HTML).display()
    );
    if interrupted || missing > 0 {
        eprintln!("peerlab: {missing} run(s) missing: run the same command again to resume");
        return Ok(EXIT_FAILED);
    }
    Ok(if not_passed == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Run `peerlab check` on a point's config: its errors stop the sweep, and
/// so does a swept key it calls unknown (a typo would sweep nothing).
fn check_swept_keys(conf: &Path, params: &[Param], args: &SweepArgs) -> anyhow::Result<()> {
    let program = std::env::current_exe().context("cannot find the peerlab binary")?;
    let mut cmd = std::process::Command::new(program);
    cmd.arg("check").arg(conf).env("NO_COLOR", "1");
    if args.simulate {
        cmd.arg("--simulate");
    }
    if let Some(n) = args.instances
        && !params.iter().any(|p| p.key == "instances_to_run")
    {
        cmd.args(["--instances", &n.to_string()]);
    }
    for p in &args.plugin.plugin_path {
        cmd.arg("--plugin-path").arg(p);
    }
    let out = cmd.output().context("cannot run peerlab check")?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "the sweep's first grid point does not check ({}):\n{text}",
            conf.display()
        );
    }
    for p in params {
        if text.contains(&format!("unknown key `{}`", p.key)) {
            anyhow::bail!(
                "--param {}: `{}` is a key neither peerlab nor a loaded module reads, so sweeping it would change nothing; \
                 `peerlab check --explain-keys {}` lists the keys",
                p.key,
                p.key,
                conf.display()
            );
        }
    }
    Ok(())
}

/// The experiment's own config sets `network = simulated`.
fn conf_says_simulated(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|e| e == "scenario") {
        return false;
    }
    let (raw, _) = peerlab_lang::parse_config(&path.display().to_string(), text);
    raw.entries
        .iter()
        .any(|e| e.key == "network" && e.value.as_str() == Some("simulated"))
}

/// `1:05` or `1:02:05`.
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
