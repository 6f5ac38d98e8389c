//! `peerlab new-plugin`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab new-plugin`.
#[derive(Args, Debug)]
pub struct NewPluginArgs {}

/// Entry point of `peerlab new-plugin`.
pub fn run(_global: &GlobalArgs, _args: NewPluginArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab new-plugin` is not implemented yet")
}
