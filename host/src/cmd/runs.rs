//! `peerlab runs [DIR]`: the history of the runs in an output root, one
//! line each, newest last. Broken or unfinished run folders are listed as
//! such. Reading and formatting live in `peerlab_report::history`.

use std::path::PathBuf;

use clap::Args;
use peerlab_report::history::{format_table, list_runs};

use crate::global::{EXIT_OK, GlobalArgs};

/// Arguments of `peerlab runs`.
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// The output root holding the run folders
    #[arg(value_name = "DIR", default_value = "output")]
    pub dir: PathBuf,
    /// Show only the last N runs
    #[arg(long, short = 'n', value_name = "N")]
    pub last: Option<usize>,
    /// Print a JSON array (one object per run) instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Entry point of `peerlab runs`.
pub fn run(_global: &GlobalArgs, args: RunsArgs) -> anyhow::Result<u8> {
    let hint = "pass the output root of `peerlab run` (default: output/ in the directory peerlab run was started from)";
    if !args.dir.exists() {
        anyhow::bail!(
            "cannot list runs: {} does not exist; {hint}",
            args.dir.display()
        );
    }
    if !args.dir.is_dir() {
        anyhow::bail!(
            "cannot list runs: {} is a file, not a folder; {hint}",
            args.dir.display()
        );
    }
    // The error's text already carries its cause: print it once.
    let mut runs = list_runs(&args.dir).map_err(|e| anyhow::anyhow!("{e}; {hint}"))?;
    if let Some(n) = args.last {
        let skip = runs.len().saturating_sub(n);
        runs.drain(..skip);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else if runs.is_empty() {
        println!("no runs in {}", args.dir.display());
    } else {
        print!("{}", format_table(&runs));
    }
    Ok(EXIT_OK)
}

/// Rewrite `root/index.html`, the history page of an output root (after
/// every run and sweep). A failure is a warning: the run itself is done.
pub fn update_history(root: &std::path::Path) {
    if let Err(e) = peerlab_sweep::index::write_index(root) {
        eprintln!("peerlab: warning: cannot update the history page: {e}");
    }
}
