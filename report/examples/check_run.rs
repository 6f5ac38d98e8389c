//! Re-processes any run folder and checks the outputs with
//! `peerlab_report::testing::check_processed_run` (every plot a valid PNG,
//! totals equal to the raw statistics files). For trying the checks on a
//! real `peerlab run` output:
//!
//! `cargo run -p peerlab-report --example check_run -- output/latest`

use std::path::PathBuf;
use std::process::ExitCode;

use peerlab_report::testing::check_processed_run;
use peerlab_report::{ReportOptions, process_run};

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: check_run RUN_DIR");
        return ExitCode::from(2);
    };
    match process_run(&dir, &ReportOptions::default()) {
        Ok(s) => println!(
            "processed {} instances in {:.2?}, {} warnings",
            s.instances,
            s.elapsed,
            s.warnings.len()
        ),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    match check_processed_run(&dir) {
        Ok(r) => {
            println!(
                "ok: {} plots, {} instances, {} messages sent, {} received",
                r.plots.len(),
                r.instances,
                r.messages_sent,
                r.messages_received
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                eprintln!("problem: {p}");
            }
            ExitCode::FAILURE
        }
    }
}
