//! `peerlab node-agent`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab node-agent`.
#[derive(Args, Debug)]
pub struct NodeAgentArgs {}

/// Entry point of `peerlab node-agent`.
pub fn run(_global: &GlobalArgs, _args: NodeAgentArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab node-agent` is not implemented yet")
}
