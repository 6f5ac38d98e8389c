//! `peerlab compare BASE OTHER...`: runs or sweeps against a baseline: a
//! table of differences per metric (with Welch's t-test and Mann–Whitney U
//! p-values where there are repetitions), an HTML page with overlaid
//! charts, and `--fail-if` conditions that turn a regression into a
//! non-zero exit status for CI.
//!
//! Must not: compute or render anything itself (peerlab-sweep does).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use peerlab_sweep::compare::{self, Condition, Row};
use peerlab_sweep::{folder, html, svg};

use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};

/// Arguments of `peerlab compare`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab compare output/0007-benaloh output/0009-benaloh
  peerlab compare output/sweeps/gossip-a1b2c3d4 output/sweeps/gossip-e5f6a7b8 --html compare.html
  peerlab compare base/ new/ --fail-if 'benaloh.time_to_total.p99 > +10%' --fail-if 'run.passed < 0'

The first folder is the baseline. Metrics are named METRIC.STAT as in a sweep's sweep.csv (run.duration_s, \
messages.sent.bytes, resources.cpu_s, benaloh.time_to_total.p99, ...). A condition compares the change of a \
metric's mean from the baseline: relative with %, absolute without.
Exit status: 0 when no condition holds, 1 when one does, 2 when the folders cannot be read.")]
pub struct CompareArgs {
    /// Run folders or sweep folders; the first is the baseline
    #[arg(value_name = "RUN_OR_SWEEP", num_args = 2.., required = true)]
    pub sets: Vec<PathBuf>,
    /// Exit 1 when this holds for any compared set, e.g. 'run.duration_s > +10%' (repeatable)
    #[arg(long, value_name = "COND")]
    pub fail_if: Vec<String>,
    /// Write the comparison page (overlaid charts and the table) here
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Show every metric, not only those that changed (and per-type families)
    #[arg(long)]
    pub all: bool,
    /// Print the rows as a JSON array instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Entry point of `peerlab compare`.
pub fn run(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<u8> {
    let conditions: Vec<Condition> = args
        .fail_if
        .iter()
        .map(|c| Condition::parse(c))
        .collect::<Result<_, _>>()?;
    let mut sets = Vec::new();
    for path in &args.sets {
        sets.push(
            folder::load_set(path).with_context(|| format!("cannot compare {}", path.display()))?,
        );
    }
    let (base, others) = sets.split_first().expect("clap requires two or more");
    let rows = compare::compare(base, others);
    if rows.is_empty() {
        anyhow::bail!(
            "nothing to compare: the folders share no grid point with finished runs (a sweep's points are matched on the keys that vary)"
        );
    }
    for c in &conditions {
        if !rows.iter().any(|r| r.metric == c.metric) {
            let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
            let hint = peerlab_lang::suggest(&c.metric, names.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            anyhow::bail!(
                "--fail-if `{}`: no metric `{}` in both sets{hint}; `peerlab compare ... --all` lists them",
                c.text,
                c.metric
            );
        }
    }
    let failing: Vec<bool> = rows
        .iter()
        .map(|r| conditions.iter().any(|c| c.holds(r)))
        .collect();
    if args.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .zip(&failing)
            .map(|(r, f)| {
                serde_json::json!({
                    "metric": r.metric, "point": r.point.to_string(), "compared": r.other,
                    "baseline_mean": r.base.mean, "baseline_n": r.base.n,
                    "mean": r.new.mean, "n": r.new.n, "diff": r.diff, "change": r.rel,
                    "p_welch": r.p_welch, "p_mann_whitney": r.p_mann_whitney,
                    "significant": r.significant(), "timing": compare::is_timing(&r.metric),
                    "fail_if": f,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_table(&rows, &failing, args.all);
    }
    if let Some(path) = &args.html {
        let others: Vec<String> = others.iter().map(|s| s.label.clone()).collect();
        let page = html::compare_page(&base.label, &others, &rows, &failing);
        folder::write_file(path, &page)?;
        if !global.quiet {
            eprintln!("peerlab: comparison page: {}", path.display());
        }
    }
    let mut held = false;
    for c in &conditions {
        for r in rows.iter().filter(|r| c.holds(r)) {
            held = true;
            eprintln!(
                "peerlab: --fail-if `{}` holds for {}{}: {} -> {} ({})",
                c.text,
                r.other,
                if r.point.0.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", r.point)
                },
                svg::short(r.base.mean),
                svg::short(r.new.mean),
                r.rel
                    .map(|x| format!("{:+.1}%", x * 100.0))
                    .unwrap_or_else(|| format!("{:+}", r.diff))
            );
        }
    }
    Ok(if held { EXIT_FAILED } else { EXIT_OK })
}

fn p(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "-".into())
}

fn print_table(rows: &[Row], failing: &[bool], all: bool) {
    let shown: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        // Family members (`bytes_in/<type>`, `msg_out/<type>` ...) only with
        // --all: one line per message type drowns the results.
        .filter(|(i, r)| all || failing[*i] || (r.diff != 0.0 && !r.metric.contains('/')))
        .collect();
    let results = rows.iter().filter(|r| !compare::is_timing(&r.metric));
    let changed = results.clone().filter(|r| r.diff != 0.0).count();
    let timing: Vec<&str> = rows
        .iter()
        .filter(|r| compare::is_timing(&r.metric) && r.diff != 0.0)
        .map(|r| r.metric.as_str())
        .collect();
    let summary = if changed == 0 {
        format!(
            "no difference in the {} result metrics{}",
            results.count(),
            if timing.is_empty() {
                String::new()
            } else {
                format!(
                    " (only timing differs, as it does between identical runs: {})",
                    timing.join(", ")
                )
            }
        )
    } else {
        format!("{changed} of {} result metrics differ", results.count())
    };
    if shown.is_empty() {
        println!("{summary}");
        return;
    }
    let w = shown
        .iter()
        .map(|(_, r)| r.metric.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<w$}  {:>12}  {:>12}  {:>10}  {:>8}  {:>7}  {:>7}  compared",
        "metric", "baseline", "mean", "diff", "change", "p welch", "p mwu"
    );
    for (i, r) in shown {
        let mark = if failing[i] {
            " FAIL-IF"
        } else if r.significant() == Some(true) {
            " *"
        } else {
            ""
        };
        let point = if r.point.0.is_empty() {
            String::new()
        } else {
            format!(" [{}]", r.point)
        };
        println!(
            "{:<w$}  {:>12}  {:>12}  {:>10}  {:>8}  {:>7}  {:>7}  {}{point}{mark}",
            r.metric,
            format!("{} ({})", svg::short(r.base.mean), r.base.n),
            format!("{} ({})", svg::short(r.new.mean), r.new.n),
            svg::short(r.diff),
            r.rel
                .map(|x| format!("{:+.1}%", x * 100.0))
                .unwrap_or_else(|| "-".into()),
            p(r.p_welch),
            p(r.p_mann_whitney),
            r.other
        );
    }
    println!("* significant at 5% (Welch's t-test)");
    println!("{summary}");
}
