//! `peerlab runs`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab runs`.
#[derive(Args, Debug)]
pub struct RunsArgs {}

/// Entry point of `peerlab runs`.
pub fn run(_global: &GlobalArgs, _args: RunsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab runs` is not implemented yet")
}
