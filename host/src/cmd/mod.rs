//! One module per subcommand: its clap arguments and its entry point
//! `run(&GlobalArgs, Args) -> anyhow::Result<u8>` returning the exit code.

pub mod bench;
pub mod check;
pub mod compare;
pub mod instance;
pub mod modules;
pub mod new_plugin;
pub mod node_agent;
pub mod report;
pub mod rerun;
pub mod run;
pub mod runs;
pub mod sweep;

use std::path::PathBuf;

/// `--plugin-path`, one definition for the subcommands that load modules
/// (`run`, `check`, `bench`; flattened into their arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PluginPathArg {
    /// Extra directories to search for plugins (also PEERLAB_PLUGIN_PATH, ':'-separated)
    #[arg(
        long,
        value_name = "DIR",
        env = "PEERLAB_PLUGIN_PATH",
        value_delimiter = ':'
    )]
    pub plugin_path: Vec<PathBuf>,
}
