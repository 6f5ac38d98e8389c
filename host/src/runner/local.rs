//! The local runner: instance processes on this machine (Gumby's local mode
//! and process guard, built in).
//!
//! It creates the run folder, starts the sync server on loopback, starts
//! one `peerlab instance` process per `instances_per_process` instances
//! (each in its own process group, so a stop reaches everything it
//! started), and supervises: registration timeout, run timeout, crashes,
//! Ctrl-C. It returns when every instance has a final status and every
//! process has exited.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::mpsc;

use super::folder::{self, Placement, RunRecord};
use super::status::{EndStatus, Tracker, describe_exit};
use super::{RunOutcome, RunSettings};
use crate::progress::Progress;
use crate::sync::server::{ServerConfig, ServerEvent, SyncServer};

/// The host name local runs use in the output layout.
pub const LOCAL_HOST: &str = "localhost";

/// Environment variable carrying the run token to instance processes (not
/// on the command line, where `ps` would show it).
pub const TOKEN_ENV: &str = "PEERLAB_RUN_TOKEN";

/// How long a stopped process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Split `instances` over processes of `per_process` each, in id order.
pub fn plan_processes(instances: u32, per_process: u32) -> Vec<Vec<u32>> {
    let per = per_process.max(1);
    (1..=instances)
        .collect::<Vec<_>>()
        .chunks(per as usize)
        .map(|c| c.to_vec())
        .collect()
}

struct Child {
    pid: u32,
    ids: Vec<u32>,
    stderr_path: PathBuf,
    exited: bool,
}

struct Exit {
    process: usize,
    status: std::io::Result<std::process::ExitStatus>,
}

/// Run the experiment locally and return its outcome (the summary is also
/// written to the run folder).
pub async fn run(settings: &RunSettings) -> anyhow::Result<RunOutcome> {
    let (run_id, run_dir) = folder::create_run_folder(&settings.output_root, &settings.experiment)
        .with_context(|| {
            format!(
                "cannot create a run folder under {}",
                settings.output_root.display()
            )
        })?;
    let groups = plan_processes(settings.instances, settings.instances_per_process);
    let placement: Vec<Placement> = groups
        .iter()
        .enumerate()
        .flat_map(|(p, ids)| {
            ids.iter().map(move |&id| Placement {
                id,
                host: LOCAL_HOST.into(),
                node: 1,
                process: p as u32 + 1,
            })
        })
        .collect();
    let record = RunRecord {
        run_id: run_id.clone(),
        experiment: settings.experiment.clone(),
        seed: settings.seed,
        instances: settings.instances,
        nodes: 1,
        instances_per_process: settings.instances_per_process,
        runner: "local".into(),
        time_scale: settings.time_scale,
        peerlab_version: env!("CARGO_PKG_VERSION").into(),
        created_at: folder::timestamp(SystemTime::now()),
        modules: settings.modules.clone(),
        config_path: settings.config_path.clone(),
        scenario_path: settings.scenario_path.clone(),
        plugin_path: settings.plugin_path.clone(),
        config: settings.config.clone(),
        placement,
    };
    write_inputs(&run_dir, settings, &record)?;
    fs::create_dir_all(run_dir.join(folder::instance_dir(LOCAL_HOST, 1)))?;

    let token = new_token(settings.seed);
    let bind: SocketAddr = ([127, 0, 0, 1], settings.sync_port).into();
    let mut server = SyncServer::bind(
        bind,
        ServerConfig {
            token: token.clone(),
            instances: settings.instances,
            start_delay: settings.start_delay,
        },
    )
    .await
    .with_context(|| format!("cannot start the sync server on {bind}"))?;
    let sync_addr = server.local_addr();
    tracing::info!(%sync_addr, run = %run_id, "sync server listening");

    let started_at = SystemTime::now();
    let mut progress = Progress::new(settings.progress, settings.instances, &run_id);
    let (exit_tx, mut exits) = mpsc::unbounded_channel::<Exit>();
    let mut children = Vec::new();
    let exe = std::env::current_exe().context("cannot find the peerlab executable")?;
    for (p, ids) in groups.iter().enumerate() {
        let process = p as u32 + 1;
        let stderr_rel = folder::process_stderr(LOCAL_HOST, 1, process);
        let stderr_path = run_dir.join(&stderr_rel);
        let stderr = fs::File::create(&stderr_path)
            .with_context(|| format!("cannot create {}", stderr_path.display()))?;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("instance")
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--sync")
            .arg(sync_addr.to_string())
            .arg("--host")
            .arg(LOCAL_HOST)
            .arg("--node")
            .arg("1")
            .arg("--process")
            .arg(process.to_string())
            .arg("--ids")
            .arg(format!("{}-{}", ids[0], ids[ids.len() - 1]))
            .env(TOKEN_ENV, &token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start instance process {process}"))?;
        let pid = child.id().unwrap_or(0);
        children.push(Child {
            pid,
            ids: ids.clone(),
            stderr_path,
            exited: false,
        });
        let tx = exit_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(Exit { process: p, status });
        });
    }
    drop(exit_tx);

    let mut tracker = Tracker::new(settings.instances);
    let registration_deadline = Instant::now() + settings.registration_timeout;
    let mut run_deadline: Option<Instant> = None;
    let mut start_unix_ms: Option<u64> = None;
    let mut timed_out = false;
    let mut interrupted = false;
    let mut stopping_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        if tracker.all_ended() && children.iter().all(|c| c.exited) {
            break;
        }
        tokio::select! {
            Some(event) = server.next_event() => match event {
                ServerEvent::Registered { ids, .. } => ids.iter().for_each(|&id| tracker.registered(id)),
                ServerEvent::Ready { id } => tracker.ready(id),
                ServerEvent::Started { start_unix_ms: start } => {
                    start_unix_ms = Some(start);
                    let until_start = Duration::from_millis(start.saturating_sub(unix_ms_now()));
                    run_deadline = Some(Instant::now() + until_start + settings.timeout);
                }
                ServerEvent::Done { id, status, exit_code, error } => {
                    let status = EndStatus::parse(&status).unwrap_or(EndStatus::Failed);
                    tracker.end(id, status, exit_code, error);
                }
                ServerEvent::Refused { peer, reason } => {
                    tracing::warn!(%peer, %reason, "sync server refused a connection");
                }
                ServerEvent::Disconnected { .. } => {}
            },
            Some(exit) = exits.recv() => {
                let child = &mut children[exit.process];
                child.exited = true;
                let (code, how) = match &exit.status {
                    Ok(status) => describe_exit(status),
                    Err(err) => (None, format!("could not be waited for: {err}")),
                };
                let clean = matches!(&exit.status, Ok(s) if s.success());
                for &id in &child.ids {
                    if matches!(tracker.phase(id), Some(super::status::Phase::Ended(_))) {
                        continue;
                    }
                    let (status, why) = if interrupted {
                        (EndStatus::Interrupted, "stopped by Ctrl-C".to_string())
                    } else if timed_out {
                        (EndStatus::TimedOut, "stopped by the run timeout".to_string())
                    } else if clean {
                        (EndStatus::Crashed, "its process exited without reporting an end".to_string())
                    } else {
                        (EndStatus::Crashed, format!("its process {} ({how})", child.pid))
                    };
                    note_crash(&run_dir, id, &why, &child.stderr_path);
                    tracker.end(id, status, code, Some(why));
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if stopping_since.is_none() {
                    let registration_over = now >= registration_deadline && start_unix_ms.is_none();
                    let run_over = run_deadline.is_some_and(|d| now >= d);
                    if registration_over {
                        let missing = tracker.ids_not_registered();
                        let why = format!(
                            "instances {} never registered within {:.0} s",
                            crate::util::ranges(&missing),
                            settings.registration_timeout.as_secs_f64()
                        );
                        tracing::error!("{why}");
                        timed_out = true;
                        tracker.end_all_open(EndStatus::NeverStarted, EndStatus::TimedOut, &why);
                        stopping_since = Some(now);
                        server.abort_all(why);
                    } else if run_over {
                        let running = tracker.ids_running();
                        let why = format!(
                            "the run timed out after {:.1} s with instances {} still running",
                            settings.timeout.as_secs_f64(),
                            crate::util::ranges(&running)
                        );
                        tracing::error!("{why}");
                        timed_out = true;
                        tracker.end_all_open(EndStatus::NeverStarted, EndStatus::TimedOut, &why);
                        stopping_since = Some(now);
                        server.abort_all(why);
                    }
                    if stopping_since.is_some() {
                        signal_all(&children, libc::SIGTERM);
                    }
                } else if stopping_since.is_some_and(|s| now.duration_since(s) >= GRACE) {
                    signal_all(&children, libc::SIGKILL);
                }
                let clock = start_unix_ms.map(|s| (unix_ms_now() as f64 - s as f64) / 1000.0);
                progress.update(tracker.counts(), clock);
            }
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                tracing::warn!("Ctrl-C: stopping every instance (outputs are kept)");
                tracker.end_all_open(EndStatus::Interrupted, EndStatus::Interrupted, "stopped by Ctrl-C");
                server.abort_all("interrupted by Ctrl-C");
                signal_all(&children, libc::SIGTERM);
                stopping_since = Some(Instant::now());
            }
        }
    }
    progress.finish(tracker.counts());
    let ended_at = SystemTime::now();

    let placement: BTreeMap<u32, u32> = groups
        .iter()
        .enumerate()
        .flat_map(|(p, ids)| ids.iter().map(move |&id| (id, p as u32 + 1)))
        .collect();
    let instance_status = tracker
        .ends()
        .map(|(id, end)| {
            let paths = folder::InstancePaths::new(LOCAL_HOST, 1, id);
            let _ = placement.get(&id);
            let end = end.cloned().unwrap_or(super::status::End {
                status: EndStatus::Crashed,
                exit_code: None,
                error: Some("no end was recorded".into()),
            });
            folder::InstanceStatus {
                id,
                host: LOCAL_HOST.into(),
                node: 1,
                status: end.status.as_str().into(),
                exit_code: end.exit_code,
                error: end.error,
                out: paths.out,
                err: paths.err,
            }
        })
        .collect::<Vec<_>>();
    let all_finished = instance_status.iter().all(|s| s.status == "finished");
    let outcome = if interrupted {
        "interrupted"
    } else if timed_out {
        "timed_out"
    } else if all_finished {
        "passed"
    } else {
        "failed"
    };
    let summary = folder::Summary {
        run_id,
        experiment: settings.experiment.clone(),
        seed: settings.seed,
        instances: settings.instances,
        nodes: 1,
        runner: "local".into(),
        time_scale: settings.time_scale,
        started_at: folder::timestamp(started_at),
        ended_at: folder::timestamp(ended_at),
        duration_s: ended_at
            .duration_since(started_at)
            .unwrap_or_default()
            .as_secs_f64(),
        outcome: outcome.into(),
        timed_out,
        instance_status,
        verdicts: Vec::new(),
    };
    folder::write_json(&run_dir.join("summary.json"), &summary)?;
    Ok(RunOutcome { run_dir, summary })
}

/// Copy what the run was made from into the run folder.
fn write_inputs(run_dir: &Path, settings: &RunSettings, record: &RunRecord) -> anyhow::Result<()> {
    folder::write_json(&run_dir.join("run.json"), record)?;
    let mut conf = String::from("# the resolved experiment config of this run\n");
    for (k, v) in &settings.config {
        conf.push_str(&format!("{k} = {v}\n"));
    }
    fs::write(run_dir.join("experiment.conf"), conf)?;
    fs::copy(&settings.scenario_path, run_dir.join("experiment.scenario")).with_context(|| {
        format!(
            "cannot copy {} into the run folder",
            settings.scenario_path.display()
        )
    })?;
    Ok(())
}

/// Append why an instance ended abnormally, and its process's last stderr
/// lines, to the instance's `.err` file.
fn note_crash(run_dir: &Path, id: u32, why: &str, stderr_path: &Path) {
    let paths = folder::InstancePaths::new(LOCAL_HOST, 1, id);
    let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(&paths.err))
    else {
        return;
    };
    let _ = writeln!(f, "peerlab: instance {id} ended abnormally: {why}");
    if let Ok(text) = fs::read_to_string(stderr_path) {
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        if !tail.is_empty() {
            let _ = writeln!(
                f,
                "peerlab: last lines of the process's stderr ({}):",
                stderr_path.display()
            );
            for line in tail {
                let _ = writeln!(f, "  {line}");
            }
        }
    }
}

fn signal_all(children: &[Child], signal: i32) {
    for child in children.iter().filter(|c| !c.exited && c.pid != 0) {
        // Negative pid: the whole process group the child leads.
        unsafe {
            libc::kill(-(child.pid as i32), signal);
        }
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token no other run can guess; mixed from the clock, the pid and the seed.
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_take_consecutive_ids() {
        assert_eq!(
            plan_processes(5, 1),
            vec![vec![1], vec![2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(plan_processes(5, 2), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(plan_processes(3, 10), vec![vec![1, 2, 3]]);
    }
}
