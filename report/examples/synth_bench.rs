//! Benchmark of post-processing: writes a synthetic run folder (with the
//! five module metrics of `SynthSpec::with_module_metrics`: two counters, a
//! gauge, two observations) and times `process_run` on it.
//!
//! `cargo run --release -p peerlab-report --example synth_bench -- [INSTANCES] [SECONDS] [DIR] [OPTIONS]`
//! (defaults: 1000 instances, 120 s, a fresh folder under the system temp
//! dir, removed at the end unless DIR is given). It processes the folder
//! twice, with and without plots, unless told otherwise.
//!
//! Options:
//! - `--interval S`: statistics and resources lines every S seconds (default 1)
//! - `--per-process K`: instances per OS process (default 1; the simulated
//!   runner puts every instance in one process)
//! - `--write-only`: write DIR and stop (for timing `--process-only` alone)
//! - `--process-only`: process the existing DIR once, without writing it
//! - `--no-plots`: with `--process-only`, only summary.json and the CSVs
//!
//! For a peak-memory figure of post-processing alone, run
//! `/usr/bin/time -v synth_bench N S DIR --process-only` after `--write-only`.

use std::path::PathBuf;
use std::time::Instant;

use peerlab_report::synth::{SynthSpec, write_run};
use peerlab_report::{ReportOptions, process_run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut positional = Vec::new();
    let (mut interval, mut per_process) = (1u32, 1u32);
    let (mut write_only, mut process_only, mut plots) = (false, false, true);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--interval" => interval = args.next().ok_or("--interval needs seconds")?.parse()?,
            "--per-process" => {
                per_process = args.next().ok_or("--per-process needs a count")?.parse()?
            }
            "--write-only" => write_only = true,
            "--process-only" => process_only = true,
            "--no-plots" => plots = false,
            "-h" | "--help" => {
                println!(
                    "synth_bench [INSTANCES] [SECONDS] [DIR] [--interval S] [--per-process K] [--write-only | --process-only [--no-plots]]"
                );
                return Ok(());
            }
            o if o.starts_with("--") => {
                return Err(format!("unknown option {o}; see --help").into());
            }
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    let instances: u32 = positional
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let seconds: u32 = positional
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(120);
    let given = positional.next().map(PathBuf::from);
    if (write_only || process_only) && given.is_none() {
        return Err("--write-only and --process-only need DIR".into());
    }
    let keep = given.is_some();
    let dir = given.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "peerlab-synth-{instances}x{seconds}-{}",
            std::process::id()
        ))
    });

    if process_only {
        let t = Instant::now();
        let s = process_run(
            &dir,
            &ReportOptions {
                plots,
                ..ReportOptions::default()
            },
        )?;
        println!(
            "process_run{}: {:.2?} for {} instances ({} plots, {} warnings, {} lines skipped)",
            if plots { "" } else { " without plots" },
            t.elapsed(),
            s.instances,
            s.plots.len(),
            s.warnings.len(),
            s.skipped_lines
        );
        return Ok(());
    }

    let mut spec = SynthSpec::new(instances).with_module_metrics();
    spec.duration_s = seconds;
    spec.crashed = vec![instances.min(3)];
    spec.garbage_line = true;
    spec.stats_interval_s = interval;
    spec.instances_per_process = per_process;

    let t = Instant::now();
    write_run(&dir, &spec)?;
    let size: u64 = walk(&dir);
    println!(
        "wrote {} ({instances} instances, {seconds} s every {interval} s, {:.1} MiB) in {:.2?}",
        dir.display(),
        size as f64 / 1048576.0,
        t.elapsed()
    );
    if write_only {
        return Ok(());
    }

    let t = Instant::now();
    let s = process_run(&dir, &ReportOptions::default())?;
    println!(
        "process_run: {:.2?} for {} instances ({} plots, {} warnings, {} lines skipped)",
        t.elapsed(),
        s.instances,
        s.plots.len(),
        s.warnings.len(),
        s.skipped_lines
    );
    let t = Instant::now();
    let s = process_run(
        &dir,
        &ReportOptions {
            plots: false,
            ..ReportOptions::default()
        },
    )?;
    println!(
        "process_run without plots: {:.2?} ({} instances)",
        t.elapsed(),
        s.instances
    );
    if !keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
