//! `peerlab node-agent` (hidden): the node half of the SLURM runner,
//! started by `srun` inside the job, one per node. It parses its flags and
//! runs [`crate::runner::slurm::agent`]; all the work is there.

use std::path::PathBuf;

use clap::Args;

use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::runner::slurm::agent::{self, AgentArgs};

/// Arguments of `peerlab node-agent`.
#[derive(Args, Debug)]
pub struct NodeAgentArgs {
    /// The run folder, on the file system every node shares
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The sync server, as `host:port` reachable from the nodes
    #[arg(long)]
    pub sync: String,
    /// Instances in the whole run
    #[arg(long)]
    pub instances: u32,
    /// Nodes in the job (one agent each)
    #[arg(long)]
    pub nodes: u32,
    /// Instances hosted by one OS process
    #[arg(long, default_value_t = 1)]
    pub instances_per_process: u32,
    /// Write outputs under this node-local directory and copy them back
    #[arg(long)]
    pub local_dir: Option<PathBuf>,
}

/// Entry point of `peerlab node-agent`.
pub fn run(_global: &GlobalArgs, args: NodeAgentArgs) -> anyhow::Result<u8> {
    let ok = agent::run(AgentArgs {
        run_dir: args.run_dir,
        sync: args.sync,
        instances: args.instances,
        nodes: args.nodes,
        instances_per_process: args.instances_per_process,
        local_dir: args.local_dir,
    })?;
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}
