//! [`process_run`]: the one entry point that wires loader, analysis and
//! renderers together and writes the outputs. It is the only place in the
//! report that writes files (`summary.json` through peerlab-run's one
//! writer, `write_summary`); instances are loaded and folded on a few
//! threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::analyse::Aggregator;
use crate::error::{ReportError, Warning};
use crate::model::ProcessData;
use crate::{html, load, plot};
use peerlab_run::write::{SummaryContent, SummaryError, write_summary};

/// How to post-process a run.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Most points per time series in plots and in `over_time` (default 300).
    pub max_points: usize,
    /// Draw `plots/*.png` and write `report.html` (default true); when false
    /// only `summary.json` is completed.
    pub plots: bool,
    /// Threads that load and fold instances (default: the machine's cores, at most 4).
    pub threads: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            max_points: 300,
            plots: true,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
        }
    }
}

/// What [`process_run`] wrote and found.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    pub run_dir: PathBuf,
    /// `summary.json`, unless it was malformed and therefore left alone.
    pub summary_json: Option<PathBuf>,
    pub report_html: Option<PathBuf>,
    pub plots: Vec<PathBuf>,
    /// Instances with files in the folder.
    pub instances: usize,
    /// The runner's `outcome`, if `summary.json` said.
    pub outcome: Option<String>,
    /// Everything worked around (malformed lines, missing files, ...).
    pub warnings: Vec<Warning>,
    /// Malformed or truncated lines skipped, over all files.
    pub skipped_lines: usize,
    pub elapsed: Duration,
}

/// Reads the run folder and writes `summary.json`'s `aggregates`,
/// `plots/*.png` and `report.html`. Only a missing folder or an unwritable
/// output is an error; everything else becomes a warning.
pub fn process_run(run_dir: &Path, opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let started = Instant::now();
    let index = load::index(run_dir)?;

    // Load and fold instances: each thread takes the next instance.
    let next = AtomicUsize::new(0);
    let threads = opts.threads.clamp(1, index.instances.len().max(1));
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut agg = Aggregator::new(1.0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(files) = index.instances.get(i) else {
                        break;
                    };
                    agg.add_instance(&load::instance(run_dir, files));
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push(agg);
            });
        }
    });
    let mut parts = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter();
    let mut agg = parts.next().unwrap_or_else(|| Aggregator::new(1.0));
    parts.for_each(|p| agg.merge(p));

    let processes: Vec<ProcessData> = index
        .processes
        .iter()
        .map(|p| load::process(run_dir, p))
        .collect();
    let analysis = agg.finish(
        index.plan.as_ref(),
        index.summary.as_ref(),
        &processes,
        index.warnings.clone(),
        opts.max_points,
    );
    let mut warnings = analysis.warnings.clone();

    // summary.json: the runner's fields untouched, aggregates added.
    let aggregates =
        serde_json::to_value(&analysis.aggregates).map_err(|e| ReportError::Write {
            path: run_dir.join(peerlab_run::layout::SUMMARY_JSON),
            source: std::io::Error::other(format!("cannot encode the aggregates: {e}")),
        })?;
    let completed = write_summary(
        run_dir,
        SummaryContent::WithAggregates {
            original: index.summary_text.as_deref(),
            aggregates: &aggregates,
        },
    );
    let summary_json = match completed {
        Ok(path) => Some(path),
        Err(e @ SummaryError::NotAnObject(_)) => {
            warnings.push(Warning::file(
                peerlab_run::layout::SUMMARY_JSON,
                e.to_string(),
            ));
            None
        }
        Err(SummaryError::Io(source)) => {
            return Err(ReportError::Write {
                path: run_dir.join(peerlab_run::layout::SUMMARY_JSON),
                source,
            });
        }
    };

    let mut plots = Vec::new();
    let mut report_html = None;
    if opts.plots {
        let figures = plot::figures(&analysis);
        let rendered = render_all(&figures, opts.threads)?;
        let dir = run_dir.join("plots");
        fs::create_dir_all(&dir).map_err(|source| ReportError::Write {
            path: dir.clone(),
            source,
        })?;
        for (fig, png) in &rendered {
            let path = dir.join(&fig.file);
            write_atomic(&path, png)?;
            plots.push(path);
        }
        let folder_name = run_dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "run".into());
        let err_files: Vec<(u32, String)> = index
            .instances
            .iter()
            .filter_map(|i| Some((i.id, i.err.clone()?)))
            .collect();
        // Each instance's OS process's stderr (panic messages with their
        // location and backtrace, crashes), when the file is there.
        let process_stderr: Vec<(u32, String)> = index
            .plan
            .iter()
            .flat_map(|p| &p.placement)
            .map(|p| (p.id, p.stderr_file()))
            .filter(|(_, rel)| run_dir.join(rel).is_file())
            .collect();
        let page = html::render(&html::Page {
            folder_name: &folder_name,
            plan: index.plan.as_ref(),
            summary: index.summary.as_ref(),
            aggregates: &analysis.aggregates,
            figures: &rendered,
            warnings: &warnings,
            err_files: &err_files,
            process_stderr: &process_stderr,
        });
        let path = run_dir.join("report.html");
        write_atomic(&path, page.as_bytes())?;
        report_html = Some(path);
    }

    Ok(ReportSummary {
        run_dir: run_dir.to_path_buf(),
        summary_json,
        report_html,
        plots,
        instances: analysis.aggregates.instances_seen,
        outcome: index
            .summary
            .as_ref()
            .and_then(|s| s.outcome)
            .map(|o| o.as_str().to_string()),
        skipped_lines: load::skipped_lines(&warnings),
        warnings,
        elapsed: started.elapsed(),
    })
}

/// Renders figures on up to `threads` threads, keeping their order.
fn render_all(
    figures: &[plot::Figure],
    threads: usize,
) -> Result<Vec<(plot::Figure, Vec<u8>)>, ReportError> {
    let next = AtomicUsize::new(0);
    type Slot = Option<Result<Vec<u8>, ReportError>>;
    let out: Mutex<Vec<Slot>> = Mutex::new(figures.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, figures.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(fig) = figures.get(i) else { break };
                    let png = plot::render(fig);
                    out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(png);
                }
            });
        }
    });
    let results = out.into_inner().unwrap_or_else(|p| p.into_inner());
    figures
        .iter()
        .zip(results)
        .map(|(fig, r)| {
            let png = r.unwrap_or_else(|| {
                Err(ReportError::Plot {
                    name: fig.file.clone(),
                    message: "was not drawn (a drawing thread stopped)".into(),
                })
            })?;
            Ok((fig.clone(), png))
        })
        .collect()
}

/// Writes through a temporary file and a rename (peerlab-run's
/// `write_atomic`), so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    peerlab_run::write::write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
