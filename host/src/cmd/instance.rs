//! `peerlab instance`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab instance`.
#[derive(Args, Debug)]
pub struct InstanceArgs {}

/// Entry point of `peerlab instance`.
pub fn run(_global: &GlobalArgs, _args: InstanceArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab instance` is not implemented yet")
}
