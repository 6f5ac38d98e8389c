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
