//! `peerlab report RUN_DIR`: (re)build a finished run's aggregates, CSVs,
//! plots and report.html from its folder (and, with `--post-process`, run
//! its `post_process_cmd` again). All the work is in `peerlab-report`;
//! this module only maps arguments in and prints what was written.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use peerlab_report::{ReportOptions, process_run};

use crate::global::{EXIT_OK, GlobalArgs};

/// Warnings printed before "and N more".
const SHOWN_WARNINGS: usize = 10;

/// Arguments of `peerlab report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run folder, e.g. output/0003-benaloh or output/latest
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Most points per time series in plots and in summary.json's over_time
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub max_points: u64,
    /// Only complete summary.json: draw no plots and write no report.html
    #[arg(long)]
    pub no_plots: bool,
    /// Also run the run's `post_process_cmd` (from its run.json) again, in
    /// the run folder; off by default, as a copied folder's run.json could
    /// name any command
    #[arg(long)]
    pub post_process: bool,
}

/// Entry point of `peerlab report`.
pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<u8> {
    let post_process_cmd = if args.post_process {
        let cmd = peerlab_report::post_process_cmd_of(&args.run_dir);
        if cmd.is_none() && !global.quiet {
            eprintln!(
                "peerlab: warning: --post-process: {} sets no post_process_cmd",
                args.run_dir.join("run.json").display()
            );
        }
        cmd
    } else {
        None
    };
    let opts = ReportOptions {
        max_points: args.max_points as usize,
        plots: !args.no_plots,
        post_process_cmd,
        ..ReportOptions::default()
    };
    let s = process_run(&args.run_dir, &opts)
        .with_context(|| format!("cannot make the report of {}", args.run_dir.display()))?;
    if !global.quiet {
        for w in s.warnings.iter().take(SHOWN_WARNINGS) {
            eprintln!("peerlab: warning: {w}");
        }
        if s.warnings.len() > SHOWN_WARNINGS {
            eprintln!(
                "peerlab: warning: and {} more (all are listed in summary.json and report.html)",
                s.warnings.len() - SHOWN_WARNINGS
            );
        }
        let outcome = s
            .outcome
            .as_deref()
            .unwrap_or("unknown (no summary.json from the runner)");
        println!(
            "{} instances, outcome {outcome}, {} warnings ({} malformed lines skipped), in {:.2?}",
            s.instances,
            s.warnings.len(),
            s.skipped_lines,
            s.elapsed
        );
        match &s.summary_json {
            Some(p) => println!("summary: {}", p.display()),
            None => println!("summary: summary.json left as it was (malformed)"),
        }
        if !s.plots.is_empty() {
            println!(
                "plots:   {} files in {}",
                s.plots.len(),
                args.run_dir.join("plots").display()
            );
        }
        if !s.csv.is_empty() {
            println!(
                "csv:     {}",
                s.csv
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(h) = &s.hook {
            let log = args.run_dir.join(&h.log);
            if h.ok {
                println!("post_process_cmd: done (output: {})", log.display());
            } else {
                eprintln!(
                    "peerlab: warning: post_process_cmd `{}` {} (output: {})",
                    h.command,
                    h.error,
                    log.display()
                );
            }
        }
        if let Some(p) = &s.report_html {
            println!("report:  {}", p.display());
        }
    }
    Ok(EXIT_OK)
}
