//! What every runner shares: preparing the run folder and the sync server,
//! and supervising a run to its end whatever starts the processes.
//!
//! A [`Launcher`] starts instance processes somewhere (here, on SLURM
//! nodes) and reports their exits as [`LaunchEvent`]s; [`supervise`] turns
//! those and the sync server's reports into one final status per instance,
//! enforcing the registration timeout, the run timeout and stop signals
//! (SIGINT, SIGTERM, SIGHUP: [`super::interrupt`]). It returns the summary,
//! already written to `summary.json`.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::mpsc;

use super::RunSettings;
use super::folder::{self, Placement, RunRecord};
use super::interrupt::Interrupt;
use super::status::{End, EndStatus, Phase, Tracker};
use crate::progress::Progress;
use peerlab_run::layout;
use peerlab_sync::server::{Admission, ServerConfig, ServerEvent, SyncServer};

/// Environment variable carrying the run token to instance processes (not
/// on the command line, where `ps` would show it).
pub const TOKEN_ENV: &str = "PEERLAB_RUN_TOKEN";

/// How long a process's reports may trail its exit when its connection's
/// close is not seen (normally the close settles it at once).
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// How long after the forced stop peerlab still waits to hear that the
/// processes are gone.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How long stopped processes get between the polite and the forced stop.
const GRACE: Duration = Duration::from_secs(3);

/// What a launcher reports.
#[derive(Debug, Clone)]
pub enum LaunchEvent {
    /// A process (or a whole job) running these instances is gone.
    Exited {
        ids: Vec<u32>,
        exit_code: Option<i32>,
        /// How it ended, in words ("exit code 3", "killed by signal 9").
        how: String,
        /// Whether it ended with success.
        clean: bool,
        /// A file holding its stderr, whose tail is copied to each instance's `.err`.
        stderr: Option<PathBuf>,
    },
    /// Where the launch stands, for the progress line (e.g. "job 12 pending: Resources").
    State(String),
    /// The processes wait for resources (a queued job): the registration
    /// clock stops until [`LaunchEvent::Running`].
    Waiting,
    /// The processes are starting now: the registration clock starts again.
    Running,
    /// The launch cannot go on (e.g. the scheduler cannot place the job):
    /// every instance not ended yet ends with this reason.
    Failed(String),
}

/// Starts and stops the processes of a run.
pub trait Launcher {
    /// Ask every process to stop; `force` after the grace period.
    fn stop(&mut self, force: bool);
    /// Whether some process may still be running.
    fn running(&self) -> bool;
}

/// A run folder and sync server ready for processes to be launched.
pub struct Prepared {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub server: SyncServer,
    pub token: String,
    pub started_at: SystemTime,
}

/// Create the run folder, write `run.json` and the inputs, start the sync
/// server on `bind`.
pub async fn prepare(
    settings: &RunSettings,
    runner: &str,
    nodes: u32,
    placement: Vec<Placement>,
    bind: SocketAddr,
) -> anyhow::Result<Prepared> {
    let (run_id, run_dir, record) = prepare_folder(settings, runner, nodes, placement)?;
    let token = new_token(settings.seed);
    let mut admission =
        Admission::for_run(settings.instances, settings.instances_per_process, nodes);
    // A process sends its hello right after connecting, but a machine
    // starting thousands of them may not run it for a while: allow it what
    // the run allows for registering at all.
    admission.hello_timeout = admission.hello_timeout.max(settings.registration_timeout);
    let server = SyncServer::bind(
        bind,
        ServerConfig {
            token: token.clone(),
            instances: settings.instances,
            start_delay: settings.start_delay,
            admission,
        },
    )
    .await
    .with_context(|| format!("cannot start the sync server on {bind}"))?;
    tracing::info!(sync = %server.local_addr(), run = %record.run_id, "sync server listening");
    Ok(Prepared {
        run_id,
        run_dir,
        server,
        token,
        started_at: SystemTime::now(),
    })
}

/// Create the run folder and write `run.json` and the inputs (no server:
/// the simulated runner needs none).
pub fn prepare_folder(
    settings: &RunSettings,
    runner: &str,
    nodes: u32,
    placement: Vec<Placement>,
) -> anyhow::Result<(String, PathBuf, RunRecord)> {
    let (run_id, run_dir) = folder::create_run_folder(&settings.output_root, &settings.experiment)
        .with_context(|| {
            format!(
                "cannot create a run folder under {}",
                settings.output_root.display()
            )
        })?;
    let record = RunRecord {
        run_id: run_id.clone(),
        experiment: settings.experiment.clone(),
        seed: settings.seed,
        instances: settings.instances,
        nodes,
        instances_per_process: settings.instances_per_process,
        runner: runner.into(),
        time_scale: settings.time_scale,
        peerlab_version: env!("CARGO_PKG_VERSION").into(),
        peerlab_commit: crate::provenance::commit().map(String::from),
        created_at: folder::timestamp(SystemTime::now()),
        modules: settings.modules.clone(),
        config_path: settings.config_path.clone(),
        scenario_path: settings.scenario_path.clone(),
        plugin_path: settings.plugin_path.clone(),
        config: settings.config.clone(),
        placement,
        sources: source_records(settings),
        metrics: settings.metrics.clone(),
        plugins: settings.plugins.clone(),
    };
    write_inputs(&run_dir, settings, &record)?;
    Ok((run_id, run_dir, record))
}

/// Name and hash the run's source files (their copies are written by
/// [`write_inputs`]).
fn source_records(settings: &RunSettings) -> Vec<folder::SourceRecord> {
    settings
        .sources
        .iter()
        .enumerate()
        .map(|(i, (path, text))| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "source".into());
            let sha256 = folder::source_hash(text);
            folder::SourceRecord {
                path: path.clone(),
                copy: layout::source_copy(i, &name),
                name: settings.source_names.get(&sha256).cloned().unwrap_or(name),
                sha256,
            }
        })
        .collect()
}

/// Copy what the run was made from into the run folder.
fn write_inputs(run_dir: &Path, settings: &RunSettings, record: &RunRecord) -> anyhow::Result<()> {
    peerlab_run::write::write_run_record(run_dir, record)?;
    if !record.sources.is_empty() {
        fs::create_dir_all(run_dir.join(layout::SOURCES_DIR))?;
    }
    for (source, (_, text)) in record.sources.iter().zip(&settings.sources) {
        fs::write(run_dir.join(&source.copy), text.as_bytes()).with_context(|| {
            format!("cannot copy {} into the run folder", source.path.display())
        })?;
    }
    // It names the scenario's copy beside it, so the run folder alone can
    // run again (`peerlab rerun`).
    let mut conf = String::from("# the resolved experiment config of this run\n");
    for (k, v) in &settings.config {
        if k != "scenario_file" {
            conf.push_str(&format!("{k} = {v}\n"));
        }
    }
    conf.push_str(&format!(
        "scenario_file = {}\n",
        layout::EXPERIMENT_SCENARIO
    ));
    fs::write(run_dir.join(layout::EXPERIMENT_CONF), conf)?;
    // Read and write (not fs::copy, which would keep the original's mode):
    // files in the run folder are owner-only.
    fs::read(&settings.scenario_path)
        .and_then(|bytes| fs::write(run_dir.join(layout::EXPERIMENT_SCENARIO), bytes))
        .with_context(|| {
            format!(
                "cannot copy {} into the run folder",
                settings.scenario_path.display()
            )
        })?;
    Ok(())
}

/// Supervise a launched run until every instance has a final status and
/// no process runs; write and return the summary. A stop signal (already
/// received, or arriving later) stops every process and ends the run as
/// interrupted; a second one skips the grace period.
#[allow(clippy::too_many_arguments)]
pub async fn supervise(
    settings: &RunSettings,
    runner: &str,
    nodes: u32,
    prepared: Prepared,
    placement: &[Placement],
    launcher: &mut dyn Launcher,
    mut launch_events: mpsc::UnboundedReceiver<LaunchEvent>,
    interrupt: &Interrupt,
) -> anyhow::Result<folder::Summary> {
    let mut interrupt = interrupt.clone();
    let Prepared {
        run_id,
        run_dir,
        mut server,
        started_at,
        ..
    } = prepared;
    let mut progress = Progress::new(settings.progress, settings.instances, &run_id);
    let mut tracker = Tracker::new(settings.instances);
    // Where instances really run: planned, then as their processes report
    // (a SLURM node's name is only known once the job runs).
    let mut placement: Vec<Placement> = placement.to_vec();
    // `None` while the launcher waits for resources (a queued job).
    let mut registration_deadline = Some(Instant::now() + settings.registration_timeout);
    let mut run_deadline: Option<Instant> = None;
    let mut start_unix_ms: Option<u64> = None;
    let mut timed_out = false;
    // Set with the stop signal's words ("stopped by SIGTERM").
    let mut interrupted: Option<String> = None;
    let mut stopping_since: Option<Instant> = None;
    let mut forced = false;
    let mut launcher_done = false;
    let mut pending_exits: Vec<(Instant, LaunchEvent)> = Vec::new();
    // Instances whose process's connection to the sync server has closed.
    let mut closed: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));

    loop {
        if tracker.all_ended() && (!launcher.running() || launcher_done) {
            break;
        }
        tokio::select! {
            Some(event) = server.next_event() => match event {
                ServerEvent::Registered { ids, host, node, .. } => {
                    for &id in &ids {
                        tracker.registered(id);
                        match placement.iter_mut().find(|p| p.id == id) {
                            Some(p) => {
                                p.host = host.clone();
                                p.node = node;
                            }
                            None => placement.push(Placement { id, host: host.clone(), node, process: 0 }),
                        }
                    }
                }
                ServerEvent::Ready { id } => tracker.ready(id),
                ServerEvent::Started { start_unix_ms: start, peers } => {
                    super::peers::record(&run_dir, start, &peers, &settings.external_ids());
                    start_unix_ms = Some(start);
                    let until_start = Duration::from_millis(start.saturating_sub(unix_ms_now()));
                    run_deadline = Some(Instant::now() + until_start + settings.timeout);
                }
                ServerEvent::Done { id, status, exit_code, error } => {
                    // A status this version does not know counts as failed.
                    let status = match status {
                        EndStatus::Unknown => EndStatus::Failed,
                        known => known,
                    };
                    tracker.end(id, status, exit_code, error);
                }
                ServerEvent::Refused { peer, reason } => {
                    tracing::warn!(%peer, %reason, "sync server refused a connection");
                }
                ServerEvent::RefusalsNotReported { count, window } => {
                    tracing::warn!(
                        "sync server refused {count} more connections in the last {:.0} s (not reported one by one)",
                        window.as_secs_f64()
                    );
                }
                ServerEvent::Disconnected { all, .. } => closed.extend(all),
                ServerEvent::Progress { commands } => progress.set_commands(commands),
            },
            event = launch_events.recv(), if !launcher_done => match event {
                None => launcher_done = true,
                Some(LaunchEvent::State(state)) => progress.set_state(state),
                Some(LaunchEvent::Waiting) => registration_deadline = None,
                Some(LaunchEvent::Running) => {
                    registration_deadline = Some(Instant::now() + settings.registration_timeout);
                }
                Some(LaunchEvent::Failed(reason)) => {
                    tracing::error!("{reason}");
                    tracker.end_all_open(EndStatus::NeverStarted, EndStatus::Crashed, &reason);
                    if stopping_since.is_none() {
                        server.abort_all(reason);
                        launcher.stop(false);
                        stopping_since = Some(Instant::now());
                    }
                }
                Some(exit @ LaunchEvent::Exited { .. }) => {
                    // The process's last reports may still be on their way
                    // through the sync server: judge the exit once its
                    // connection has closed (every line read), or after
                    // REPORT_GRACE if it never connected or the close is lost.
                    pending_exits.push((Instant::now() + REPORT_GRACE, exit));
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let settled = |ids: &[u32]| {
                    ids.iter().all(|id| {
                        closed.contains(id) || matches!(tracker.phase(*id), Some(Phase::Ended(_)) | None)
                    })
                };
                let (due, later): (Vec<_>, Vec<_>) = pending_exits.drain(..).partition(|(at, exit)| {
                    let LaunchEvent::Exited { ids, .. } = exit else { return true };
                    *at <= now || settled(ids)
                });
                pending_exits = later;
                for (_, exit) in due {
                    let LaunchEvent::Exited { ids, exit_code, how, clean, stderr } = exit else {
                        continue;
                    };
                    for id in ids {
                        if matches!(tracker.phase(id), Some(Phase::Ended(_)) | None) {
                            continue;
                        }
                        let (status, why) = if let Some(why) = &interrupted {
                            (EndStatus::Interrupted, why.clone())
                        } else if timed_out {
                            (EndStatus::TimedOut, "stopped by the run timeout".to_string())
                        } else if clean {
                            (EndStatus::Crashed, "its process exited without reporting an end".to_string())
                        } else {
                            (EndStatus::Crashed, format!("its process ended: {how}"))
                        };
                        note_abnormal_end(&run_dir, &placement, id, &why, stderr.as_deref());
                        tracker.end(id, status, exit_code, Some(why));
                    }
                }
                if stopping_since.is_none() {
                    let ended_early = if start_unix_ms.is_none() {
                        tracker.ids_ended()
                    } else {
                        Vec::new()
                    };
                    let why = if !ended_early.is_empty() {
                        // The barrier needs everyone: it can never open now.
                        Some(format!(
                            "instances {} ended before the start, so the run cannot begin",
                            crate::util::ranges(&ended_early)
                        ))
                    } else if registration_deadline.is_some_and(|d| now >= d)
                        && start_unix_ms.is_none()
                    {
                        let missing = tracker.ids_not_registered();
                        let secs = settings.registration_timeout.as_secs_f64();
                        Some(if missing.is_empty() {
                            format!(
                                "instances {} registered but did not finish their setup (@! and @@ lines) within {secs:.1} s",
                                crate::util::ranges(&tracker.ids_not_ready())
                            )
                        } else {
                            format!(
                                "instances {} never registered within {secs:.1} s",
                                crate::util::ranges(&missing)
                            )
                        })
                    } else if run_deadline.is_some_and(|d| now >= d) {
                        Some(format!(
                            "the run timed out after {:.1} s with instances {} still running",
                            settings.timeout.as_secs_f64(),
                            crate::util::ranges(&tracker.ids_running())
                        ))
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        tracing::error!("{why}");
                        timed_out = true;
                        tracker.end_all_open(EndStatus::NeverStarted, EndStatus::TimedOut, &why);
                        server.abort_all(why);
                        launcher.stop(false);
                        stopping_since = Some(now);
                    }
                } else if !forced && stopping_since.is_some_and(|s| now.duration_since(s) >= GRACE) {
                    forced = true;
                    launcher.stop(true);
                } else if forced
                    && !launcher_done
                    && stopping_since.is_some_and(|s| now.duration_since(s) >= GRACE + GIVE_UP)
                {
                    // The launcher cannot tell whether its processes are gone
                    // (e.g. the scheduler stopped answering): stop waiting.
                    eprintln!(
                        "peerlab: warning: the run's processes were stopped {} s ago but their end is not confirmed; giving up waiting (check for leftovers)",
                        (GRACE + GIVE_UP).as_secs()
                    );
                    launcher_done = true;
                }
                let clock = start_unix_ms.map(|s| (unix_ms_now() as f64 - s as f64) / 1000.0);
                progress.update(tracker.counts(), clock);
            }
            (signal, count) = interrupt.next() => {
                let name = signal.describe();
                if interrupted.is_none() {
                    let why = format!("stopped by {name}");
                    tracing::warn!("{name}: stopping every instance (outputs are kept)");
                    tracker.end_all_open(EndStatus::Interrupted, EndStatus::Interrupted, &why);
                    server.abort_all(format!("interrupted by {name}"));
                    interrupted = Some(why);
                    launcher.stop(false);
                    stopping_since = Some(Instant::now());
                } else if !forced && count > 1 {
                    tracing::warn!("asked to stop again: stopping the processes now, without grace");
                    forced = true;
                    launcher.stop(true);
                }
            }
        }
    }
    progress.finish(tracker.counts());
    let ended_at = SystemTime::now();
    let refused = server.admission_stats();
    if refused.refused > 0 {
        tracing::warn!(
            "the sync server refused {} connections during the run ({} oversize hellos, {} without a hello in time, {} closed as too many waited)",
            refused.refused,
            refused.oversize,
            refused.hello_timeouts,
            refused.evicted
        );
    }

    let mut in_flight_files = HashMap::new();
    let instance_status = tracker
        .ends()
        .map(|(id, end)| {
            let place = placement.iter().find(|p| p.id == id);
            let (host, node) = place
                .map(|p| (p.host.clone(), p.node))
                .unwrap_or_else(|| ("localhost".into(), 1));
            let paths = folder::InstancePaths::new(&host, node, id);
            let mut end = end.cloned().unwrap_or(End {
                status: EndStatus::Crashed,
                exit_code: None,
                error: Some("no end was recorded".into()),
            });
            // An instance whose process did not report its end may have
            // been stuck in a callback: name it.
            if end.status != EndStatus::Finished
                && let Some(callback) = in_flight(&run_dir, &placement, id, &mut in_flight_files)
            {
                let note = match end.status {
                    EndStatus::TimedOut => format!("hung in {callback}"),
                    EndStatus::Crashed => format!("crashed in {callback}"),
                    _ => format!("was in {callback} when it ended"),
                };
                append_err(
                    &run_dir,
                    &paths.err,
                    &format!("peerlab: instance {id} {note}"),
                );
                end.error = Some(match end.error {
                    Some(e) => format!("{e}; {note}"),
                    None => note,
                });
            }
            folder::InstanceStatus {
                id,
                host,
                node,
                status: end.status,
                exit_code: end.exit_code,
                error: end.error,
                out: paths.out,
                err: paths.err,
            }
        })
        .collect::<Vec<_>>();
    let summary = folder::runner_summary(
        settings,
        run_id,
        runner,
        nodes,
        started_at,
        ended_at,
        instance_status,
        folder::RunEnd {
            timed_out,
            interrupted: interrupted.is_some(),
        },
    );
    // The caller writes it again with the verdicts: a failure here (a full
    // disk) is said, and the run goes on to that second attempt.
    if let Err(e) = folder::write_summary(&run_dir, folder::SummaryContent::Runner(&summary)) {
        tracing::warn!(
            "cannot write {}: {e}",
            run_dir.join("summary.json").display()
        );
    }
    Ok(summary)
}

/// Append why an instance ended abnormally, and the tail of its process's
/// stderr, to the instance's `.err` file.
fn note_abnormal_end(
    run_dir: &Path,
    placement: &[Placement],
    id: u32,
    why: &str,
    stderr: Option<&Path>,
) {
    let (host, node) = placement
        .iter()
        .find(|p| p.id == id)
        .map(|p| (p.host.as_str(), p.node))
        .unwrap_or(("localhost", 1));
    let paths = folder::InstancePaths::new(host, node, id);
    let path = run_dir.join(&paths.err);
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    let _ = writeln!(f, "peerlab: instance {id} ended abnormally: {why}");
    // Bounded: a process may have written gigabytes.
    let Some(tail) = stderr.and_then(|p| super::tail::of_file(p, 20).ok()) else {
        return;
    };
    if !tail.cause.is_empty() {
        let _ = writeln!(f, "peerlab: the first error in its process's stderr:");
        for line in &tail.cause {
            let _ = writeln!(f, "  {line}");
        }
    }
    if !tail.lines.is_empty() {
        let _ = writeln!(
            f,
            "peerlab: last lines of its process's stderr{}:",
            stderr
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        );
        for line in &tail.lines {
            let _ = writeln!(f, "  {line}");
        }
    }
}

/// Append one line to instance `id`'s `.err` (best effort: a full disk
/// loses it, the summary still says it).
fn append_err(run_dir: &Path, err: &Path, line: &str) {
    let path = run_dir.join(err);
    if let Ok(mut f) = fs::OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// The module callback instance `id` was running when its process last
/// wrote its in-flight file, if any (each file is read once into `files`).
fn in_flight(
    run_dir: &Path,
    placement: &[Placement],
    id: u32,
    files: &mut HashMap<PathBuf, HashMap<u32, String>>,
) -> Option<String> {
    let p = placement.iter().find(|p| p.id == id)?;
    let path = run_dir.join(folder::process_inflight(&p.host, p.node, p.process));
    files
        .entry(path)
        .or_insert_with_key(|path| crate::runtime::inflight::read_all(path))
        .remove(&id)
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token no other run can guess.
fn new_token(seed: u64) -> String {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let salt = seed ^ u64::from(std::process::id());
    bytes[..8]
        .iter_mut()
        .zip(salt.to_le_bytes())
        .for_each(|(b, s)| *b ^= s);
    peerlab_dispersy::crypto::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::interrupt::StopSignal;
    use peerlab_sync::client::{Hello, SyncClient};
    use peerlab_sync::protocol::ClientMsg;

    /// A launcher whose processes never show up (or have all gone).
    struct Nothing;

    impl Launcher for Nothing {
        fn stop(&mut self, _force: bool) {}
        fn running(&self) -> bool {
            false
        }
    }

    fn settings(dir: &Path, instances: u32) -> RunSettings {
        let scenario = dir.join("s.scenario");
        fs::write(&scenario, "@1 stop\n").unwrap();
        RunSettings {
            experiment: "unit".into(),
            config_path: None,
            scenario_path: scenario,
            config: Default::default(),
            instances,
            instances_per_process: 1,
            seed: 1,
            time_scale: 1.0,
            timeout: Duration::from_secs(30),
            registration_timeout: Duration::from_millis(300),
            start_delay: Duration::from_millis(1),
            output_root: dir.join("output"),
            plugin_path: Vec::new(),
            modules: Vec::new(),
            metrics: Vec::new(),
            sync_port: 0,
            progress: false,
            plugins: Vec::new(),
            sources: Vec::new(),
            source_names: Default::default(),
        }
    }

    async fn connect(prepared: &Prepared, id: u32) -> SyncClient {
        SyncClient::connect(
            prepared.server.local_addr(),
            Hello {
                token: prepared.token.clone(),
                host: "localhost".into(),
                node: 1,
                ids: vec![id],
                count: 1,
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap()
    }

    fn status(summary: &folder::Summary, id: u32) -> folder::InstanceStatus {
        summary
            .instance_status
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .clone()
    }

    #[test]
    fn an_abnormal_end_copies_a_bounded_tail_and_the_panic_message() {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("process001.stderr");
        // 200 MB of one line (sparse: no disk), then a panic and its backtrace.
        let f = fs::File::create(&stderr).unwrap();
        f.set_len(200 << 20).unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&stderr).unwrap();
        writeln!(f).unwrap();
        writeln!(f, "thread 'main' panicked at plugins/x/src/lib.rs:9:9:").unwrap();
        writeln!(f, "the share list was empty").unwrap();
        writeln!(f, "stack backtrace:").unwrap();
        for i in 0..60 {
            writeln!(f, "  {i}: some::frame").unwrap();
        }
        drop(f);
        note_abnormal_end(
            dir.path(),
            &[],
            2,
            "its process ended: killed by signal 6",
            Some(&stderr),
        );
        let err_path = dir.path().join("localhost/node001/00002.err");
        let len = fs::metadata(&err_path).unwrap().len();
        assert!(len < 16 << 10, ".err grew by {len} bytes");
        let err = fs::read_to_string(&err_path).unwrap();
        assert!(err.contains("killed by signal 6"), "{err}");
        assert!(err.contains("  the share list was empty\n"), "{err}");
        assert!(err.contains("  59: some::frame"), "{err}");
    }

    #[tokio::test]
    async fn the_registration_timeout_names_the_instances_that_never_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path(), 3);
        // Long enough that a loaded machine registers instance 2 in time
        // (0.3 s was not); the run must not end before it.
        settings.registration_timeout = Duration::from_secs(2);
        let began = Instant::now();
        let prepared = prepare(
            &settings,
            "local",
            1,
            Vec::new(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        // Instance 2 registers and waits at the barrier; 1 and 3 never come.
        let client = connect(&prepared, 2).await;
        client.send(&ClientMsg::Ready {
            id: 2,
            addr: "127.0.0.1:9".into(),
            public_key: "00".into(),
        });
        let (_tx, events) = mpsc::unbounded_channel();
        let summary = supervise(
            &settings,
            "local",
            1,
            prepared,
            &[],
            &mut Nothing,
            events,
            &Interrupt::never(),
        )
        .await
        .unwrap();
        assert_eq!(summary.outcome.map(|o| o.as_str()), Some("timed_out"));
        let took = began.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(60),
            "the registration timeout of 2 s ended the run after {took:?}"
        );
        let why = "instances 1,3 never registered within 2.0 s";
        assert_eq!(status(&summary, 2).status.as_str(), "timed_out");
        assert_eq!(status(&summary, 2).error.as_deref(), Some(why));
        for id in [1, 3] {
            let s = status(&summary, id);
            assert_eq!(s.status.as_str(), "never_started");
            assert_eq!(s.error.as_deref(), Some(why), "{s:?}");
        }
    }

    /// A launcher whose processes run until forced, and which is asked
    /// again to stop (a second signal) as soon as it is asked the first time.
    struct Stubborn {
        interrupt: Interrupt,
        stops: Vec<(bool, Instant)>,
    }

    impl Launcher for Stubborn {
        fn stop(&mut self, force: bool) {
            self.stops.push((force, Instant::now()));
            if !force {
                self.interrupt.raise(StopSignal::Hangup);
            }
        }
        fn running(&self) -> bool {
            !self.stops.iter().any(|(force, _)| *force)
        }
    }

    #[tokio::test]
    async fn a_stop_signal_interrupts_the_run_and_a_second_one_skips_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path(), 2);
        settings.registration_timeout = Duration::from_secs(600);
        let prepared = prepare(
            &settings,
            "local",
            1,
            Vec::new(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let _client = connect(&prepared, 1).await;
        let interrupt = Interrupt::never();
        // Received before supervision starts (e.g. while the job was submitted).
        interrupt.raise(StopSignal::Terminate);
        let mut launcher = Stubborn {
            interrupt: interrupt.clone(),
            stops: Vec::new(),
        };
        let (_tx, events) = mpsc::unbounded_channel();
        let summary = tokio::time::timeout(
            Duration::from_secs(30),
            supervise(
                &settings,
                "local",
                1,
                prepared,
                &[],
                &mut launcher,
                events,
                &interrupt,
            ),
        )
        .await
        .expect("the run ends")
        .unwrap();
        assert_eq!(summary.outcome.map(|o| o.as_str()), Some("interrupted"));
        for id in [1, 2] {
            let s = status(&summary, id);
            assert_eq!(s.status.as_str(), "interrupted");
            assert_eq!(s.error.as_deref(), Some("stopped by SIGTERM"), "{s:?}");
        }
        let forces: Vec<bool> = launcher.stops.iter().map(|s| s.0).collect();
        assert_eq!(forces, [false, true], "a polite stop, then a forced one");
        let waited = launcher.stops[1].1 - launcher.stops[0].1;
        assert!(
            waited < GRACE,
            "the second signal did not wait for the grace: {waited:?}"
        );
    }

    #[tokio::test]
    async fn an_instance_that_ends_before_the_start_stops_the_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path(), 2);
        settings.registration_timeout = Duration::from_secs(600);
        let prepared = prepare(
            &settings,
            "local",
            1,
            Vec::new(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let client = connect(&prepared, 1).await;
        client.send(&ClientMsg::Done {
            id: 1,
            status: peerlab_run::EndStatus::Failed,
            exit_code: None,
            error: Some("@@ line failed".into()),
        });
        let (_tx, events) = mpsc::unbounded_channel();
        let summary = tokio::time::timeout(
            Duration::from_secs(30),
            supervise(
                &settings,
                "local",
                1,
                prepared,
                &[],
                &mut Nothing,
                events,
                &Interrupt::never(),
            ),
        )
        .await
        .expect("the run ends long before the 600 s registration timeout")
        .unwrap();
        assert_eq!(status(&summary, 1).status.as_str(), "failed");
        let two = status(&summary, 2);
        assert_eq!(two.status.as_str(), "never_started");
        assert_eq!(
            two.error.as_deref(),
            Some("instances 1 ended before the start, so the run cannot begin")
        );
    }
}
