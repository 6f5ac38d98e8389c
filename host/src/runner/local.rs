//! The local runner: instance processes on this machine (Gumby's local mode
//! and process guard, built in).
//!
//! It starts one `peerlab instance` process per `instances_per_process`
//! instances, each in its own process group so that a stop reaches
//! everything it started and set to die with its parent (so that killing
//! `peerlab run`, or a SLURM node agent, leaves no orphan), and leaves the
//! rest to [`super::supervise`].

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::error::RunError;
use super::external::{ExternalRun, Start, process_groups};
use super::folder::{self, Placement};
use super::interrupt::Interrupt;
use super::status::describe_exit;
use super::supervise::{self, LaunchEvent, Launcher, TOKEN_ENV};
use super::{RunOutcome, RunSettings};

/// The host name local runs use in the output layout.
pub const LOCAL_HOST: &str = "localhost";

/// Where each instance runs: all on this host, node 1.
pub fn placement(groups: &[Vec<u32>]) -> Vec<Placement> {
    groups
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
        .collect()
}

/// Local processes, by process group: only groups whose leader has not been
/// reaped yet (a reaped leader's id may already belong to someone else).
struct LocalLauncher {
    live: Arc<Mutex<HashSet<u32>>>,
}

impl Launcher for LocalLauncher {
    fn stop(&mut self, force: bool) {
        let signal = if force { libc::SIGKILL } else { libc::SIGTERM };
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for &pid in live.iter().filter(|&&p| p != 0) {
            // SAFETY: kill has no memory-safety preconditions; a negative pid
            // names the process group the child leads.
            unsafe {
                libc::kill(-(pid as i32), signal);
            }
        }
    }

    fn running(&self) -> bool {
        !self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// Run the experiment locally and return its outcome.
pub async fn run(settings: &RunSettings) -> Result<RunOutcome, RunError> {
    // Before anything starts: a stop from now on ends the run as interrupted.
    let interrupt = Interrupt::listen().map_err(RunError::Signals)?;
    // `tracker_cmd`: the built-in tracker, its port in the settings from now on.
    let (settings, tracker) = super::tracker::start(settings, [127, 0, 0, 1].into()).await?;
    let settings: &RunSettings = &settings;
    // External instances (other programs) take the last ids, one process each.
    let external = settings.external_ids();
    let all: Vec<u32> = (1..=settings.instances).collect();
    let groups = process_groups(&all, settings.instances_per_process, |id| {
        external.contains(&id)
    });
    let external_run = match external.is_empty() {
        true => None,
        false => Some(ExternalRun::from_settings(settings)?),
    };
    let placement = placement(&groups);
    let bind: SocketAddr = ([127, 0, 0, 1], settings.sync_port).into();
    let prepared = supervise::prepare(settings, "local", 1, placement, bind).await?;
    if let Some(t) = &tracker {
        prepared.server.add_peer(t.entry.clone());
    }
    let run_dir = prepared.run_dir.clone();
    let instance_dir = run_dir.join(folder::instance_dir(LOCAL_HOST, 1));
    fs::create_dir_all(&instance_dir).map_err(RunError::create(instance_dir))?;

    let (tx, events) = mpsc::unbounded_channel();
    let live = Arc::new(Mutex::new(HashSet::new()));
    let mut launcher = LocalLauncher { live: live.clone() };
    let exe = std::env::current_exe().map_err(RunError::Executable)?;
    let sync = prepared.server.local_addr();
    for (p, ids) in groups.iter().enumerate() {
        let process = p as u32 + 1;
        let spawned = match &external_run {
            Some(run) if external.contains(&ids[0]) => {
                let start = Start {
                    run_dir: &run_dir,
                    sync,
                    token: &prepared.token,
                    bind: sync.ip(),
                    host: LOCAL_HOST,
                    node: 1,
                    id: ids[0],
                };
                // Its stderr is already the instance's .err: no tail to copy.
                super::external::spawn(run, &start).map(|c| (c, None))
            }
            _ => spawn_instances(
                &exe,
                &run_dir,
                sync,
                &prepared.token,
                LOCAL_HOST,
                1,
                process,
                ids,
            )
            .map(|(c, p)| (c, Some(p))),
        };
        match spawned {
            Ok((child, stderr_path)) => {
                let pid = child.id().unwrap_or(0);
                live.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
                let tx = tx.clone();
                let live = live.clone();
                let ids = ids.clone();
                let mut child = child;
                tokio::spawn(async move {
                    let status = child.wait().await;
                    let (exit_code, how, clean) = match &status {
                        Ok(s) => {
                            let (code, how) = describe_exit(s);
                            (code, how, s.success())
                        }
                        Err(err) => (None, format!("could not be waited for: {err}"), false),
                    };
                    live.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
                    let _ = tx.send(LaunchEvent::Exited {
                        ids,
                        exit_code,
                        how,
                        clean,
                        stderr: stderr_path,
                    });
                });
            }
            Err(err) => {
                let _ = tx.send(LaunchEvent::Failed(crate::util::chain(&err)));
                break;
            }
        }
    }
    drop(tx);
    let summary =
        supervise::supervise(settings, prepared, &mut launcher, events, &interrupt).await?;
    Ok(RunOutcome { run_dir, summary })
}

/// Start one `peerlab instance` process for `ids` in its own process group,
/// its stderr going to the process's file in the run folder. Returns the
/// child and that file's path. (The SLURM node agent starts its share the
/// same way.)
#[allow(clippy::too_many_arguments)]
pub fn spawn_instances(
    exe: &Path,
    run_dir: &Path,
    sync: SocketAddr,
    token: &str,
    host: &str,
    node: u32,
    process: u32,
    ids: &[u32],
) -> Result<(tokio::process::Child, std::path::PathBuf), RunError> {
    let stderr_path = run_dir.join(folder::process_stderr(host, node, process));
    if let Some(dir) = stderr_path.parent() {
        fs::create_dir_all(dir).map_err(RunError::create(dir))?;
    }
    let stderr = fs::File::create(&stderr_path).map_err(RunError::create(&stderr_path))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("instance")
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--sync")
        .arg(sync.to_string())
        .arg("--host")
        .arg(host)
        .arg("--node")
        .arg(node.to_string())
        .arg("--process")
        .arg(process.to_string())
        .arg("--ids")
        .arg(crate::util::ranges(ids))
        .env(TOKEN_ENV, token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|source| RunError::Spawn { process, source })?;
    Ok((child, stderr_path))
}

/// Make the child die when this process does, however it dies (SIGKILL
/// included): an instance stuck in a callback would otherwise never notice
/// that its sync server is gone and run on under PID 1.
///
/// Linux sends the signal when the *thread* that forked the child ends, so
/// spawn from a thread that lives as long as the run (the runners spawn
/// from the thread that drives them).
pub(super) fn die_with_parent(cmd: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the child between fork and exec and
        // calls only async-signal-safe functions (prctl, getppid, kill,
        // getpid), touching no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then nobody
                // will send the signal, so act on it now.
                if libc::getppid() != parent {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_take_consecutive_ids() {
        let groups = |n: u32, per| process_groups(&(1..=n).collect::<Vec<_>>(), per, |_| false);
        assert_eq!(
            groups(5, 1),
            vec![vec![1], vec![2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(groups(5, 2), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(groups(3, 10), vec![vec![1, 2, 3]]);
    }
}
