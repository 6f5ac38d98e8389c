//! `peerlab check`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab check`.
#[derive(Args, Debug)]
pub struct CheckArgs {}

/// Entry point of `peerlab check`.
pub fn run(_global: &GlobalArgs, _args: CheckArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab check` is not implemented yet")
}
