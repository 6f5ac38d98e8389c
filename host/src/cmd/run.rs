//! `peerlab run`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab run`.
#[derive(Args, Debug)]
pub struct RunArgs {}

/// Entry point of `peerlab run`.
pub fn run(_global: &GlobalArgs, _args: RunArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab run` is not implemented yet")
}
