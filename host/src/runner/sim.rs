//! The simulated runner (`network = simulated`, `peerlab run --simulate`):
//! the whole run in this process on a virtual clock. It writes the same run
//! folder as the local runner; only `runner` in `run.json` and the host
//! name in the layout (`simulated/node001/`) tell them apart.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::error::RunError;
use super::folder::{self, EndStatus, InstanceStatus, Placement, prepare_folder};
use super::interrupt::{Interrupt, StopSignal};
use super::{RunOutcome, RunSettings};
use peerlab_run::SimulationRecord;
use peerlab_runtime::instance::Outcome;
use peerlab_runtime::resources::ResourceLog;
use peerlab_runtime::sim::{self, LinkModel, SimSettings};
use peerlab_runtime::sim_parallel;

/// The host name simulated runs use in the output layout.
pub const SIM_HOST: &str = "simulated";

/// The link model from the config keys `network_delay`, `network_jitter`
/// and `network_loss` as lang types them (defaults: 5 ms, 1 ms, 0; with a
/// `topology`, 0 and 0: the topology gives the latency).
pub fn link_model(config: &BTreeMap<String, String>) -> Result<LinkModel, RunError> {
    let (keys, errors) = peerlab_lang::RuntimeKeys::from_strings(config);
    if let Some(e) = errors.into_iter().find(|e| e.contains("`network_")) {
        return Err(RunError::BadKey(e));
    }
    let mut link = LinkModel::default();
    if config.contains_key("topology") {
        // The topology gives each link its latency: the simulated link
        // adds none of its own unless the config asks.
        link.delay = std::time::Duration::ZERO;
        link.jitter = std::time::Duration::ZERO;
    }
    if let Some(d) = keys.network_delay {
        link.delay = d;
    }
    if let Some(d) = keys.network_jitter {
        link.jitter = d;
    }
    if let Some(loss) = keys.network_loss {
        link.loss = loss;
    }
    Ok(link)
}

/// The threads a simulated run of `config` uses: `sim_threads` (which
/// `--threads` sets), else this machine's cores; one when a feature needs
/// it (`peerlab_runtime::sim_parallel::plan` says which, and why) or when
/// a datagram can arrive as soon as it is sent (`lookahead` zero).
pub fn threads(
    config: &BTreeMap<String, String>,
    lookahead: std::time::Duration,
) -> SimulationRecord {
    let requested = peerlab_lang::RuntimeKeys::from_strings(config)
        .0
        .sim_threads
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let nats = peerlab_lang::NatKeys::from_strings(config).0.any();
    let plan = sim_parallel::plan(requested, lookahead, nats);
    SimulationRecord {
        threads_requested: requested as u32,
        threads: plan.threads as u32,
        single_threaded_because: plan.single_threaded_because,
    }
}

/// Run the experiment in virtual time and return its outcome. A stop
/// signal (`interrupt`) ends the simulation where it is: the instances
/// still running end as interrupted, and the run folder is completed as
/// for any other end.
pub fn run(settings: &RunSettings, interrupt: &Interrupt) -> Result<RunOutcome, RunError> {
    let link = link_model(&settings.config)?;
    let placement: Vec<Placement> = (1..=settings.instances)
        .map(|id| Placement {
            id,
            host: SIM_HOST.into(),
            node: 1,
            process: 1,
        })
        .collect();
    let started_at = SystemTime::now();
    let (run_id, run_dir, mut record) = prepare_folder(settings, "simulated", 1, placement)?;
    // Community ids derive from the seed alone, so a run repeats byte for byte.
    let identity = format!("simulated/{}/{}", settings.experiment, settings.seed);
    let shared = crate::experiment::shared::load_shared(&record, &identity)?;
    let lookahead = sim_parallel::lookahead(
        link.delay,
        shared.topology.as_deref(),
        shared.time_scale,
        settings.instances,
    );
    let threads = threads(&settings.config, lookahead);
    if let Some(why) = &threads.single_threaded_because {
        eprintln!("peerlab: note: {why}");
    }
    record.simulation = Some(threads.clone());
    peerlab_run::write::write_run_record(&run_dir, &record)
        .map_err(RunError::write(run_dir.join(peerlab_run::layout::RUN_JSON)))?;
    let mut resources = ResourceLog::create_or_warn(
        &run_dir.join(folder::process_resources(SIM_HOST, 1, 1)),
        (1..=settings.instances).collect(),
    );
    if let Some(r) = resources.as_mut() {
        r.record(0.0);
    }
    let wall = std::time::Instant::now();
    // Virtual time costs nothing, so simulated runs keep time scale 1 and
    // the timeout is scenario time (cmd/run.rs sees to it).
    let limit = settings.timeout;
    let mut progress =
        crate::progress::Progress::new(settings.progress, settings.instances, &run_id);
    let report = sim::run(
        shared,
        &run_dir,
        &SimSettings {
            host: SIM_HOST.into(),
            node: 1,
            link,
            start_delay: settings.start_delay,
            limit,
            stop: interrupt.flag(),
            threads: threads.threads as usize,
        },
        &mut |p| progress.update_simulated(&p),
    )
    .map_err(|source| RunError::Simulation {
        dir: run_dir.clone(),
        source,
    })?;
    progress.finish(crate::runner::status::Counts {
        registered: settings.instances,
        ready: settings.instances,
        ended: report.outcomes.iter().filter(|(_, o)| o.is_some()).count() as u32,
        failed: report
            .outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Some(Outcome::Failed(_))))
            .count() as u32,
    });
    if let Some(r) = resources.as_mut() {
        r.record(wall.elapsed().as_secs_f64());
    }
    tracing::info!(
        delivered = report.delivered,
        lost = report.lost,
        virtual_s = report.virtual_time.as_secs_f64(),
        wall_s = wall.elapsed().as_secs_f64(),
        "simulation done"
    );
    if let Some(t) = &report.threading {
        let each: Vec<String> = t
            .threads
            .iter()
            .map(|(events, cpu)| format!("{events} events in {cpu:.1} s CPU"))
            .collect();
        tracing::info!(
            "simulated on {} threads in {} windows: {}",
            t.threads.len(),
            t.windows,
            each.join(", ")
        );
        if t.late > 0 {
            tracing::warn!(
                "{} times a datagram between threads was due inside the window it was sent in: this run may not repeat byte for byte on another number of threads (a peerlab bug: please report it, and use --threads 1 meanwhile)",
                t.late
            );
        }
    }
    let interrupted = report.interrupted.then(|| {
        interrupt
            .received()
            .unwrap_or(StopSignal::Interrupt)
            .describe()
    });
    if let Some(name) = interrupted {
        tracing::warn!("{name}: the simulation was stopped (outputs are kept)");
    }
    let timed_out = interrupted.is_none() && report.outcomes.iter().any(|(_, o)| o.is_none());
    let instance_status: Vec<InstanceStatus> = report
        .outcomes
        .iter()
        .map(|(id, outcome)| {
            let paths = folder::InstancePaths::new(SIM_HOST, 1, *id);
            let (status, error) = match outcome {
                Some(outcome) => outcome.status(),
                None => match interrupted {
                    Some(name) => (EndStatus::Interrupted, Some(format!("stopped by {name}"))),
                    None => (
                        EndStatus::TimedOut,
                        Some(format!(
                            "still running when the run timed out after {:.1} s of scenario time",
                            limit.as_secs_f64()
                        )),
                    ),
                },
            };
            InstanceStatus {
                id: *id,
                host: SIM_HOST.into(),
                node: 1,
                status,
                exit_code: None,
                error,
                out: paths.out,
                err: paths.err,
            }
        })
        .collect();
    let summary = folder::runner_summary(
        settings,
        run_id,
        "simulated",
        1,
        started_at,
        SystemTime::now(),
        instance_status,
        folder::RunEnd {
            timed_out,
            interrupted: interrupted.is_some(),
        },
    );
    // Written again with the verdicts: a failure here (a full disk) is
    // said, and the run goes on to that second attempt.
    if let Err(e) = folder::write_summary(&run_dir, folder::SummaryContent::Runner(&summary)) {
        tracing::warn!(
            "cannot write {}: {e}",
            run_dir.join("summary.json").display()
        );
    }
    Ok(RunOutcome { run_dir, summary })
}
