//! `peerlab bench`: its arguments. The measuring is [`crate::bench`]'s;
//! this only turns the flags into [`bench::BenchOptions`] and prints each
//! measurement (a JSON line, or the table at the end).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::bench;
use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};

/// Arguments of `peerlab bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The Benaloh protocol (automatic mode) through the real host, plugin and UDP overlay
    Benaloh(BenalohArgs),
}

/// Arguments of `peerlab bench benaloh`.
#[derive(Args, Debug)]
#[command(after_help = bench::workload::BENALOH_HELP)]
pub struct BenalohArgs {
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
    /// Scenario second at which instances print their totals and end
    /// [default: 6 + N/50, enough for the protocol to finish]
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Peers each subset sum is sent to (config key broadcast_fanout); the
    /// rest get it through catch-up sync [default: N-1, every peer, as the
    /// py-ipv8 reference]
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

/// Entry point of `peerlab bench`.
pub fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<u8> {
    match args.what {
        BenchCommand::Benaloh(a) => measure(global, &bench::BENALOH, a),
    }
}

fn measure(
    global: &GlobalArgs,
    workload: &'static bench::BenchWorkload,
    args: BenalohArgs,
) -> anyhow::Result<u8> {
    let opts = bench::BenchOptions {
        workload,
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
