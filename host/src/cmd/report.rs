//! `peerlab report`: not implemented yet.

use clap::Args;

use crate::cli::GlobalArgs;

/// Arguments of `peerlab report`.
#[derive(Args, Debug)]
pub struct ReportArgs {}

/// Entry point of `peerlab report`.
pub fn run(_global: &GlobalArgs, _args: ReportArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`peerlab report` is not implemented yet")
}
