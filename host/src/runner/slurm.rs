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
//! agent's ([`crate::cmd::node_agent`]). The parsers and the script
//! renderer are pure functions; only [`run`] and the poller run commands.
//!
//! Files it adds to the run folder: `slurm/job.sh` (the batch script),
//! `slurm/job_id`, `slurm/job.out` (the job's stdout and stderr: the
//! agents' log lines) and `slurm/node<NNN>.exits.jsonl` (one line per
//! instance process that ended on node NNN, written by its agent).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use peerlab_lang::experiment::Experiment;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::folder::Placement;
use super::interrupt::Interrupt;
use super::local::plan_processes;
use super::supervise::{self, LaunchEvent, Launcher, TOKEN_ENV};
use super::{RunOutcome, RunSettings};

/// The runner's name in `run.json` and `summary.json`.
pub const RUNNER: &str = "slurm";

/// The host name recorded for instances until their node registers them.
pub const UNPLACED_HOST: &str = "unplaced";

/// Added to the run's own time budget to get the job's time limit: room
/// for starting the agents and copying outputs back.
pub const TIME_MARGIN: Duration = Duration::from_secs(120);

/// The config key naming a node-local directory for instance outputs
/// (copied back into the run folder by the agents).
pub const LOCAL_DIR_KEY: &str = "slurm_local_output_dir";

/// How long a job may wait in the queue (for legitimate reasons such as
/// busy nodes) before the run gives up.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The run folder's subfolder for the job's files.
pub const SLURM_DIR: &str = "slurm";

/// What the slurm runner needs beyond [`RunSettings`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmSettings {
    /// `--partition`, if any.
    pub partition: Option<String>,
    /// Extra `sbatch` options, one word each, after peerlab's own (so they win).
    pub sbatch_options: Vec<String>,
    /// Nodes to reserve: one node agent each.
    pub nodes: u32,
    /// The job's `--time`: the run's time budget plus [`TIME_MARGIN`].
    pub time_limit: Duration,
    /// The name or address the node agents reach the sync server at.
    pub sync_host: String,
    /// Fail as soon as SLURM says it cannot start the job now.
    pub immediate: bool,
    /// A node-local directory for instance outputs, copied back by the agents.
    pub local_dir: Option<PathBuf>,
    /// How often `squeue` is asked.
    pub poll_interval: Duration,
    /// How long the job may wait in the queue.
    pub queue_timeout: Duration,
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
    #[error("cannot find this host's name for `sync_host`: set sync_host in the config")]
    NoHostName,
}

impl SlurmSettings {
    /// The settings of `exp` for a run planned as `run`.
    pub fn from_experiment(exp: &Experiment, run: &RunSettings) -> Result<Self, SlurmConfigError> {
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
        let sync_host = match &exp.sync_host {
            Some(h) if !h.trim().is_empty() => h.trim().to_string(),
            _ => this_host_name().ok_or(SlurmConfigError::NoHostName)?,
        };
        let local_dir = match run.config.get(LOCAL_DIR_KEY).map(|s| s.trim()) {
            None | Some("") => None,
            Some(dir) if Path::new(dir).is_absolute() => Some(PathBuf::from(dir)),
            Some(dir) => return Err(SlurmConfigError::RelativeLocalDir(dir.into())),
        };
        Ok(Self {
            partition: exp.slurm.partition.clone(),
            sbatch_options: exp.slurm.sbatch_options.clone(),
            nodes,
            time_limit: job_time_limit(run),
            sync_host,
            immediate: exp.slurm.immediate,
            local_dir,
            poll_interval: Duration::from_secs(1),
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        })
    }
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
/// `per_process` instances. The host stays [`UNPLACED_HOST`] until the
/// node's instances register.
pub fn plan(instances: u32, nodes: u32, per_process: u32) -> Vec<Placement> {
    let mut out = Vec::new();
    for index in 0..nodes {
        let ids: Vec<u32> = node_share(instances, nodes, index).collect();
        for (p, group) in plan_processes(ids.len() as u32, per_process)
            .iter()
            .enumerate()
        {
            for &k in group {
                out.push(Placement {
                    id: ids[k as usize - 1],
                    host: UNPLACED_HOST.into(),
                    node: index + 1,
                    process: p as u32 + 1,
                });
            }
        }
    }
    out
}

/// SLURM's `--time` text for a duration, rounded up to whole minutes
/// (`[D-]HH:MM:SS`).
pub fn format_time_limit(d: Duration) -> String {
    let minutes = d.as_secs().div_ceil(60).max(1);
    let (days, rest) = (minutes / (24 * 60), minutes % (24 * 60));
    let (h, m) = (rest / 60, rest % 60);
    if days > 0 {
        format!("{days}-{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

/// Everything the batch script says.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The peerlab binary the nodes run (on the shared file system).
    pub exe: PathBuf,
    /// `host:port` of the sync server, as the nodes reach it.
    pub sync: String,
    pub instances: u32,
    pub instances_per_process: u32,
    pub slurm: SlurmSettings,
}

/// Why a batch script cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScriptError {
    #[error(
        "the path {0} has white space or a quote, which an #SBATCH line cannot carry: choose an output folder without them (--output DIR)"
    )]
    UnsafePath(String),
    #[error("the sbatch option `{0}` spans lines: give each option on one line")]
    MultilineOption(String),
}

/// The batch script: peerlab's `#SBATCH` lines, the user's extra options,
/// then one `srun` starting a node agent on every node.
pub fn render_script(job: &JobSpec) -> Result<String, ScriptError> {
    let out = job.run_dir.join(SLURM_DIR).join("job.out");
    for p in [&job.run_dir, &out] {
        let s = p.to_string_lossy();
        if s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
        {
            return Err(ScriptError::UnsafePath(s.into_owned()));
        }
    }
    if let Some(bad) = job.slurm.sbatch_options.iter().find(|o| o.contains('\n')) {
        return Err(ScriptError::MultilineOption(bad.clone()));
    }
    let s = &job.slurm;
    let mut text = String::from("#!/bin/sh\n");
    let mut directive = |line: String| {
        let _ = writeln!(text, "#SBATCH {line}");
    };
    directive(format!("--job-name=peerlab-{}", job.run_id));
    directive(format!("--nodes={}", s.nodes));
    directive("--ntasks-per-node=1".into());
    directive(format!("--time={}", format_time_limit(s.time_limit)));
    directive(format!("--output={}", out.display()));
    directive(format!("--chdir={}", job.run_dir.display()));
    if let Some(partition) = &s.partition {
        directive(format!("--partition={partition}"));
    }
    for option in &s.sbatch_options {
        directive(option.clone());
    }
    let _ = writeln!(
        text,
        "# Written by peerlab for run {}: one node agent per node, each starting its\n\
         # share of the {} instances. The run token comes in ${TOKEN_ENV}.",
        job.run_id, job.instances
    );
    let mut agent = vec![
        shell_quote(&job.exe.to_string_lossy()),
        "-v".into(),
        "node-agent".into(),
        "--run-dir".into(),
        shell_quote(&job.run_dir.to_string_lossy()),
        "--sync".into(),
        shell_quote(&job.sync),
        "--instances".into(),
        job.instances.to_string(),
        "--nodes".into(),
        s.nodes.to_string(),
        "--instances-per-process".into(),
        job.instances_per_process.to_string(),
    ];
    if let Some(dir) = &s.local_dir {
        agent.push("--local-dir".into());
        agent.push(shell_quote(&dir.to_string_lossy()));
    }
    // Log files are not terminals: no colour codes in job.out and .stderr files.
    text.push_str("export NO_COLOR=1\n");
    let _ = writeln!(
        text,
        "exec srun --nodes={} --ntasks-per-node=1 --kill-on-bad-exit=0 \\\n    {}",
        s.nodes,
        agent.join(" ")
    );
    Ok(text)
}

/// Quote a word for `sh` when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A SLURM job state (`squeue %T`, `sacct State`, `scontrol JobState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    NodeFail,
    Preempted,
    OutOfMemory,
    BootFail,
    Deadline,
    Other(String),
}

impl JobState {
    /// Parse SLURM's spelling (`CANCELLED by 0` counts as `CANCELLED`).
    pub fn parse(text: &str) -> Self {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match word {
            "PENDING" | "PD" => Self::Pending,
            "CONFIGURING" | "CF" => Self::Configuring,
            "RUNNING" | "R" => Self::Running,
            "COMPLETING" | "CG" => Self::Completing,
            "SUSPENDED" | "S" => Self::Suspended,
            "COMPLETED" | "CD" => Self::Completed,
            "FAILED" | "F" => Self::Failed,
            "CANCELLED" | "CA" => Self::Cancelled,
            "TIMEOUT" | "TO" => Self::Timeout,
            "NODE_FAIL" | "NF" => Self::NodeFail,
            "PREEMPTED" | "PR" => Self::Preempted,
            "OUT_OF_MEMORY" | "OOM" => Self::OutOfMemory,
            "BOOT_FAIL" | "BF" => Self::BootFail,
            "DEADLINE" | "DL" => Self::Deadline,
            other => Self::Other(other.to_string()),
        }
    }

    /// The job is over: nothing of it runs any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::Timeout
                | Self::NodeFail
                | Self::Preempted
                | Self::OutOfMemory
                | Self::BootFail
                | Self::Deadline
        )
    }

    /// Lowercase words for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Pending => "pending".into(),
            Self::Configuring => "configuring".into(),
            Self::Running => "running".into(),
            Self::Completing => "completing".into(),
            Self::Suspended => "suspended".into(),
            Self::Completed => "completed".into(),
            Self::Failed => "failed".into(),
            Self::Cancelled => "cancelled".into(),
            Self::Timeout => "ended by its time limit".into(),
            Self::NodeFail => "ended by a node failure".into(),
            Self::Preempted => "preempted".into(),
            Self::OutOfMemory => "out of memory".into(),
            Self::BootFail => "failed to boot its nodes".into(),
            Self::Deadline => "past its deadline".into(),
            Self::Other(s) => s.to_lowercase(),
        }
    }
}

/// One job as a SLURM query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub state: JobState,
    /// Why it pends (or `None`), as SLURM words it.
    pub reason: String,
    /// Its nodes, in SLURM's host list syntax (`n[1-3]`); empty while pending.
    pub nodes: String,
    /// The batch script's exit code and the signal that ended it, when known.
    pub exit: Option<(i32, i32)>,
}

/// The `squeue` format [`parse_squeue`] reads.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%N";

/// Parse `squeue -h -o '%i|%T|%r|%N'` output: the row of job `id`, if listed.
pub fn parse_squeue(output: &str, id: &str) -> Option<JobRow> {
    output.lines().find_map(|line| {
        let mut f = line.trim().splitn(4, '|');
        let job = f.next()?.trim();
        if job != id {
            return None;
        }
        Some(JobRow {
            id: job.to_string(),
            state: JobState::parse(f.next()?.trim()),
            reason: f.next().unwrap_or("").trim().to_string(),
            nodes: f.next().unwrap_or("").trim().to_string(),
            exit: None,
        })
    })
}

/// The `sacct` fields [`parse_sacct`] reads (with `-n -P -X`).
pub const SACCT_FIELDS: &str = "JobIDRaw,State,ExitCode,Reason,NodeList";

/// Parse `sacct -n -P -X -o JobIDRaw,State,ExitCode,Reason,NodeList` output.
pub fn parse_sacct(output: &str, id: &str) -> Option<JobRow> {
    output.lines().find_map(|line| {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 3 || f[0].trim() != id {
            return None;
        }
        Some(JobRow {
            id: id.to_string(),
            state: JobState::parse(f[1]),
            reason: f.get(3).unwrap_or(&"").trim().to_string(),
            nodes: f.get(4).unwrap_or(&"").trim().to_string(),
            exit: parse_exit_code(f[2]),
        })
    })
}

/// Parse `scontrol -o show job ID` output (one line of `Key=Value` words).
pub fn parse_scontrol(output: &str, id: &str) -> Option<JobRow> {
    let line = output
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == format!("JobId={id}")))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    Some(JobRow {
        id: id.to_string(),
        state: JobState::parse(&field("JobState")?),
        reason: field("Reason").unwrap_or_default(),
        nodes: field("NodeList")
            .filter(|n| n != "(null)")
            .unwrap_or_default(),
        exit: field("ExitCode").and_then(|e| parse_exit_code(&e)),
    })
}

/// `3:0` (exit code, signal) as SLURM writes it.
pub fn parse_exit_code(text: &str) -> Option<(i32, i32)> {
    let (code, signal) = text.trim().split_once(':')?;
    Some((code.parse().ok()?, signal.parse().ok()?))
}

/// The job id `sbatch --parsable` printed (`12` or `12;cluster`).
pub fn parse_sbatch_id(output: &str) -> Option<String> {
    let first = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = first.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// Pending reasons that mean SLURM will never start the job as submitted,
/// with what they mean.
const NEVER_REASONS: &[(&str, &str)] = &[
    (
        "PartitionNodeLimit",
        "the job asks for more nodes than the partition allows",
    ),
    (
        "PartitionTimeLimit",
        "the job's time limit is above the partition's",
    ),
    (
        "PartitionConfig",
        "the partition's configuration does not allow this job",
    ),
    ("PartitionDown", "the partition is down"),
    ("PartitionInactive", "the partition is inactive"),
    (
        "ReqNodeNotAvail",
        "a node the job needs is not available (down, drained or reserved)",
    ),
    (
        "BadConstraints",
        "no node has the features the job's constraints ask for",
    ),
    ("InvalidAccount", "the job's account is invalid"),
    ("InvalidQOS", "the job's QOS is invalid"),
    (
        "QOSMaxNodePerJobLimit",
        "the job asks for more nodes than its QOS allows",
    ),
    (
        "QOSMaxWallDurationPerJobLimit",
        "the job's time limit is above its QOS's",
    ),
    (
        "AssocMaxNodesPerJobLimit",
        "the job asks for more nodes than its association allows",
    ),
    (
        "AssocMaxWallDurationPerJobLimit",
        "the job's time limit is above its association's",
    ),
    (
        "DependencyNeverSatisfied",
        "the job depends on a job that will never complete",
    ),
];

/// Whether a pending job with `reason` can never start as submitted (or,
/// with `immediate`, cannot start now); the explanation if so.
pub fn cannot_place(reason: &str, immediate: bool) -> Option<String> {
    let code = reason.split([',', ' ']).next().unwrap_or("").trim();
    if let Some((_, why)) = NEVER_REASONS.iter().find(|(r, _)| *r == code) {
        return Some(format!("{reason}: {why}"));
    }
    if immediate && !code.is_empty() && code != "None" {
        return Some(format!(
            "{reason}: the nodes are not free now and slurm_immediate is set"
        ));
    }
    None
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
                Err(err) => tracing::warn!("cannot cancel SLURM job {job}: {err:#}"),
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
async fn slurm_command(program: &str, args: &[String]) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("`{program}` did not answer within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("cannot run `{program}`: is SLURM's client installed?"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            err.trim()
        )
    }
}

/// Run the experiment as one SLURM job and return its outcome.
pub async fn run(settings: &RunSettings, slurm: &SlurmSettings) -> anyhow::Result<RunOutcome> {
    // The job may wait in the queue before anything registers: the poller
    // stops the registration clock while the job is pending (LaunchEvent::
    // Waiting / Running) and ends the run when the queue wait is over.

    // Without SLURM's client there is nothing to run: say so before a run
    // folder exists.
    for program in ["sbatch", "squeue", "scancel"] {
        if find_on_path(program).is_none() {
            anyhow::bail!(
                "`{program}` is not on PATH: the slurm runner needs SLURM's client commands \
                 (run peerlab on a host that submits jobs, or install slurm-client)"
            );
        }
    }
    // Before the job is submitted: a stop from now on cancels it and ends
    // the run as interrupted.
    let interrupt = Interrupt::listen().context("cannot listen for stop signals")?;
    let exe = std::env::current_exe().context("cannot find the peerlab executable")?;
    let placement = plan(
        settings.instances,
        slurm.nodes,
        settings.instances_per_process,
    );
    let bind: SocketAddr = ([0, 0, 0, 0], settings.sync_port).into();
    let prepared =
        supervise::prepare(settings, RUNNER, slurm.nodes, placement.clone(), bind).await?;
    // The nodes see the run folder by its absolute path (on the shared file system).
    let run_dir = fs::canonicalize(&prepared.run_dir)
        .with_context(|| format!("cannot find the run folder {}", prepared.run_dir.display()))?;
    let slurm_dir = run_dir.join(SLURM_DIR);
    fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    let sync = format!(
        "{}:{}",
        bracket_ipv6(&slurm.sync_host),
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
            };
            tokio::spawn(poller.run());
        }
        Err(err) => {
            let _ = tx.send(LaunchEvent::Failed(format!("{err:#}")));
        }
    }
    drop(tx);
    let summary = supervise::supervise(
        settings,
        RUNNER,
        slurm.nodes,
        prepared,
        &placement,
        &mut launcher,
        events,
        &interrupt,
    )
    .await?;
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
async fn submit(job: &JobSpec, token: &str) -> anyhow::Result<String> {
    let script = render_script(job)?;
    let path = job.run_dir.join(SLURM_DIR).join("job.sh");
    fs::write(&path, &script).with_context(|| format!("cannot write {}", path.display()))?;
    let mut cmd = tokio::process::Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(&path)
        .env(TOKEN_ENV, token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .context("`sbatch` did not answer within a minute: is slurmctld reachable?")?
        .context(
            "cannot run `sbatch`: the slurm runner needs SLURM's client commands (sbatch, squeue, scancel) on PATH",
        )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let why = stderr
            .lines()
            .map(|l| l.trim().trim_start_matches("sbatch: error: ").trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        anyhow::bail!(
            "SLURM refused the job ({}): {why}",
            path.strip_prefix(&job.run_dir).unwrap_or(&path).display()
        );
    }
    let id = parse_sbatch_id(&stdout).with_context(|| {
        format!(
            "sbatch printed no job id: {:?}",
            stdout.trim().chars().take(200).collect::<String>()
        )
    })?;
    let _ = fs::write(
        job.run_dir.join(SLURM_DIR).join("job_id"),
        format!("{id}\n"),
    );
    Ok(id)
}

/// How a job ended, in words: its state, SLURM's reason when it says
/// more than `None`, and the batch script's exit code or signal.
pub fn describe_end(job: &str, row: &JobRow) -> String {
    let mut text = format!("SLURM job {job} {}", row.state.describe());
    if !row.reason.is_empty() && row.reason != "None" {
        let _ = write!(text, " ({})", row.reason);
    }
    match row.exit {
        Some((0, 0)) | None => {}
        Some((code, 0)) => {
            let _ = write!(text, ", exit code {code}");
        }
        Some((_, sig)) => {
            let _ = write!(text, ", signal {sig}");
        }
    }
    text
}

/// Follows one job until it ends, turning what SLURM and the agents say
/// into [`LaunchEvent`]s.
struct Poller {
    job: String,
    run_dir: PathBuf,
    nodes: u32,
    instances: u32,
    immediate: bool,
    poll_interval: Duration,
    queue_timeout: Duration,
    running: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<LaunchEvent>,
}

impl Poller {
    async fn run(self) {
        let submitted = Instant::now();
        let mut offsets = vec![0u64; self.nodes as usize];
        let mut last_state = String::new();
        let mut started = false;
        let mut failed = false;
        let mut query_errors = 0u32;
        let end = loop {
            self.read_exits(&mut offsets);
            let row = match self.query_queue().await {
                Ok(row) => {
                    query_errors = 0;
                    row
                }
                Err(err) => {
                    query_errors += 1;
                    if query_errors == 1 || query_errors.is_multiple_of(30) {
                        tracing::warn!("cannot ask SLURM about job {}: {err:#}", self.job);
                    }
                    tokio::time::sleep(self.poll_interval).await;
                    continue;
                }
            };
            let row = match row {
                Some(row) if !row.state.is_terminal() => row,
                // Gone from the queue or over: ask the accounting for how it ended.
                other => break self.query_end(other).await,
            };
            if row.state != JobState::Pending && !started {
                // Out of the queue: the node agents are starting.
                started = true;
                let _ = self.tx.send(LaunchEvent::Running);
            }
            let state = self.describe(&row);
            if state != last_state {
                let _ = self.tx.send(LaunchEvent::State(state.clone()));
                last_state = state;
            }
            if row.state == JobState::Pending && !failed {
                let why = cannot_place(&row.reason, self.immediate).or_else(|| {
                    (submitted.elapsed() >= self.queue_timeout).then(|| {
                        format!(
                            "{}: still pending after {:.0} s in the queue",
                            row.reason,
                            self.queue_timeout.as_secs_f64()
                        )
                    })
                });
                if let Some(why) = why {
                    failed = true;
                    let _ = self.tx.send(LaunchEvent::Failed(format!(
                        "SLURM cannot place job {}: {why}",
                        self.job
                    )));
                }
            }
            tokio::time::sleep(self.poll_interval).await;
        };
        self.read_exits(&mut offsets);
        let how = match &end {
            Some(row) => describe_end(&self.job, row),
            None => format!("SLURM job {} left the queue (its end is unknown)", self.job),
        };
        let clean = end.as_ref().is_some_and(|r| r.state == JobState::Completed);
        let _ = self.tx.send(LaunchEvent::State(how.clone()));
        self.running.store(false, Ordering::SeqCst);
        let _ = self.tx.send(LaunchEvent::Exited {
            ids: (1..=self.instances).collect(),
            exit_code: end.as_ref().and_then(|r| r.exit.map(|(c, _)| c)),
            how,
            clean,
            stderr: Some(self.run_dir.join(SLURM_DIR).join("job.out")),
        });
    }

    fn describe(&self, row: &JobRow) -> String {
        let job = &self.job;
        match row.state {
            JobState::Pending => format!("SLURM job {job} pending ({})", row.reason),
            JobState::Running if !row.nodes.is_empty() => {
                format!("SLURM job {job} running on {}", row.nodes)
            }
            _ => format!("SLURM job {job} {}", row.state.describe()),
        }
    }

    /// The job's row in `squeue`, `None` once SLURM no longer knows it.
    async fn query_queue(&self) -> anyhow::Result<Option<JobRow>> {
        let args: Vec<String> = ["-h", "-t", "all", "-j", &self.job, "-o", SQUEUE_FORMAT]
            .map(String::from)
            .to_vec();
        match slurm_command("squeue", &args).await {
            Ok(out) => Ok(parse_squeue(&out, &self.job)),
            Err(err) if format!("{err:#}").contains("Invalid job id") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// How the job ended: the accounting's record, else `scontrol`'s, else
    /// the last row seen.
    async fn query_end(&self, last: Option<JobRow>) -> Option<JobRow> {
        let args: Vec<String> = ["-n", "-P", "-X", "-j", &self.job, "-o", SACCT_FIELDS]
            .map(String::from)
            .to_vec();
        if let Ok(out) = slurm_command("sacct", &args).await
            && let Some(row) = parse_sacct(&out, &self.job)
            && row.state.is_terminal()
        {
            return Some(row);
        }
        let args: Vec<String> = ["-o", "show", "job", &self.job].map(String::from).to_vec();
        if let Ok(out) = slurm_command("scontrol", &args).await
            && let Some(row) = parse_scontrol(&out, &self.job)
        {
            return Some(row);
        }
        last
    }

    /// Forward the lines the agents added to their exit files.
    fn read_exits(&self, offsets: &mut [u64]) {
        for (i, offset) in offsets.iter_mut().enumerate() {
            let path = self.run_dir.join(exits_file(i as u32 + 1));
            let Ok(mut file) = fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // A line still being written: read it whole next time.
                    Ok(_) if !line.ends_with('\n') => break,
                    Ok(n) => {
                        *offset += n as u64;
                        match serde_json::from_str::<AgentExit>(line.trim()) {
                            Ok(exit) => {
                                let _ = self.tx.send(LaunchEvent::Exited {
                                    ids: exit.ids,
                                    exit_code: exit.exit_code,
                                    how: exit.how,
                                    clean: exit.clean,
                                    stderr: exit.stderr.map(|p| self.run_dir.join(p)),
                                });
                            }
                            Err(err) => {
                                tracing::warn!("ignoring a bad line in {}: {err}", path.display())
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

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
        let p = plan(5, 2, 2);
        let rows: Vec<(u32, u32, u32)> = p.iter().map(|p| (p.id, p.node, p.process)).collect();
        assert_eq!(
            rows,
            vec![(1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 2, 1), (5, 2, 1)]
        );
        assert!(p.iter().all(|p| p.host == UNPLACED_HOST));
    }

    fn run_settings(instances: u32) -> RunSettings {
        RunSettings {
            experiment: "e".into(),
            config_path: None,
            scenario_path: "e.scenario".into(),
            config: Default::default(),
            instances,
            instances_per_process: 1,
            seed: 1,
            time_scale: 0.05,
            timeout: Duration::from_secs(13),
            registration_timeout: Duration::from_secs(30),
            start_delay: Duration::from_secs(1),
            output_root: "output".into(),
            plugin_path: Vec::new(),
            modules: Vec::new(),
            sync_port: 0,
            progress: false,
            sources: Vec::new(),
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
        let s = SlurmSettings::from_experiment(&exp, &run).unwrap();
        assert_eq!(s.nodes, 3);
        assert_eq!(s.sync_host, "fs0");
        assert_eq!(s.partition.as_deref(), Some("defq"));
        assert_eq!(s.sbatch_options, vec!["--constraint=cpunode".to_string()]);
        assert!(s.immediate);
        assert_eq!(s.local_dir, Some(PathBuf::from("/local/scratch")));
        // 30 s registration + 1 s start delay + 13 s run + the margin.
        assert_eq!(s.time_limit, Duration::from_secs(44) + TIME_MARGIN);

        // Defaults: this host's name, no partition, no node-local folder.
        exp.sync_host = None;
        let s = SlurmSettings::from_experiment(&exp, &run_settings(9)).unwrap();
        assert_eq!(Some(s.sync_host), this_host_name());
        assert_eq!(s.local_dir, None);

        exp.nodes = 10;
        assert_eq!(
            SlurmSettings::from_experiment(&exp, &run),
            Err(SlurmConfigError::MoreNodesThanInstances {
                nodes: 10,
                instances: 9
            })
        );
        exp.nodes = 0;
        assert_eq!(
            SlurmSettings::from_experiment(&exp, &run),
            Err(SlurmConfigError::NoNodes)
        );
        exp.nodes = 1;
        run.config.insert(LOCAL_DIR_KEY.into(), "scratch".into());
        assert_eq!(
            SlurmSettings::from_experiment(&exp, &run),
            Err(SlurmConfigError::RelativeLocalDir("scratch".into()))
        );
    }

    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(format_time_limit(Duration::from_secs(0)), "00:01:00");
        assert_eq!(format_time_limit(Duration::from_secs(61)), "00:02:00");
        assert_eq!(format_time_limit(Duration::from_secs(3600)), "01:00:00");
        assert_eq!(
            format_time_limit(Duration::from_secs(2 * 86400 + 90)),
            "2-00:02:00"
        );
    }

    fn spec() -> JobSpec {
        JobSpec {
            run_id: "0003-benaloh".into(),
            run_dir: "/shared/exp/output/0003-benaloh".into(),
            exe: "/shared/peerlab/bin/peerlab".into(),
            sync: "fs0.das5:41234".into(),
            instances: 9,
            instances_per_process: 1,
            slurm: SlurmSettings {
                partition: Some("defq".into()),
                sbatch_options: vec!["--constraint=cpunode".into(), "--time=00:15:00".into()],
                nodes: 3,
                time_limit: Duration::from_secs(165 + 60 + 1 + 120),
                sync_host: "fs0.das5".into(),
                immediate: false,
                local_dir: Some("/local/peerlab".into()),
                poll_interval: Duration::from_secs(1),
                queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            },
        }
    }

    #[test]
    fn the_batch_script_starts_one_agent_per_node() {
        expect![[r#"
            #!/bin/sh
            #SBATCH --job-name=peerlab-0003-benaloh
            #SBATCH --nodes=3
            #SBATCH --ntasks-per-node=1
            #SBATCH --time=00:06:00
            #SBATCH --output=/shared/exp/output/0003-benaloh/slurm/job.out
            #SBATCH --chdir=/shared/exp/output/0003-benaloh
            #SBATCH --partition=defq
            #SBATCH --constraint=cpunode
            #SBATCH --time=00:15:00
            # Written by peerlab for run 0003-benaloh: one node agent per node, each starting its
            # share of the 9 instances. The run token comes in $PEERLAB_RUN_TOKEN.
            export NO_COLOR=1
            exec srun --nodes=3 --ntasks-per-node=1 --kill-on-bad-exit=0 \
                /shared/peerlab/bin/peerlab -v node-agent --run-dir /shared/exp/output/0003-benaloh --sync fs0.das5:41234 --instances 9 --nodes 3 --instances-per-process 1 --local-dir /local/peerlab
        "#]]
        .assert_eq(&render_script(&spec()).unwrap());
    }

    #[test]
    fn the_batch_script_quotes_and_refuses_what_sh_or_sbatch_cannot_carry() {
        let mut job = spec();
        job.slurm.partition = None;
        job.slurm.sbatch_options.clear();
        job.slurm.local_dir = None;
        job.exe = "/opt/my tools/peerlab".into();
        let text = render_script(&job).unwrap();
        assert!(
            text.contains("'/opt/my tools/peerlab' -v node-agent"),
            "{text}"
        );
        assert!(!text.contains("--partition"), "{text}");
        assert!(!text.contains("--local-dir"), "{text}");
        job.run_dir = "/shared/my runs/0003".into();
        assert!(matches!(
            render_script(&job),
            Err(ScriptError::UnsafePath(_))
        ));
        let mut job = spec();
        job.slurm.sbatch_options = vec!["--a\n#SBATCH --b".into()];
        assert!(matches!(
            render_script(&job),
            Err(ScriptError::MultilineOption(_))
        ));
    }

    #[test]
    fn squeue_rows_are_found_by_job_id() {
        let out = "11|RUNNING|None|n[1-3]\n12|PENDING|PartitionNodeLimit|\n";
        assert_eq!(
            parse_squeue(out, "12"),
            Some(JobRow {
                id: "12".into(),
                state: JobState::Pending,
                reason: "PartitionNodeLimit".into(),
                nodes: String::new(),
                exit: None,
            })
        );
        let row = parse_squeue(out, "11").unwrap();
        assert_eq!(row.state, JobState::Running);
        assert_eq!(row.nodes, "n[1-3]");
        assert_eq!(parse_squeue(out, "1"), None);
        assert_eq!(parse_squeue("", "12"), None);
        let row = parse_squeue("7|COMPLETING|None|n1\n", "7").unwrap();
        assert_eq!(row.state, JobState::Completing);
        assert!(!row.state.is_terminal());
        let row = parse_squeue("8|PENDING|ReqNodeNotAvail, UnavailableNodes:n4|\n", "8").unwrap();
        assert_eq!(row.reason, "ReqNodeNotAvail, UnavailableNodes:n4");
    }

    #[test]
    fn sacct_and_scontrol_give_the_end_and_exit_code() {
        let row = parse_sacct("12|CANCELLED by 0|0:15|None|n[1-3]\n", "12").unwrap();
        assert_eq!(row.state, JobState::Cancelled);
        assert!(row.state.is_terminal());
        assert_eq!(row.exit, Some((0, 15)));
        assert_eq!(row.nodes, "n[1-3]");
        let row = parse_sacct("12|FAILED|3:0|NonZeroExitCode|n1\n", "12").unwrap();
        assert_eq!((row.state, row.exit), (JobState::Failed, Some((3, 0))));
        assert_eq!(parse_sacct("13|COMPLETED|0:0\n", "12"), None);
        assert_eq!(parse_sacct("garbage", "12"), None);

        let line = "JobId=6 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode \
                    Dependency=(null) ExitCode=3:0 NodeList=n1 BatchHost=n1";
        let row = parse_scontrol(line, "6").unwrap();
        assert_eq!(row.state, JobState::Failed);
        assert_eq!(row.reason, "NonZeroExitCode");
        assert_eq!(row.exit, Some((3, 0)));
        assert_eq!(row.nodes, "n1");
        let pending =
            "JobId=2 JobState=PENDING Reason=PartitionNodeLimit ExitCode=0:0 NodeList=(null)";
        let row = parse_scontrol(pending, "2").unwrap();
        assert_eq!((row.state, row.nodes.as_str()), (JobState::Pending, ""));
        assert_eq!(parse_scontrol(line, "60"), None);
    }

    #[test]
    fn job_ends_are_described_with_reason_and_exit() {
        let row = |state: &str, reason: &str, exit| JobRow {
            id: "7".into(),
            state: JobState::parse(state),
            reason: reason.into(),
            nodes: String::new(),
            exit,
        };
        assert_eq!(
            describe_end("7", &row("FAILED", "JobLaunchFailure", Some((0, 53)))),
            "SLURM job 7 failed (JobLaunchFailure), signal 53"
        );
        assert_eq!(
            describe_end("7", &row("COMPLETED", "None", Some((0, 0)))),
            "SLURM job 7 completed"
        );
        assert_eq!(
            describe_end("7", &row("FAILED", "NonZeroExitCode", Some((1, 0)))),
            "SLURM job 7 failed (NonZeroExitCode), exit code 1"
        );
        assert_eq!(
            describe_end("7", &row("TIMEOUT", "TimeLimit", None)),
            "SLURM job 7 ended by its time limit (TimeLimit)"
        );
    }

    #[test]
    fn sbatch_ids_and_states_parse() {
        assert_eq!(parse_sbatch_id("12\n"), Some("12".into()));
        assert_eq!(parse_sbatch_id("12;das5\n"), Some("12".into()));
        assert_eq!(parse_sbatch_id("Submitted batch job 12\n"), None);
        assert_eq!(parse_sbatch_id(""), None);
        assert_eq!(JobState::parse("CANCELLED by 1000"), JobState::Cancelled);
        assert_eq!(JobState::parse("R"), JobState::Running);
        assert_eq!(
            JobState::parse("REQUEUED"),
            JobState::Other("REQUEUED".into())
        );
        assert!(!JobState::parse("REQUEUED").is_terminal());
        assert_eq!(parse_exit_code("1:9"), Some((1, 9)));
        assert_eq!(parse_exit_code("x"), None);
    }

    #[test]
    fn unplaceable_reasons_fail_and_waiting_reasons_wait() {
        let why = cannot_place("PartitionNodeLimit", false).unwrap();
        assert!(why.starts_with("PartitionNodeLimit: "), "{why}");
        assert!(cannot_place("ReqNodeNotAvail, UnavailableNodes:n4", false).is_some());
        assert!(cannot_place("BadConstraints", false).is_some());
        assert!(cannot_place("PartitionConfig", false).is_some());
        assert_eq!(cannot_place("Resources", false), None);
        assert_eq!(cannot_place("Priority", false), None);
        assert_eq!(cannot_place("None", false), None);
        assert_eq!(cannot_place("", true), None);
        assert_eq!(cannot_place("None", true), None);
        let why = cannot_place("Resources", true).unwrap();
        assert!(why.contains("slurm_immediate"), "{why}");
    }

    #[test]
    fn agent_exit_lines_round_trip() {
        let exit = AgentExit {
            ids: vec![4, 5],
            exit_code: Some(101),
            how: "exit code 101".into(),
            clean: false,
            stderr: Some("n2/node002/process001.stderr".into()),
        };
        let line = serde_json::to_string(&exit).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<AgentExit>(&line).unwrap(), exit);
        assert_eq!(exits_file(2), PathBuf::from("slurm/node002.exits.jsonl"));
    }
}
