//! The SLURM runner's node half, behind the hidden `peerlab node-agent`:
//! started by `srun` inside a SLURM job, one per node. It learns who it is from SLURM's variables (`SLURM_PROCID`,
//! `SLURM_NODEID`, `SLURMD_NODENAME`; never `hostname`), starts its share
//! of the run's instances as `peerlab instance` processes and external
//! programs (the local runner's spawners; which is which:
//! `node_processes.rs`), writes one line per ended process to
//! `slurm/node<NNN>.exits.jsonl` for the submitting host, and, when the
//! outputs go to a node-local directory, copies them into the run folder
//! as each process ends and once more at the end, whatever happened.
//!
//! It does not talk to the sync server (the instances do) and does not
//! decide statuses (the supervisor on the submitting host does). It only
//! checks now and then that the server still listens: when `peerlab run` is
//! gone (killed outright, its host's port closed) it stops its instances,
//! since one stuck in a callback would never notice and the job would run
//! to its time limit. Its instance processes die with it (see
//! [`crate::runner::local::spawn_instances`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::node_processes::NodeProcesses;
use super::{AgentExit, SLURM_DIR, exits_file, node_share};
use crate::runner::RunError;
use crate::runner::external::Start;
use crate::runner::folder;
use crate::runner::local::spawn_instances;
use crate::runner::status::describe_exit;
use crate::runner::supervise::TOKEN_ENV;

/// Environment variable telling instance processes which address to bind
/// and advertise (the one this node reaches the sync server from).
pub const BIND_IP_ENV: &str = "PEERLAB_BIND_IP";

/// How long instance processes get between TERM and KILL when the job is
/// cancelled (SLURM's own KillWait is usually longer).
const GRACE: Duration = Duration::from_secs(3);

/// How often the agent checks that the sync server still listens.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Refused connections in a row after which the server counts as gone (a
/// refusal is the server's host saying nothing listens on the port; a
/// timeout proves nothing and is not counted).
const PROBE_REFUSALS: u32 = 2;

/// Why a node agent could not run its share: its identity, its token,
/// the sync server's address, or its folders and processes.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{TOKEN_ENV} is not set: the slurm runner passes it through sbatch's environment")]
    NoToken(#[source] std::env::VarError),
    #[error(
        "cannot resolve the sync server {sync}: set sync_host to a name or address the nodes can reach"
    )]
    Resolve {
        sync: String,
        #[source]
        source: io::Error,
    },
    #[error("the sync server name {sync} has no address")]
    NoAddress { sync: String },
    #[error("cannot prepare the node-local folder {}", path.display())]
    LocalFolder {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {}", path.display())]
    OpenExits {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen for stop signals")]
    Signals(#[source] io::Error),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Who this agent is, from SLURM's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `SLURM_PROCID`: the task's rank in the job step.
    pub procid: u32,
    /// `SLURM_NODEID`: the node's index in the job (0-based); it picks the share.
    pub node_index: u32,
    /// `SLURMD_NODENAME`: the node's name, the output folder's host part.
    pub node_name: String,
}

/// Why SLURM's variables do not say who this agent is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "{0} is not set: `peerlab node-agent` runs only under srun, started by the slurm runner"
    )]
    Missing(&'static str),
    #[error("{name} is {value:?}, not a number")]
    NotANumber { name: &'static str, value: String },
    #[error("SLURMD_NODENAME {0:?} cannot name a folder")]
    BadNodeName(String),
    #[error(
        "task {procid} runs on node index {node_index}: the job must run exactly one node agent per node (srun --ntasks-per-node=1)"
    )]
    NotOnePerNode { procid: u32, node_index: u32 },
}

impl Identity {
    /// Read the identity through `get` (the environment, or a map in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, IdentityError> {
        let number = |name: &'static str| -> Result<u32, IdentityError> {
            let value = get(name).ok_or(IdentityError::Missing(name))?;
            value
                .trim()
                .parse()
                .map_err(|_| IdentityError::NotANumber { name, value })
        };
        let procid = number("SLURM_PROCID")?;
        let node_index = number("SLURM_NODEID")?;
        let node_name = get("SLURMD_NODENAME")
            .map(|s| s.trim().to_string())
            .ok_or(IdentityError::Missing("SLURMD_NODENAME"))?;
        if node_name.is_empty()
            || node_name == "."
            || node_name == ".."
            || node_name.contains(['/', '\0'])
        {
            return Err(IdentityError::BadNodeName(node_name));
        }
        if procid != node_index {
            return Err(IdentityError::NotOnePerNode { procid, node_index });
        }
        Ok(Self {
            procid,
            node_index,
            node_name,
        })
    }

    /// The node number in the output layout (1-based).
    pub fn node(&self) -> u32 {
        self.node_index + 1
    }
}

/// What a node agent is told on its command line (the batch script's
/// `srun` line writes it; `peerlab node-agent` parses it).
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// The run folder, on the file system every node shares.
    pub run_dir: PathBuf,
    /// The sync server, as `host:port` reachable from the nodes.
    pub sync: String,
    /// Instances in the whole run.
    pub instances: u32,
    /// Nodes in the job (one agent each).
    pub nodes: u32,
    /// Instances hosted by one OS process.
    pub instances_per_process: u32,
    /// Write outputs under this node-local directory and copy them back.
    pub local_dir: Option<PathBuf>,
}

/// Run this node's agent to its end: who it is from SLURM's variables,
/// the token from the environment, then its share of the instances.
/// Whether every one of its instance processes ended cleanly.
pub fn run(args: AgentArgs) -> Result<bool, AgentError> {
    let id = Identity::from_vars(|k| std::env::var(k).ok())?;
    let token = std::env::var(TOKEN_ENV).map_err(AgentError::NoToken)?;
    let sync = resolve(&args.sync)?;
    let bind = local_ip_towards(sync).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    // SAFETY: no other thread exists yet (the runtime starts below).
    unsafe { std::env::set_var(BIND_IP_ENV, bind.to_string()) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::AsyncRuntime)?;
    rt.block_on(agent(args, id, token, sync, bind))
}

async fn agent(
    args: AgentArgs,
    id: Identity,
    token: String,
    sync: SocketAddr,
    bind: IpAddr,
) -> Result<bool, AgentError> {
    let share: Vec<u32> = node_share(args.instances, args.nodes, id.node_index).collect();
    let node = id.node();
    let host = id.node_name.clone();
    tracing::info!(
        "node agent on {host} (node {node} of {}, task {}): instances {}",
        args.nodes,
        id.procid,
        crate::util::ranges(&share)
    );
    if share.is_empty() {
        return Ok(true);
    }
    tracing::info!(%sync, %bind, "sync server");

    // Where instances write: the run folder, or a node-local copy of its inputs.
    let local = match &args.local_dir {
        Some(dir) => {
            let run_name = args
                .run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            let local = dir.join(format!("peerlab-{run_name}-{host}"));
            copy_inputs(&args.run_dir, &local).map_err(|source| AgentError::LocalFolder {
                path: local.clone(),
                source,
            })?;
            Some(local)
        }
        None => None,
    };
    let out_dir = local.clone().unwrap_or_else(|| args.run_dir.clone());
    let exits_path = args.run_dir.join(exits_file(node));
    let slurm_dir = args.run_dir.join(SLURM_DIR);
    fs::create_dir_all(&slurm_dir).map_err(RunError::create(slurm_dir))?;
    let mut exits = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&exits_path)
        .map_err(|source| AgentError::OpenExits {
            path: exits_path.clone(),
            source,
        })?;

    let exe = std::env::current_exe().map_err(RunError::Executable)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Process groups of the instance processes still running, by process
    // number (a reaped leader's id may belong to someone else already).
    let mut started: BTreeMap<u32, u32> = BTreeMap::new();
    let mut all_clean = true;
    let processes = match NodeProcesses::plan(
        &args.run_dir,
        &share,
        args.instances,
        args.instances_per_process,
    ) {
        Ok(p) => p,
        Err(why) => {
            report(
                &mut exits,
                &AgentExit {
                    ids: share.clone(),
                    exit_code: None,
                    how: format!("could not be started on {host}: {why}"),
                    clean: false,
                    stderr: None,
                    host: Some(host.clone()),
                },
            );
            all_clean = false;
            // Nothing to start; the node-local folder is still cleaned up.
            NodeProcesses::none()
        }
    };
    for (p, ids) in processes.groups.iter().enumerate() {
        let process = p as u32 + 1;
        let ids = ids.clone();
        // An external instance's stderr is its .err already: no process file.
        let spawned = if processes.is_external(ids[0]) {
            let start = Start {
                run_dir: &out_dir,
                sync,
                token: &token,
                bind,
                host: &host,
                node,
                id: ids[0],
            };
            processes.spawn_external(&start).map(|c| (c, None))
        } else {
            spawn_instances(&exe, &out_dir, sync, &token, &host, node, process, &ids)
                .map(|(c, _)| (c, Some(folder::process_stderr(&host, node, process))))
                .map_err(|err| crate::util::chain(&err))
        };
        match spawned {
            Ok((mut child, stderr)) => {
                started.insert(process, child.id().unwrap_or(0));
                let tx = tx.clone();
                tokio::spawn(async move {
                    let status = child.wait().await;
                    let _ = tx.send((process, ids, stderr, status));
                });
            }
            Err(why) => {
                all_clean = false;
                report(
                    &mut exits,
                    &AgentExit {
                        ids,
                        exit_code: None,
                        how: format!("could not be started on {host}: {why}"),
                        clean: false,
                        stderr: None,
                        host: Some(host.clone()),
                    },
                );
            }
        }
    }
    drop(tx);

    let signal = |kind| tokio::signal::unix::signal(kind).map_err(AgentError::Signals);
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut stopping = false;
    let kill_at = tokio::time::sleep(Duration::MAX);
    tokio::pin!(kill_at);
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refusals = 0u32;
    let mut copied: BTreeSet<u32> = BTreeSet::new();
    loop {
        tokio::select! {
            ended = rx.recv() => {
                let Some((process, ids, stderr, status)) = ended else { break };
                started.remove(&process);
                let (exit_code, how, clean) = match &status {
                    Ok(s) => {
                        let (code, how) = describe_exit(s);
                        (code, how, s.success())
                    }
                    Err(err) => (None, format!("could not be waited for: {err}"), false),
                };
                all_clean &= clean;
                if let Some(local) = &local {
                    let dir = folder::instance_dir(&host, node);
                    if let Err(err) = copy_process_files(&local.join(&dir), &args.run_dir.join(&dir), process, &ids) {
                        tracing::error!("cannot copy process {process}'s outputs back: {err}");
                    }
                    copied.insert(process);
                }
                report(&mut exits, &AgentExit {
                    ids,
                    exit_code,
                    how,
                    clean,
                    stderr,
                    host: Some(host.clone()),
                });
            }
            _ = term.recv(), if !stopping => {
                tracing::warn!("stopping: SIGTERM (the job is being cancelled)");
                stopping = true;
                signal_all(&started, libc::SIGTERM);
                kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
            }
            _ = int.recv(), if !stopping => {
                tracing::warn!("stopping: SIGINT");
                stopping = true;
                signal_all(&started, libc::SIGTERM);
                kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
            }
            _ = probe.tick(), if !stopping => {
                refusals = if server_refuses(sync).await { refusals + 1 } else { 0 };
                if refusals >= PROBE_REFUSALS {
                    tracing::warn!(
                        "stopping: the sync server at {sync} is gone (connection refused {refusals} times in a row): `peerlab run` has ended"
                    );
                    stopping = true;
                    signal_all(&started, libc::SIGTERM);
                    kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
                }
            }
            _ = &mut kill_at, if stopping => {
                signal_all(&started, libc::SIGKILL);
                kill_at.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
            }
        }
    }

    if let Some(local) = &local {
        let dir = folder::instance_dir(&host, node);
        match copy_missing(&local.join(&dir), &args.run_dir.join(&dir)) {
            Ok(n) => {
                tracing::info!(
                    "copied outputs of {} processes (and {n} more files) back to the run folder",
                    copied.len()
                );
                let _ = fs::remove_dir_all(local);
            }
            Err(err) => tracing::error!(
                "cannot copy {} back: {err}; the outputs stay in {}",
                dir.display(),
                local.display()
            ),
        }
    }
    Ok(all_clean)
}

/// Append one exit line and flush it for the submitting host's poller.
fn report(file: &mut fs::File, exit: &AgentExit) {
    if let Ok(line) = serde_json::to_string(exit) {
        let _ = writeln!(file, "{line}");
        let _ = file.flush();
        let _ = file.sync_data();
    }
}

/// Whether a connection to the sync server is refused (nothing listens).
/// A connection that opens is closed at once, before any hello: the server
/// forgets it without counting a refusal.
async fn server_refuses(sync: SocketAddr) -> bool {
    match tokio::time::timeout(PROBE_EVERY, tokio::net::TcpStream::connect(sync)).await {
        Ok(Err(err)) => err.kind() == io::ErrorKind::ConnectionRefused,
        Ok(Ok(_)) | Err(_) => false,
    }
}

fn signal_all(pgids: &BTreeMap<u32, u32>, signal: i32) {
    for &pgid in pgids.values().filter(|&&p| p != 0) {
        // SAFETY: kill has no memory-safety preconditions; a negative pid
        // names the process group the instance process leads.
        unsafe {
            libc::kill(-(pgid as i32), signal);
        }
    }
}

/// Resolve `host:port`, preferring IPv4.
fn resolve(sync: &str) -> Result<SocketAddr, AgentError> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = sync
        .to_socket_addrs()
        .map_err(|source| AgentError::Resolve {
            sync: sync.into(),
            source,
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| AgentError::NoAddress { sync: sync.into() })
}

/// The local address this node uses to reach `peer` (no packet is sent).
pub fn local_ip_towards(peer: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(peer).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Copy the run folder's top-level files (run.json and the inputs) into a
/// fresh node-local run folder.
pub fn copy_inputs(run_dir: &Path, local: &Path) -> io::Result<()> {
    fs::create_dir_all(local)?;
    for entry in fs::read_dir(run_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), local.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Copy the files of one ended process (its instances' files and its own)
/// from the node-local folder `from` to the run folder `to`. Returns how
/// many files were copied.
pub fn copy_process_files(from: &Path, to: &Path, process: u32, ids: &[u32]) -> io::Result<usize> {
    let mut prefixes: Vec<String> = ids
        .iter()
        .map(|&id| format!("{}.", folder::instance_stem(id)))
        .collect();
    prefixes.push(format!("process{process:03}."));
    let Some(entries) = entries_to_copy(from, to)? else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && prefixes.iter().any(|p| name.starts_with(p)) {
            fs::copy(entry.path(), to.join(&name))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The entries of `from`, with `to` created to receive them; `None` when
/// `from` does not exist (nothing was written there).
fn entries_to_copy(from: &Path, to: &Path) -> io::Result<Option<fs::ReadDir>> {
    let entries = match fs::read_dir(from) {
        Ok(e) => e,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    fs::create_dir_all(to)?;
    Ok(Some(entries))
}

/// Copy every file under `from` that `to` does not have yet (never
/// overwriting what is there: the supervisor may have appended to it).
/// Returns how many files were copied.
pub fn copy_missing(from: &Path, to: &Path) -> io::Result<usize> {
    let Some(entries) = entries_to_copy(from, to)? else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            n += copy_missing(&entry.path(), &target)?;
        } else if kind.is_file() && !target.exists() {
            fs::copy(entry.path(), &target)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn identity_comes_from_slurm_variables() {
        let id = Identity::from_vars(vars(&[
            ("SLURM_PROCID", "2"),
            ("SLURM_NODEID", "2"),
            ("SLURMD_NODENAME", "node317"),
            ("HOSTNAME", "ignored"),
        ]))
        .unwrap();
        assert_eq!(id.node_name, "node317");
        assert_eq!(id.node_index, 2);
        assert_eq!(id.node(), 3);
    }

    #[test]
    fn identity_errors_say_what_is_wrong() {
        let err =
            Identity::from_vars(vars(&[("SLURM_PROCID", "0"), ("SLURM_NODEID", "0")])).unwrap_err();
        assert_eq!(err, IdentityError::Missing("SLURMD_NODENAME"));
        assert!(err.to_string().contains("srun"), "{err}");
        let err = Identity::from_vars(vars(&[
            ("SLURM_PROCID", "x"),
            ("SLURM_NODEID", "0"),
            ("SLURMD_NODENAME", "n1"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            IdentityError::NotANumber {
                name: "SLURM_PROCID",
                ..
            }
        ));
        let err = Identity::from_vars(vars(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NODEID", "1"),
            ("SLURMD_NODENAME", "n2"),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            IdentityError::NotOnePerNode {
                procid: 3,
                node_index: 1
            }
        );
        let err = Identity::from_vars(vars(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NODEID", "0"),
            ("SLURMD_NODENAME", "../etc"),
        ]))
        .unwrap_err();
        assert!(matches!(err, IdentityError::BadNodeName(_)));
    }

    #[test]
    fn outputs_are_copied_back_per_process_then_whatever_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let local = tmp.path().join("local");
        fs::create_dir_all(&run).unwrap();
        fs::write(run.join("run.json"), "{}").unwrap();
        fs::write(run.join("experiment.scenario"), "@1 stop\n").unwrap();
        fs::create_dir_all(run.join("slurm")).unwrap();
        copy_inputs(&run, &local).unwrap();
        assert_eq!(fs::read_to_string(local.join("run.json")).unwrap(), "{}");
        assert!(!local.join("slurm").exists());

        let dir = folder::instance_dir("n2", 2);
        let (lnode, rnode) = (local.join(&dir), run.join(&dir));
        fs::create_dir_all(&lnode).unwrap();
        for f in [
            "00004.out",
            "00004.err",
            "00004.stats.jsonl",
            "00005.out",
            "process001.stderr",
            "process002.stderr",
        ] {
            fs::write(lnode.join(f), f).unwrap();
        }
        // Process 1 (instance 4) crashed: its files come back at once.
        assert_eq!(copy_process_files(&lnode, &rnode, 1, &[4]).unwrap(), 4);
        assert!(rnode.join("00004.err").exists());
        assert!(!rnode.join("00005.out").exists());
        // The supervisor notes why instance 4 ended; the final sweep keeps it.
        fs::write(
            rnode.join("00004.err"),
            "00004.err\npeerlab: ended abnormally\n",
        )
        .unwrap();
        assert_eq!(copy_missing(&local, &run).unwrap(), 2);
        assert!(rnode.join("00005.out").exists());
        assert!(rnode.join("process002.stderr").exists());
        assert!(
            fs::read_to_string(rnode.join("00004.err"))
                .unwrap()
                .contains("ended abnormally")
        );
        // Nothing to copy from a folder that was never created.
        assert_eq!(copy_missing(&tmp.path().join("none"), &run).unwrap(), 0);
    }

    #[test]
    fn the_local_address_towards_loopback_is_loopback() {
        let ip = local_ip_towards(([127, 0, 0, 1], 9).into()).unwrap();
        assert!(ip.is_loopback(), "{ip}");
    }
}
