//! Benchmark of post-processing: writes a synthetic run folder (with the
//! five module metrics of `SynthSpec::with_module_metrics`: two counters, a
//! gauge, two observations) and times `process_run` on it.
//!
//! `cargo run --release -p peerlab-report --example synth_bench -- [INSTANCES] [SECONDS] [DIR]`
//! (defaults: 1000 instances, 120 s, a fresh folder under the system temp
//! dir, removed at the end unless DIR is given).

use std::path::PathBuf;
use std::time::Instant;

use peerlab_report::synth::{SynthSpec, write_run};
use peerlab_report::{ReportOptions, process_run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let instances: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let seconds: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(120);
    let args: Vec<String> = args.collect();
    let dir = match args.first() {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!(
            "peerlab-synth-{instances}x{seconds}-{}",
            std::process::id()
        )),
    };
    let keep = !args.is_empty();
    let mut spec = SynthSpec::new(instances).with_module_metrics();
    spec.duration_s = seconds;
    spec.crashed = vec![instances.min(3)];
    spec.garbage_line = true;

    let t = Instant::now();
    write_run(&dir, &spec)?;
    let size: u64 = walk(&dir);
    println!(
        "wrote {} ({instances} instances, {seconds} s, {:.1} MiB) in {:.2?}",
        dir.display(),
        size as f64 / 1048576.0,
        t.elapsed()
    );

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
