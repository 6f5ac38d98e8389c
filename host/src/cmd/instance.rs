//! `peerlab instance` (hidden): the process the runners start. It runs a
//! set of a run's instances; everything about the run comes from the run
//! folder's `run.json`, the token from the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::runner::folder::RunRecord;
use crate::runner::supervise::TOKEN_ENV;
use peerlab_runtime::process::{self, ProcessArgs};

/// Arguments of `peerlab instance`.
#[derive(Args, Debug)]
pub struct InstanceArgs {
    /// The run folder (holds run.json)
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The sync server's address
    #[arg(long)]
    pub sync: SocketAddr,
    /// Host name for the output layout
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Node number for the output layout
    #[arg(long, default_value_t = 1)]
    pub node: u32,
    /// Process number on the node
    #[arg(long, default_value_t = 1)]
    pub process: u32,
    /// Instance ids to run, e.g. `1-5,8`
    #[arg(long)]
    pub ids: String,
    /// Address the instances' sockets bind to and advertise (the SLURM node
    /// agent sets PEERLAB_BIND_IP to the node's address)
    #[arg(long, default_value = "127.0.0.1", env = "PEERLAB_BIND_IP")]
    pub bind_ip: IpAddr,
}

/// Entry point of `peerlab instance`.
pub fn run(_global: &GlobalArgs, args: InstanceArgs) -> anyhow::Result<u8> {
    let token = std::env::var(TOKEN_ENV).with_context(|| {
        format!("{TOKEN_ENV} is not set: instance processes are started by `peerlab run`")
    })?;
    let ids = parse_ids(&args.ids).with_context(|| format!("bad --ids {:?}", args.ids))?;
    capture_stdout(&args, &ids);
    let record_path = args.run_dir.join("run.json");
    let record: RunRecord =
        peerlab_run::read::read_run_record(&args.run_dir).map_err(|e| match e {
            peerlab_run::read::RecordError::Io(e) => {
                anyhow::Error::new(e).context(format!("cannot read {}", record_path.display()))
            }
            e => anyhow::Error::new(e)
                .context(format!("{} is not a run record", record_path.display())),
        })?;

    let shared = crate::experiment::shared::load_shared(&record, &token)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .min(ids.len().max(1)),
        )
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let ok = rt.block_on(process::run(
        ProcessArgs {
            run_dir: args.run_dir.clone(),
            sync: args.sync,
            token,
            host: args.host,
            node: args.node,
            process: args.process,
            ids,
            bind_ip: args.bind_ip,
        },
        shared,
        &record,
    ))?;
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}

/// Send what plugins print to stdout (`println!`) to the `.err` of this
/// process's first instance: the runners give instance processes no
/// stdout, so it would vanish. Each line is appended at once, like the
/// instance's own log lines. Several instances share one stdout: the note
/// says whose it is.
fn capture_stdout(args: &InstanceArgs, ids: &[u32]) {
    use std::os::fd::AsRawFd;
    let Some(&first) = ids.first() else {
        return;
    };
    let paths = crate::runner::folder::InstancePaths::new(&args.host, args.node, first);
    let path = args.run_dir.join(&paths.err);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    if ids.len() > 1 {
        use std::io::Write;
        let _ = writeln!(
            file,
            "peerlab: what the modules of process {} (instances {}) print to stdout is written here",
            args.process,
            crate::util::ranges(ids)
        );
    }
    // SAFETY: dup2 onto fd 1 only replaces which file stdout writes to;
    // `file` stays open until then and is closed after (fd 1 keeps its own).
    unsafe {
        libc::dup2(file.as_raw_fd(), libc::STDOUT_FILENO);
    }
}

/// `1-3,5` -> `[1, 2, 3, 5]`.
pub fn parse_ids(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut ids = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse()?, b.trim().parse()?);
                anyhow::ensure!(a <= b && a > 0, "range {part} is empty or starts at 0");
                ids.extend(a..=b);
            }
            None => ids.push(part.parse()?),
        }
    }
    anyhow::ensure!(!ids.is_empty(), "no ids");
    Ok(ids)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_parse_from_ranges() {
        assert_eq!(super::parse_ids("1-3,5").unwrap(), vec![1, 2, 3, 5]);
        assert!(super::parse_ids("3-1").is_err());
        assert!(super::parse_ids("").is_err());
        assert_eq!(
            crate::util::ranges(&super::parse_ids("1-3,5").unwrap()),
            "1-3,5"
        );
    }
}
