//! peerlab-report: post-processing of a finished run. It reads only the run
//! folder (never a live instance) and writes the `aggregates` of
//! `summary.json` (`metrics` for the declared metrics), `timeseries.csv`
//! and `observations.csv`, plots under `plots/` (PNG and SVG) and a
//! self-contained `report.html`, then runs the config's `post_process_cmd`
//! ([`hook`]); it also lists an output root's runs (`peerlab runs`).
//!
//! What the run folder holds, and the types of its records, are
//! peerlab-run's: the report reads the same types the host writes, and
//! completes `summary.json` through peerlab-run's one writer.
//!
//! The pipeline has three stages with one job each:
//! [`load`] turns files into plain data ([`model`]), [`analyse`] turns
//! plain data into aggregates and reduced series ([`metrics`] for the
//! declared metrics; no I/O), and [`plot`] / [`draw`] / [`html`] render (no
//! file access; [`process_run`] writes).
//!
//! Entry points: [`process_run`] (the runner calls it after every run),
//! [`history::list_runs`] (`peerlab runs`), and [`synth`], which writes
//! synthetic run folders of any size for tests and benchmarks.

pub mod analyse;
pub mod draw;
pub mod error;
pub mod history;
pub mod hook;
pub mod html;
pub mod html_metrics;
pub mod load;
pub mod metrics;
pub mod model;
pub mod online;
pub mod plot;
pub mod plot_metrics;
pub mod series;
pub mod synth;
pub mod testing;

mod ordered;
mod pipeline;

pub use error::{ReportError, Warning};
pub use load::post_process_cmd_of;
pub use pipeline::{
    OBSERVATIONS_CSV, POST_PROCESS_KEY, ReportOptions, ReportSummary, TIMESERIES_CSV, process_run,
};
