//! The SLURM runner: one `sbatch` job whose `srun` starts one node agent
//! (`peerlab node-agent`) per node; each agent starts its share of the
//! instances, which register with the sync server running here.
//!
//! This module owns the job's life as seen from the submitting host:
//! rendering the batch script, submitting it, polling `squeue` (and
//! `sacct`/`scontrol` once the job ends) into [`LaunchEvent`]s, deciding
//! when SLURM cannot place the job, reading the agents' exit reports, and
//! `scancel` on stop. Supervision (timeouts, Ctrl-C, summary) is
//! [`super::supervise`]'s; starting instance processes on a node is the
//! agent's ([`agent`]). The parsers ([`queue`]) and the script renderer
//! ([`script`]) are pure functions of the `peerlab-slurm` crate; only
//! [`run`] and the poller (`poller.rs`) run commands.
//!
//! Files it adds to the run folder: `slurm/job.sh` (the batch script),
//! `slurm/job_id`, `slurm/job.out` (the job's stdout and stderr: the
//! agents' log lines) and `slurm/node<NNN>.exits.jsonl` (one line per
//! instance process that ended on node NNN, written by its agent).

pub mod address;
pub mod agent;
mod node_processes;
mod poller;

pub use peerlab_slurm::nodes;
pub use peerlab_slurm::queue::{self, *};
pub use peerlab_slurm::script::{self, *};
pub use peerlab_slurm::{
    DEFAULT_QUEUE_TIMEOUT, LOCAL_DIR_KEY, NODE_FAILURE_KEY, NodeFailure, SLURM_DIR, SlurmSettings,
    TIME_MARGIN,
};
use poller::Poller;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use peerlab_lang::experiment::Experiment;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::RunError;
use super::external::process_groups;
use super::folder::Placement;
use super::interrupt::Interrupt;
use super::supervise::{self, LaunchEvent, Launcher, TOKEN_ENV};
use super::{RunOutcome, RunSettings};

/// The runner's name in `run.json` and `summary.json`.
pub const RUNNER: &str = "slurm";

/// The host name recorded for instances until their node registers them.
pub const UNPLACED_HOST: &str = "unplaced";

/// Why the SLURM client could not do what the runner asked: the commands
/// missing, not answering, failing, or refusing the job. (Its config
/// errors are [`SlurmConfigError`], found before anything starts.)
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "`{program}` is not on PATH: the slurm runner needs SLURM's client commands \
         (run peerlab on a host that submits jobs, or install slurm-client)"
    )]
    NotOnPath { program: &'static str },
    #[error("`{program}` did not answer within {after:?}")]
    NoAnswer {
        program: String,
        after: Duration,
        #[source]
        source: tokio::time::error::Elapsed,
    },
    #[error("cannot run `{program}`: is SLURM's client installed?")]
    CannotRun {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran and failed; `stderr` is what it said (trimmed).
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot write {}", path.display())]
    WriteScript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("`sbatch` did not answer within a minute: is slurmctld reachable?")]
    SbatchNoAnswer(#[source] tokio::time::error::Elapsed),
    #[error(
        "cannot run `sbatch`: the slurm runner needs SLURM's client commands (sbatch, squeue, scancel) on PATH"
    )]
    SbatchCannotRun(#[source] std::io::Error),
    /// sbatch refused the job; `why` is its error lines, joined.
    #[error("SLURM refused the job ({}): {why}", script.display())]
    Refused { script: PathBuf, why: String },
    #[error("sbatch printed no job id: {stdout:?}")]
    NoJobId { stdout: String },
    #[error(transparent)]
    SyncAddress(#[from] address::AddressError),
    #[error(
        "cannot give the nodes the built-in tracker's address: `{0}` (the sync server's address for the nodes) does not resolve; set sync_host to an address, or sync_interface"
    )]
    TrackerAddress(String),
}

/// Config errors of the slurm runner.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlurmConfigError {
    #[error(
        "`node_amount` is 0: the slurm runner needs at least one node (set node_amount = N in the config)"
    )]
    NoNodes,
    #[error(
        "`node_amount` asks for {nodes} nodes for {instances} instances: every node needs at least one instance (lower node_amount or raise instances_to_run)"
    )]
    MoreNodesThanInstances { nodes: u32, instances: u32 },
    #[error("`{LOCAL_DIR_KEY}` must be an absolute path on the nodes, found `{0}`")]
    RelativeLocalDir(String),
    #[error("bad value for `{NODE_FAILURE_KEY}`: expected `stop` or `continue`, found `{0}`")]
    BadNodeFailure(String),
}

/// The SLURM settings of `exp` for a run planned as `run`.
pub fn settings_from(
    exp: &Experiment,
    run: &RunSettings,
) -> Result<SlurmSettings, SlurmConfigError> {
    let nodes = exp.nodes;
    if nodes == 0 {
        return Err(SlurmConfigError::NoNodes);
    }
    if nodes > run.instances {
        return Err(SlurmConfigError::MoreNodesThanInstances {
            nodes,
            instances: run.instances,
        });
    }
    let sync_host = exp
        .sync_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let sync_interface = run
        .config
        .get(address::SYNC_INTERFACE_KEY)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let on_node_failure = match run.config.get(NODE_FAILURE_KEY).map(|s| s.trim()) {
        None | Some("") => NodeFailure::default(),
        Some(s) => {
            NodeFailure::parse(s).ok_or_else(|| SlurmConfigError::BadNodeFailure(s.into()))?
        }
    };
    let local_dir = match run.config.get(LOCAL_DIR_KEY).map(|s| s.trim()) {
        None | Some("") => None,
        Some(dir) if Path::new(dir).is_absolute() => Some(PathBuf::from(dir)),
        Some(dir) => return Err(SlurmConfigError::RelativeLocalDir(dir.into())),
    };
    Ok(SlurmSettings {
        partition: exp.slurm.partition.clone(),
        sbatch_options: exp.slurm.sbatch_options.clone(),
        nodes,
        time_limit: job_time_limit(run),
        sync_host,
        sync_interface,
        immediate: exp.slurm.immediate,
        local_dir,
        poll_interval: Duration::from_secs(1),
        queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        on_node_failure,
    })
}

/// The job's time limit: registration, start delay and the run's timeout
/// (all already scaled), plus [`TIME_MARGIN`].
pub fn job_time_limit(run: &RunSettings) -> Duration {
    run.registration_timeout + run.start_delay + run.timeout + TIME_MARGIN
}

/// This host's name, as `gethostname` says.
pub fn this_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The instance ids node `index` (0-based, of `nodes`) runs: consecutive
/// ids, spread as evenly as possible, the first nodes taking one more
/// (Gumby's rule). Empty when `index` is out of range.
pub fn node_share(instances: u32, nodes: u32, index: u32) -> std::ops::Range<u32> {
    if nodes == 0 || index >= nodes {
        return 1..1;
    }
    let base = instances / nodes;
    let extra = instances % nodes;
    let count = base + u32::from(index < extra);
    let first = 1 + index * base + index.min(extra);
    first..first + count
}

/// The planned placement: each node's share, split into processes of
/// `per_process` instances, then one process per external instance (the
/// last ids, spread over the nodes like the others). The host
/// stays [`UNPLACED_HOST`] until the node's instances register.
pub fn plan(
    instances: u32,
    nodes: u32,
    per_process: u32,
    external: &peerlab_lang::External,
) -> Vec<Placement> {
    let mut out = Vec::new();
    for index in 0..nodes {
        let ids: Vec<u32> = node_share(instances, nodes, index).collect();
        let groups = process_groups(&ids, per_process, |id| external.is_external(id, instances));
        for (p, group) in groups.iter().enumerate() {
            for &id in group {
                out.push(Placement {
                    id,
                    host: UNPLACED_HOST.into(),
                    node: index + 1,
                    process: p as u32 + 1,
                });
            }
        }
    }
    out
}

/// One instance process that ended on a node, as its agent reports it in
/// `slurm/node<NNN>.exits.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentExit {
    pub ids: Vec<u32>,
    pub exit_code: Option<i32>,
    pub how: String,
    pub clean: bool,
    /// The process's stderr file, relative to the run folder.
    pub stderr: Option<PathBuf>,
    /// The node's name (`SLURMD_NODENAME`): where the ids ran, also when
    /// they never registered to say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The exit report file of node `node` (1-based), relative to the run folder.
pub fn exits_file(node: u32) -> PathBuf {
    PathBuf::from(SLURM_DIR).join(format!("node{node:03}.exits.jsonl"))
}

/// The job as the runner holds it.
struct SlurmLauncher {
    job: Option<String>,
    running: Arc<AtomicBool>,
}

impl Launcher for SlurmLauncher {
    fn stop(&mut self, force: bool) {
        let Some(job) = self.job.clone() else {
            return;
        };
        if !self.running.load(Ordering::SeqCst) {
            return;
        }
        tokio::spawn(async move {
            let mut args: Vec<String> = Vec::new();
            if force {
                args.extend(["--signal=KILL".into(), "--full".into()]);
            }
            args.push(job.clone());
            match slurm_command("scancel", &args).await {
                Ok(_) => tracing::info!(job = %job, force, "scancel sent"),
                Err(err) => tracing::warn!(
                    "cannot cancel SLURM job {job}: {}",
                    crate::util::chain(&err)
                ),
            }
            if force {
                // The signal ends the processes; this ends the job itself.
                let _ = slurm_command("scancel", &[job]).await;
            }
        });
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

/// How long one SLURM command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Run a SLURM client command and return its stdout; an error carries its
/// stderr.
pub(super) async fn slurm_command(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    let output = client_output(&mut cmd)
        .await
        .map_err(|source| SlurmError::NoAnswer {
            program: program.into(),
            after: COMMAND_TIMEOUT,
            source,
        })?
        .map_err(|source| SlurmError::CannotRun {
            program: program.into(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&output.stderr);
        Err(SlurmError::Failed {
            command: format!("{program} {}", args.join(" ")),
            status: output.status,
            stderr: err.trim().to_string(),
        })
    }
}

/// Run a SLURM client command to its end, its output captured, for at
/// most [`COMMAND_TIMEOUT`] (killed if it takes longer).
async fn client_output(
    cmd: &mut tokio::process::Command,
) -> Result<std::io::Result<std::process::Output>, tokio::time::error::Elapsed> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await
}

/// Run the experiment as one SLURM job and return its outcome.
pub async fn run(settings: &RunSettings, slurm: &SlurmSettings) -> Result<RunOutcome, RunError> {
    // The job may wait in the queue before anything registers: the poller
    // stops the registration clock while the job is pending (LaunchEvent::
    // Waiting / Running) and ends the run when the queue wait is over.

    // Without SLURM's client there is nothing to run: say so before a run
    // folder exists.
    for program in ["sbatch", "squeue", "scancel"] {
        if find_on_path(program).is_none() {
            return Err(SlurmError::NotOnPath { program }.into());
        }
    }
    // Before the job is submitted: a stop from now on cancels it and ends
    // the run as interrupted.
    let interrupt = Interrupt::listen().map_err(RunError::Signals)?;
    let exe = std::env::current_exe().map_err(RunError::Executable)?;
    let placement = plan(
        settings.instances,
        slurm.nodes,
        settings.instances_per_process,
        &settings.external(),
    );
    let place = address::choose(
        slurm.sync_host.as_deref(),
        slurm.sync_interface.as_deref(),
        slurm.partition.as_deref(),
    )
    .await
    .map_err(|e| RunError::Slurm(SlurmError::SyncAddress(e)))?;
    tracing::info!(bind = %place.bind, nodes_connect_to = %place.advertise, "sync server address: {}", place.how);
    // `tracker_cmd`: the built-in tracker beside the sync server, in the
    // peer table at the address the nodes are given.
    let (settings, mut tracker) = super::tracker::start(settings, place.bind).await?;
    let settings: &RunSettings = &settings;
    if let Some(t) = tracker.as_mut() {
        t.entry.addr = address::reachable(&place.advertise, t.port())
            .ok_or_else(|| RunError::Slurm(SlurmError::TrackerAddress(place.advertise.clone())))?
            .to_string();
        tracing::info!(addr = %t.entry.addr, "tracker for the nodes");
    }
    let bind = SocketAddr::new(place.bind, settings.sync_port);
    let prepared = supervise::prepare(settings, RUNNER, slurm.nodes, placement, bind).await?;
    if let Some(t) = &tracker {
        prepared.server.add_peer(t.entry.clone());
    }
    // The nodes see the run folder by its absolute path (on the shared file system).
    let run_dir =
        fs::canonicalize(&prepared.run_dir).map_err(|source| RunError::FindRunFolder {
            path: prepared.run_dir.clone(),
            source,
        })?;
    let slurm_dir = run_dir.join(SLURM_DIR);
    fs::create_dir_all(&slurm_dir).map_err(RunError::create(&slurm_dir))?;
    let sync = format!(
        "{}:{}",
        bracket_ipv6(&place.advertise),
        prepared.server.local_addr().port()
    );

    let (tx, events) = mpsc::unbounded_channel();
    let running = Arc::new(AtomicBool::new(false));
    let mut launcher = SlurmLauncher {
        job: None,
        running: running.clone(),
    };
    let job = JobSpec {
        run_id: prepared.run_id.clone(),
        run_dir: run_dir.clone(),
        exe,
        sync,
        instances: settings.instances,
        instances_per_process: settings.instances_per_process,
        slurm: slurm.clone(),
    };
    match submit(&job, &prepared.token).await {
        Ok(id) => {
            tracing::info!(job = %id, run = %job.run_id, "submitted SLURM job {id}");
            let _ = tx.send(LaunchEvent::State(format!("SLURM job {id} submitted")));
            let _ = tx.send(LaunchEvent::Waiting);
            running.store(true, Ordering::SeqCst);
            launcher.job = Some(id.clone());
            let poller = Poller {
                job: id,
                run_dir: run_dir.clone(),
                nodes: slurm.nodes,
                instances: settings.instances,
                immediate: slurm.immediate,
                poll_interval: slurm.poll_interval,
                queue_timeout: slurm.queue_timeout,
                running: running.clone(),
                tx: tx.clone(),
                on_node_failure: slurm.on_node_failure,
            };
            tokio::spawn(poller.run());
        }
        Err(err) => {
            let _ = tx.send(LaunchEvent::Failed(crate::util::chain(&err)));
        }
    }
    drop(tx);
    let summary =
        supervise::supervise(settings, prepared, &mut launcher, events, &interrupt).await?;
    Ok(RunOutcome { run_dir, summary })
}

/// The first executable file named `program` in `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Write the batch script into the run folder and submit it; the job id.
async fn submit(job: &JobSpec, token: &str) -> Result<String, SlurmError> {
    let script = render_script(job)?;
    let path = job.run_dir.join(SLURM_DIR).join("job.sh");
    fs::write(&path, &script).map_err(|source| SlurmError::WriteScript {
        path: path.clone(),
        source,
    })?;
    let mut cmd = tokio::process::Command::new("sbatch");
    cmd.arg("--parsable").arg(&path).env(TOKEN_ENV, token);
    let output = client_output(&mut cmd)
        .await
        .map_err(SlurmError::SbatchNoAnswer)?
        .map_err(SlurmError::SbatchCannotRun)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let why = stderr
            .lines()
            .map(|l| l.trim().trim_start_matches("sbatch: error: ").trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(SlurmError::Refused {
            script: path
                .strip_prefix(&job.run_dir)
                .unwrap_or(&path)
                .to_path_buf(),
            why,
        });
    }
    let id = parse_sbatch_id(&stdout).ok_or_else(|| SlurmError::NoJobId {
        stdout: stdout.trim().chars().take(200).collect(),
    })?;
    let _ = fs::write(
        job.run_dir.join(SLURM_DIR).join("job_id"),
        format!("{id}\n"),
    );
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_even_and_the_first_nodes_take_one_more() {
        let shares = |n, m| {
            (0..m)
                .map(|i| node_share(n, m, i).collect::<Vec<u32>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shares(9, 3),
            vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]
        );
        assert_eq!(
            shares(10, 3),
            vec![vec![1, 2, 3, 4], vec![5, 6, 7], vec![8, 9, 10]]
        );
        assert_eq!(
            shares(5, 5),
            vec![vec![1], vec![2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(shares(2, 3), vec![vec![1], vec![2], vec![]]);
        assert_eq!(node_share(9, 3, 3).count(), 0);
        assert_eq!(node_share(9, 0, 0).count(), 0);
        // Every id exactly once, in order, for many shapes.
        for n in 0..40 {
            for m in 1..12 {
                let all: Vec<u32> = (0..m).flat_map(|i| node_share(n, m, i)).collect();
                assert_eq!(all, (1..=n).collect::<Vec<_>>(), "{n} over {m}");
                let sizes: Vec<usize> = (0..m).map(|i| node_share(n, m, i).count()).collect();
                assert!(sizes.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
            }
        }
    }

    #[test]
    fn the_plan_numbers_nodes_and_processes_per_node() {
        let none = peerlab_lang::External::default();
        let p = plan(5, 2, 2, &none);
        let rows: Vec<(u32, u32, u32)> = p.iter().map(|p| (p.id, p.node, p.process)).collect();
        assert_eq!(
            rows,
            vec![(1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 2, 1), (5, 2, 1)]
        );
        assert!(p.iter().all(|p| p.host == UNPLACED_HOST));
        // External instances (the last two) spread like the others, each
        // in a process of its own after the node's peerlab processes.
        let two = peerlab_lang::External {
            instances: 2,
            ..Default::default()
        };
        let p = plan(5, 2, 2, &two);
        let rows: Vec<(u32, u32, u32)> = p.iter().map(|p| (p.id, p.node, p.process)).collect();
        assert_eq!(
            rows,
            vec![(1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 2, 1), (5, 2, 2)]
        );
    }

    fn run_settings(instances: u32) -> RunSettings {
        RunSettings {
            experiment: "e".into(),
            time_scale: 0.05,
            timeout: Duration::from_secs(13),
            registration_timeout: Duration::from_secs(30),
            start_delay: Duration::from_secs(1),
            ..RunSettings::for_tests("e.scenario".into(), "output".into(), instances)
        }
    }

    #[test]
    fn settings_come_from_the_experiment() {
        let mut exp = Experiment::for_scenario("e.scenario");
        exp.nodes = 3;
        exp.sync_host = Some("fs0".into());
        exp.slurm.partition = Some("defq".into());
        exp.slurm.sbatch_options = vec!["--constraint=cpunode".into()];
        exp.slurm.immediate = true;
        let mut run = run_settings(9);
        run.config
            .insert(LOCAL_DIR_KEY.into(), "/local/scratch".into());
        let s = settings_from(&exp, &run).unwrap();
        assert_eq!(s.nodes, 3);
        assert_eq!(s.sync_host.as_deref(), Some("fs0"));
        assert_eq!(s.on_node_failure, NodeFailure::Stop);
        assert_eq!(s.partition.as_deref(), Some("defq"));
        assert_eq!(s.sbatch_options, vec!["--constraint=cpunode".to_string()]);
        assert!(s.immediate);
        assert_eq!(s.local_dir, Some(PathBuf::from("/local/scratch")));
        // 30 s registration + 1 s start delay + 13 s run + the margin.
        assert_eq!(s.time_limit, Duration::from_secs(44) + TIME_MARGIN);

        // Defaults: the runner picks the sync address, no node-local folder.
        exp.sync_host = None;
        let s = settings_from(&exp, &run_settings(9)).unwrap();
        assert_eq!(s.sync_host, None);
        assert_eq!(s.sync_interface, None);
        assert_eq!(s.local_dir, None);
        let mut keyed = run_settings(9);
        keyed.config.insert("sync_interface".into(), "ib0".into());
        keyed
            .config
            .insert(NODE_FAILURE_KEY.into(), "Continue".into());
        let s = settings_from(&exp, &keyed).unwrap();
        assert_eq!(s.sync_interface.as_deref(), Some("ib0"));
        assert_eq!(s.on_node_failure, NodeFailure::Continue);
        keyed.config.insert(NODE_FAILURE_KEY.into(), "retry".into());
        assert_eq!(
            settings_from(&exp, &keyed),
            Err(SlurmConfigError::BadNodeFailure("retry".into()))
        );

        exp.nodes = 10;
        assert_eq!(
            settings_from(&exp, &run),
            Err(SlurmConfigError::MoreNodesThanInstances {
                nodes: 10,
                instances: 9
            })
        );
        exp.nodes = 0;
        assert_eq!(settings_from(&exp, &run), Err(SlurmConfigError::NoNodes));
        exp.nodes = 1;
        run.config.insert(LOCAL_DIR_KEY.into(), "scratch".into());
        assert_eq!(
            settings_from(&exp, &run),
            Err(SlurmConfigError::RelativeLocalDir("scratch".into()))
        );
    }

    #[test]
    fn agent_exit_lines_round_trip() {
        let exit = AgentExit {
            ids: vec![4, 5],
            exit_code: Some(101),
            how: "exit code 101".into(),
            clean: false,
            stderr: Some("n2/node002/process001.stderr".into()),
            host: Some("n2".into()),
        };
        let line = serde_json::to_string(&exit).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<AgentExit>(&line).unwrap(), exit);
        assert_eq!(exits_file(2), PathBuf::from("slurm/node002.exits.jsonl"));
    }
}
