//! `peerlab modules`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab modules`.
#[derive(Args, Debug)]
pub struct ModulesArgs {}

/// Entry point of `peerlab modules`.
pub fn run(_global: &GlobalArgs, _args: ModulesArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab modules` is not implemented yet")
}
