//! The command line: the subcommands and their dispatch. Each subcommand's
//! own flags live beside its code in [`crate::cmd`]; the global flags and
//! the exit codes in [`crate::global`], which `cmd` uses too (so `cmd`
//! never imports this module back).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;
pub use crate::global::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};

/// Run distributed peer-to-peer experiments.
///
/// A scenario (timed commands) and an experiment config say what to run;
/// peerlab starts the instances, lets them find each other, drives the
/// scenario, and gathers every instance's output, statistics, a verdict and
/// plots. Gumby's `.scenario` and `.conf` files work as they are.
#[derive(Parser, Debug)]
#[command(name = "peerlab", version, about, long_about)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate .conf and .scenario files without running anything
    Check(cmd::check::CheckArgs),
    /// Run an experiment (a .conf, or a .scenario with --instances)
    Run(cmd::run::RunArgs),
    /// List the modules peerlab can load, with their callbacks
    Modules(cmd::modules::ModulesArgs),
    /// Write a new plugin crate, ready to build and load
    NewPlugin(cmd::new_plugin::NewPluginArgs),
    /// (Re)build summary, plots and report.html for a finished run
    Report(cmd::report::ReportArgs),
    /// List the runs in an output folder, newest last
    Runs(cmd::runs::RunsArgs),
    /// Run an experiment over a grid of config values, repeated with derived seeds
    Sweep(cmd::sweep::SweepArgs),
    /// Compare runs or sweeps with a baseline (differences, p-values, --fail-if)
    Compare(cmd::compare::CompareArgs),
    /// Run a finished run again from its folder: same experiment, seed and plugins
    Rerun(cmd::rerun::RerunArgs),
    /// Benchmark the runtime and overlay
    Bench(cmd::bench::BenchArgs),
    /// Internal: run instances of a run (started by the runners)
    #[command(hide = true)]
    Instance(cmd::instance::InstanceArgs),
    /// Internal: start this node's share of a run's instances (started by srun)
    #[command(hide = true)]
    NodeAgent(cmd::node_agent::NodeAgentArgs),
}

/// Run the parsed command line and say which exit code it earned.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let code = match cli.command {
        Command::Check(args) => cmd::check::run(&cli.global, args)?,
        Command::Run(args) => cmd::run::run(&cli.global, args)?,
        Command::Modules(args) => cmd::modules::run(&cli.global, args)?,
        Command::NewPlugin(args) => cmd::new_plugin::run(&cli.global, args)?,
        Command::Report(args) => cmd::report::run(&cli.global, args)?,
        Command::Runs(args) => cmd::runs::run(&cli.global, args)?,
        Command::Sweep(args) => cmd::sweep::run(&cli.global, args)?,
        Command::Compare(args) => cmd::compare::run(&cli.global, args)?,
        Command::Rerun(args) => cmd::rerun::run(&cli.global, args)?,
        Command::Bench(args) => cmd::bench::run(&cli.global, args)?,
        Command::Instance(args) => cmd::instance::run(&cli.global, args)?,
        Command::NodeAgent(args) => cmd::node_agent::run(&cli.global, args)?,
    };
    Ok(ExitCode::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
