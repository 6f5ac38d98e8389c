//! `peerlab bench`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {}

/// Entry point of `peerlab bench`.
pub fn run(_global: &GlobalArgs, _args: BenchArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab bench` is not implemented yet")
}
