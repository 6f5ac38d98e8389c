//! [`process_run`]: the one entry point that wires loader, analysis and
//! renderers together and writes the outputs. It is the only place in the
//! report that writes files (`summary.json` through peerlab-run's one
//! writer, `write_summary`; the CSVs; plots as PNG and SVG; report.html)
//! and the only one that starts the config's `post_process_cmd`
//! ([`crate::hook`]); instances are loaded and folded on a few threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::analyse::{Aggregator, Analysis};
use crate::error::{ReportError, Warning};
use crate::hook::HookOutcome;
use crate::model::{ProcessData, RunIndex};
use crate::ordered::InOrder;
use crate::plot::{Figure, FigureOptions};
use crate::{hook, html, load, plot, plot_metrics};
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
    /// Up to this many instances the page's per-instance table lists every
    /// one (default 1000); a bigger run's page lists a few and
    /// `per_instance.csv` has them all.
    pub page_instances: usize,
    /// A command to run in the run folder after the built-in report (the
    /// config's `post_process_cmd`); `None` runs nothing.
    pub post_process_cmd: Option<String>,
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
            page_instances: crate::html_metrics::PAGE_INSTANCES,
            post_process_cmd: None,
        }
    }
}

/// The time series CSV (`run,instance,t,metric,value`), in the run folder.
pub const TIMESERIES_CSV: &str = "timeseries.csv";

/// How many instances' rows of timeseries.csv may wait in memory for their
/// turn, per loading thread.
const ROWS_WAITING_PER_THREAD: usize = 16;

/// A loading thread's instance whose rows are due: handed over by
/// [`Turn::done`], or given up if the thread stops first (so the other
/// threads never wait for it).
struct Turn<'a>(&'a InOrder, Option<usize>);

impl Turn<'_> {
    fn done(mut self, chunk: String) {
        if let Some(i) = self.1.take() {
            self.0.put(i, chunk);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.1.take() {
            self.0.abandon(i);
        }
    }
}
/// The observations' percentiles CSV, in the run folder.
pub const OBSERVATIONS_CSV: &str = "observations.csv";

/// The config key naming the post-processing command (Gumby's).
pub const POST_PROCESS_KEY: &str = "post_process_cmd";

/// What [`process_run`] wrote and found.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    pub run_dir: PathBuf,
    /// `summary.json`, unless it was malformed and therefore left alone.
    pub summary_json: Option<PathBuf>,
    pub report_html: Option<PathBuf>,
    /// The PNG plots.
    pub plots: Vec<PathBuf>,
    /// The SVG beside each PNG plot.
    pub svgs: Vec<PathBuf>,
    /// `timeseries.csv` and `observations.csv` when the run declares metrics,
    /// `peers_online.csv`, and `per_instance.csv` when the page lists only
    /// some instances.
    pub csv: Vec<PathBuf>,
    /// How `post_process_cmd` ended, when one ran.
    pub hook: Option<HookOutcome>,
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

    // Load and fold instances: each thread takes the next instance; the
    // rows of timeseries.csv go to the file in instance order as they come.
    let decls = index
        .plan
        .as_ref()
        .map(|p| p.metrics.clone())
        .unwrap_or_default();
    let run_name = run_name(run_dir, &index);
    let fresh = || Aggregator::for_run(1.0, index.plan.as_ref(), &run_name);
    let next = AtomicUsize::new(0);
    let threads = opts.threads.clamp(1, index.instances.len().max(1));
    let timeseries_path = run_dir.join(TIMESERIES_CSV);
    let rows = InOrder::create(
        (!decls.is_empty()).then_some(timeseries_path.as_path()),
        crate::metrics::TIMESERIES_HEADER,
        ROWS_WAITING_PER_THREAD * threads,
    )
    .map_err(|source| ReportError::Write {
        path: timeseries_path.clone(),
        source,
    })?;
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut agg = fresh();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(files) = index.instances.get(i) else {
                        break;
                    };
                    rows.wait_turn(i);
                    let turn = Turn(&rows, Some(i));
                    let chunk = agg.fold_instance(&load::instance(run_dir, files));
                    turn.done(chunk);
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push(agg);
            });
        }
    });
    let mut parts = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter();
    let mut agg = parts.next().unwrap_or_else(fresh);
    parts.for_each(|p| agg.merge(p));
    let mut csv = Vec::new();
    csv.extend(
        rows.finish()
            .map_err(|(path, source)| ReportError::Write { path, source })?,
    );

    let processes: Vec<ProcessData> = index
        .processes
        .iter()
        .map(|p| load::process(run_dir, p))
        .collect();
    let mut analysis = agg.finish(
        index.plan.as_ref(),
        index.summary.as_ref(),
        &processes,
        index.warnings.clone(),
        opts.max_points,
    );
    let mut warnings = analysis.warnings.clone();

    // summary.json: the runner's fields untouched, aggregates added; the
    // per-instance rows one at a time (a Value of them all would be ~3 KB
    // an instance).
    let encode = |e: serde_json::Error| ReportError::Write {
        path: run_dir.join(peerlab_run::layout::SUMMARY_JSON),
        source: std::io::Error::other(format!("cannot encode the aggregates: {e}")),
    };
    let per_instance = std::mem::take(&mut analysis.aggregates.per_instance);
    let aggregates = serde_json::to_value(&analysis.aggregates).map_err(encode);
    let mut failed = None;
    let mut rows = per_instance
        .iter()
        .map_while(|r| match serde_json::to_value(r) {
            Ok(v) => Some(v),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
    let completed = aggregates.map(|aggregates| {
        write_summary(
            run_dir,
            SummaryContent::WithAggregateRows {
                original: index.summary_text.as_deref(),
                aggregates: &aggregates,
                key: "per_instance",
                rows: &mut rows,
            },
        )
    });
    analysis.aggregates.per_instance = per_instance;
    if let Some(e) = failed {
        return Err(encode(e));
    }
    let completed = completed?;
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

    // observations.csv, when the run declares metrics (timeseries.csv is
    // written above, as the instances were read).
    if !decls.is_empty() {
        let path = run_dir.join(OBSERVATIONS_CSV);
        write_atomic(&path, analysis.metrics.observations_csv.as_bytes())?;
        csv.push(path);
    }

    // Who was up when, in runs with presence commands.
    if let Some(points) = crate::online::series(&analysis) {
        let path = run_dir.join(peerlab_run::layout::PEERS_ONLINE_CSV);
        write_atomic(&path, crate::online::csv(&points).as_bytes())?;
        csv.push(path);
    }

    let mut plots = Vec::new();
    let mut svgs = Vec::new();
    let mut report_html = None;
    let mut rendered = Vec::new();
    if opts.plots {
        let fig_opts = FigureOptions {
            walker_messages: walker_messages(&index, &mut warnings),
        };
        let mut figures = plot::figures(&analysis, &fig_opts);
        figures.extend(autoplot_figures(run_dir, &index, &mut warnings));
        rendered = render_all(&figures, opts.threads)?;
        let dir = run_dir.join(peerlab_run::layout::PLOTS_DIR);
        fs::create_dir_all(&dir).map_err(|source| ReportError::Write {
            path: dir.clone(),
            source,
        })?;
        for (fig, png, svg) in &rendered {
            let path = dir.join(&fig.file);
            write_atomic(&path, png)?;
            plots.push(path);
            let path = dir.join(fig.svg_file());
            write_atomic(&path, svg.as_bytes())?;
            svgs.push(path);
        }
        let path = run_dir.join(peerlab_run::layout::REPORT_HTML);
        let (page, table) = page(run_dir, &index, &analysis, &rendered, &warnings, None, opts);
        write_atomic(&path, page.as_bytes())?;
        report_html = Some(path);
        if let Some(table) = table {
            let path = run_dir.join(crate::html_metrics::PER_INSTANCE_CSV);
            write_atomic(&path, table.as_bytes())?;
            csv.push(path);
        }
    }

    // Gumby's hook, after the built-in report; then the page again, with
    // what it drew under plots/extra/ and how it ended.
    let hook = opts
        .post_process_cmd
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|cmd| hook::run(run_dir, cmd));
    if let Some(h) = &hook {
        if !h.ok {
            warnings.push(Warning::file(
                hook::POST_PROCESS_LOG,
                format!("post_process_cmd `{}` failed: {}", h.command, h.error),
            ));
        }
        if let Some(path) = &report_html {
            let extras = load::extra_images(run_dir, &mut warnings);
            let (page, _) = page(
                run_dir,
                &index,
                &analysis,
                &rendered,
                &warnings,
                Some((h, &extras)),
                opts,
            );
            write_atomic(path, page.as_bytes())?;
        }
    }

    Ok(ReportSummary {
        run_dir: run_dir.to_path_buf(),
        summary_json,
        report_html,
        plots,
        svgs,
        csv,
        hook,
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

/// A drawn figure: its PNG and its SVG.
type Drawn = (Figure, Vec<u8>, String);

/// Renders figures on up to `threads` threads, keeping their order.
fn render_all(figures: &[Figure], threads: usize) -> Result<Vec<Drawn>, ReportError> {
    let next = AtomicUsize::new(0);
    type Slot = Option<Result<(Vec<u8>, String), ReportError>>;
    let out: Mutex<Vec<Slot>> = Mutex::new(figures.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, figures.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(fig) = figures.get(i) else { break };
                    let drawn = plot::render(fig).and_then(|png| Ok((png, plot::render_svg(fig)?)));
                    out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(drawn);
                }
            });
        }
    });
    let results = out.into_inner().unwrap_or_else(|p| p.into_inner());
    figures
        .iter()
        .zip(results)
        .map(|(fig, r)| {
            let (png, svg) = r.unwrap_or_else(|| {
                Err(ReportError::Plot {
                    name: fig.file.clone(),
                    message: "was not drawn (a drawing thread stopped)".into(),
                })
            })?;
            Ok((fig.clone(), png, svg))
        })
        .collect()
}

/// The run's name in the CSVs: run.json's `run_id`, else the folder's name.
fn run_name(run_dir: &Path, index: &RunIndex) -> String {
    index
        .plan
        .as_ref()
        .map(|p| p.run_id.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| folder_name(run_dir))
}

fn folder_name(run_dir: &Path) -> String {
    run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into())
}

/// `report_walker_messages` from run.json's config: `include` or `exclude`
/// (the default).
fn walker_messages(index: &RunIndex, warnings: &mut Vec<Warning>) -> bool {
    let value = index
        .plan
        .as_ref()
        .and_then(|p| p.config.get("report_walker_messages"))
        .map(|v| v.trim().to_ascii_lowercase());
    match value.as_deref() {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(other) => {
            warnings.push(Warning::file(
                peerlab_run::layout::RUN_JSON,
                format!("report_walker_messages = `{other}` is neither `include` nor `exclude`; the walker's messages are left out"),
            ));
            false
        }
    }
}

/// The figures of the modules' autoplot CSVs, one per file name.
fn autoplot_figures(run_dir: &Path, index: &RunIndex, warnings: &mut Vec<Warning>) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < index.autoplot.len() {
        let name = &index.autoplot[i].name;
        let mut files = Vec::new();
        while i < index.autoplot.len() && &index.autoplot[i].name == name {
            let f = &index.autoplot[i];
            if let Some(text) = load::autoplot_text(run_dir, f, warnings) {
                match plot_metrics::parse_autoplot(&text) {
                    Ok((x, series)) => files.push((f.instance, x, series)),
                    Err(why) => {
                        warnings.push(Warning::file(f.path.clone(), format!("not plotted: {why}")))
                    }
                }
            }
            i += 1;
        }
        if !files.is_empty() {
            out.push(plot_metrics::autoplot_figure(name, &files));
        }
    }
    out
}

/// report.html, and `per_instance.csv` when the page lists only some
/// instances. `after`: how `post_process_cmd` ended and what it drew.
fn page(
    run_dir: &Path,
    index: &RunIndex,
    analysis: &Analysis,
    rendered: &[Drawn],
    warnings: &[Warning],
    after: Option<(&HookOutcome, &[load::ExtraImage])>,
    opts: &ReportOptions,
) -> (String, Option<String>) {
    let folder_name = folder_name(run_dir);
    let err_files: Vec<(u32, String)> = index
        .instances
        .iter()
        .filter_map(|i| Some((i.id, i.err.clone()?)))
        .collect();
    let out_files: Vec<(u32, String)> = index
        .instances
        .iter()
        .filter_map(|i| Some((i.id, i.out.clone()?)))
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
    let page = html::Page {
        folder_name: &folder_name,
        plan: index.plan.as_ref(),
        summary: index.summary.as_ref(),
        aggregates: &analysis.aggregates,
        metrics: &analysis.metrics,
        figures: rendered,
        warnings,
        err_files: &err_files,
        out_files: &out_files,
        process_stderr: &process_stderr,
        hook: after.map(|a| a.0),
        extras: after.map_or(&[], |a| a.1),
        page_instances: opts.page_instances,
    };
    let table = crate::html_metrics::summarised(&page)
        .then(|| crate::html_metrics::per_instance_csv(&page));
    (html::render(&page), table)
}

/// Writes through a temporary file and a rename (peerlab-run's
/// `write_atomic`), so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    peerlab_run::write::write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
