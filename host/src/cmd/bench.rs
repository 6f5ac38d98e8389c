//! `peerlab bench`: its arguments. The measuring is [`crate::bench`]'s, the
//! workload the named plugin declares ([`bench::find`]); this only turns
//! the flags into [`bench::BenchOptions`], prints each measurement (a JSON
//! line, or the table at the end), lists the plugins that declare a
//! workload (`--list`) and writes the help, which with a NAME adds what
//! that workload measures in its own names.

use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};

use crate::bench;
use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};

/// The generic help's closing text; `peerlab bench NAME --help` adds the
/// workload's own ([`bench::BenchWorkload::explain`]).
const AFTER_HELP: &str = "Examples:
  peerlab bench --list                              # the plugins that declare a workload
  peerlab bench NAME                                # N = 100, 400, 1000, all in one process
  peerlab bench NAME --peers 100 --processes 100    # one process per instance
  peerlab bench NAME --peers 400 --shared-verification both --json
  peerlab bench NAME --help                         # what NAME's workload measures

A plugin declares the workload it is benchmarked with in its #[module(bench(...))]
(plugin-api 1.5): the scenario line that starts the protocol, the commands run at the
deadline, the observation that times each instance, the messages counted, the fanout
config key. bench writes the scenario from it (@0 start_session, @0 introduce_peers,
the start line at 1 s, the end commands at the deadline), runs it with the runner and
instance runtime `peerlab run` uses, and reads every figure from the run folder.
Exit status: 0 when every run was correct, 1 when one was not, 2 when it could not run.";

/// Arguments of `peerlab bench`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true, after_help = AFTER_HELP)]
pub struct BenchArgs {
    /// The plugin whose declared workload to measure (`--list` shows them)
    #[arg(value_name = "NAME", required_unless_present_any = ["list", "help"])]
    pub name: Option<String>,
    /// List the plugins on the search path that declare a benchmark workload
    #[arg(long, conflicts_with = "name")]
    pub list: bool,
    /// Print help (with NAME: also what that plugin's workload measures)
    #[arg(short = 'h', long, action = ArgAction::SetTrue)]
    pub help: bool,
    /// Instance counts to measure, in order (comma-separated or repeated)
    #[arg(short = 'n', long = "peers", value_name = "N", value_delimiter = ',',
          default_values_t = [100u32, 400, 1000])]
    pub peers: Vec<u32>,
    /// OS processes to spread the instances over (N: one process per instance)
    #[arg(short = 'p', long, value_name = "P", default_value_t = 1)]
    pub processes: u32,
    /// Whether instances of one process share signature verifications
    /// (config key shared_verification); `both` measures each N twice
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = PoolArg::Auto)]
    pub shared_verification: PoolArg,
    /// Print one JSON object per measurement on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Seed of the runs (keys, secrets, shares, peer choices)
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Scenario second at which instances print their results and end
    /// [default: 6 + N/50, enough for the protocol to finish]
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Peers each broadcast is sent to (the workload's fanout config key);
    /// the rest get it through catch-up sync [default: N-1, every peer, as
    /// the py-ipv8 reference]
    #[arg(long, value_name = "F")]
    pub fanout: Option<u32>,
    /// Output root for the bench's runs
    #[arg(short, long, value_name = "DIR", default_value = "output/bench")]
    pub output: PathBuf,
    /// Keep every run folder (by default only runs that were not correct are kept)
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub plugin: super::PluginPathArg,
}

/// `--shared-verification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolArg {
    /// The runtime's default: on when a process hosts several instances
    Auto,
    /// Instances of a process verify each signed packet once between them
    On,
    /// Every instance verifies every signature itself
    Off,
    /// Measure with the pool on and then off
    Both,
}

impl PoolArg {
    /// The config value to set for each measurement (`None`: leave the default).
    fn settings(self) -> Vec<Option<&'static str>> {
        match self {
            PoolArg::Auto => vec![None],
            PoolArg::On => vec![Some("on")],
            PoolArg::Off => vec![Some("off")],
            PoolArg::Both => vec![Some("on"), Some("off")],
        }
    }
}

/// `peerlab bench` as a command of its own, for its help and tests.
fn command() -> clap::Command {
    let cmd = GlobalArgs::augment_args(BenchArgs::augment_args(clap::Command::new("bench")));
    // After the flattened structs, whose doc comments would be the about.
    cmd.bin_name("peerlab bench")
        .about(
            "Benchmark a protocol a plugin declares, through the real host, plugin and UDP overlay",
        )
        .long_about(None)
}

/// Entry point of `peerlab bench`.
pub fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<u8> {
    if args.help {
        return help(&args);
    }
    if args.list {
        return list(&args);
    }
    let name = args.name.clone().unwrap_or_default();
    let opts = bench::BenchOptions {
        name,
        peers: args.peers,
        processes: args.processes,
        shared_verification: args.shared_verification.settings(),
        seed: args.seed,
        deadline: args.deadline,
        fanout: args.fanout,
        output: args.output,
        keep: args.keep,
        plugin_path: args.plugin.plugin_path,
        // Progress lines (not warnings or failures) are left out with --quiet.
        quiet: global.quiet,
    };
    let results = bench::run(&opts, |m| {
        if args.json {
            println!("{}", serde_json::to_string(m)?);
        }
        Ok(())
    })?;
    if !args.json {
        print!("{}", bench::table(&results));
    }
    Ok(if results.iter().all(|m| m.correct) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `--help`: clap's help, then (with NAME) what that workload measures.
fn help(args: &BenchArgs) -> anyhow::Result<u8> {
    print!("{}", command().render_long_help());
    if let Some(name) = &args.name {
        println!();
        match bench::find::load(name, &args.plugin.plugin_path) {
            Ok((workload, _)) => print!("{}", workload.explain()),
            Err(e) => println!("(cannot say what `peerlab bench {name}` measures: {e})"),
        }
    }
    Ok(EXIT_OK)
}

/// `--list`: every plugin on the search path that declares a workload.
fn list(args: &BenchArgs) -> anyhow::Result<u8> {
    let (found, dirs) = bench::find::list(&args.plugin.plugin_path);
    if found.is_empty() {
        println!(
            "No plugin declares a benchmark workload (searched: {}). A plugin declares one with \
             #[module(bench(...))] (plugin-api 1.5); build it, or give --plugin-path.",
            dirs.join(", ")
        );
    }
    let width = found.iter().map(|(w, _)| w.name.len()).max().unwrap_or(0);
    for (w, source) in &found {
        println!("{:width$}  {}  ({source})", w.name, w.about);
    }
    Ok(EXIT_OK)
}

/// Parse `peerlab bench`'s arguments alone (for tests).
#[cfg(test)]
fn parse(words: &[&str]) -> Result<BenchArgs, clap::Error> {
    use clap::FromArgMatches as _;
    let m = command().try_get_matches_from(words)?;
    BenchArgs::from_arg_matches(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_or_list_or_help_is_needed() {
        assert!(parse(&["bench"]).is_err());
        let a = parse(&["bench", "ring", "--peers", "4,8"]).unwrap();
        assert_eq!(a.name.as_deref(), Some("ring"));
        assert_eq!(a.peers, [4, 8]);
        assert!(parse(&["bench", "--list"]).unwrap().list);
        assert!(parse(&["bench", "--help"]).unwrap().help);
        assert!(parse(&["bench", "ring", "-h"]).unwrap().help);
        assert!(parse(&["bench", "ring", "--list"]).is_err());
    }

    #[test]
    fn the_help_names_no_plugin_and_explains_the_declaration() {
        let h = command().render_long_help().to_string();
        assert!(h.contains("--list") && h.contains("bench(...)"), "{h}");
        assert!(h.contains("Usage: peerlab bench"), "{h}");
    }
}
