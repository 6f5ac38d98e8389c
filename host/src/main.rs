//! The `peerlab` binary: parse arguments, run one command, map the result to
//! an exit code. Everything else lives in the `peerlab` library.

use std::process::ExitCode;

use clap::Parser;
use peerlab::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    peerlab::logging::init(cli.global.verbose, cli.global.quiet);
    match peerlab::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("peerlab: error: {err:#}");
            ExitCode::from(peerlab::cli::EXIT_ERROR)
        }
    }
}
