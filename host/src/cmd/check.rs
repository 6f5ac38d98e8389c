//! `peerlab check FILE...`: validate `.conf` and `.scenario` files without
//! running anything, print what was understood or every problem.
//!
//! This is the edge where files are read: [`load`] reads a config or a
//! scenario (and the scenario a config names, and includes) from disk and
//! hands the text to `peerlab-lang`, which does all the parsing. Every such
//! read goes through [`read_source`]: regular files only, at most one byte
//! past lang's size limit (`peerlab_lang::Limits`). Module
//! resolution is one step, [`resolve_modules`], skipped with
//! `--syntax-only`. Nothing here starts instances or opens sockets.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use peerlab_lang::{
    Diagnostic, Experiment, Format, IncludeLoader, KEYS, KeyKind, Limits, Location, PhaseKind,
    Scenario, Severity, SourceFile, SourceMap, decode_source, parse_config, parse_scenario,
};
use serde::Serialize;

use crate::global::{EXIT_FAILED, EXIT_OK, GlobalArgs};

/// What `peerlab check --help` says about input limits.
const LIMITS_HELP: &str = "Limits: scenario files up to 16 MiB each and 64 MiB with their includes, \
1,000 includes, 500,000 commands after includes; configs up to 1 MiB; \
regular files only, UTF-8 (a BOM is accepted). See docs/compat.md, \"Limits\".";

/// Arguments of `peerlab check`.
#[derive(Args, Debug)]
#[command(after_help = LIMITS_HELP)]
pub struct CheckArgs {
    /// The .conf and .scenario files to check (a .conf also checks its scenario_file)
    #[arg(required_unless_present = "explain_keys", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Only parse: do not resolve `&module` names and callbacks
    #[arg(long)]
    pub syntax_only: bool,
    /// How to print: rich for people, one line per problem, or JSON (one object per file)
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Colour in human output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Directories searched for plugin modules (also PEERLAB_PLUGIN_PATH, `:`-separated)
    #[arg(
        long,
        value_name = "DIR",
        env = "PEERLAB_PLUGIN_PATH",
        value_delimiter = ':'
    )]
    pub plugin_path: Vec<PathBuf>,
    /// List every config key peerlab knows, with a line on each, and exit
    #[arg(long)]
    pub explain_keys: bool,
    /// The flags of `peerlab run` that change what runs: checked as `run` would
    #[command(flatten)]
    pub plan: super::run::PlanArgs,
}

/// Output formats of `peerlab check`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Source snippets with carets, then a summary per file
    Human,
    /// `file:line:col: severity: message`, one per line, then a summary per file
    Short,
    /// One JSON object per file: summary and diagnostics
    Json,
}

/// When to colour human output.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is not set
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

/// What reading one file (and what it pulls in) produced.
#[derive(Debug)]
pub struct Loaded {
    /// The file as given.
    pub path: PathBuf,
    /// The experiment: from the config, or the defaults for a lone scenario.
    pub experiment: Experiment,
    /// The directory relative paths are resolved against (the file's own).
    pub experiment_dir: PathBuf,
    /// Where the scenario is, when there is one.
    pub scenario_path: Option<PathBuf>,
    /// The scenario, when there is one and it could be read.
    pub scenario: Option<Scenario>,
    /// Every text read, for rendering diagnostics.
    pub sources: SourceMap,
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads included files from disk.
struct FsIncludeLoader {
    experiment_dir: PathBuf,
}

impl IncludeLoader for FsIncludeLoader {
    fn read(&mut self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
        match read_source(path, limit) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn experiment_dir(&self) -> Option<&Path> {
        Some(&self.experiment_dir)
    }
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The first `limit + 1` bytes of the regular file at `path` (lang refuses
/// a file longer than `limit`, so more would be waste, and `/dev/zero` never
/// ends). Anything but a regular file is refused before a byte is read: a
/// FIFO would block until a writer comes, a device might never end. Opened
/// non-blocking so that even opening a FIFO returns at once.
pub fn read_source(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Looked at before opening (opening some devices does something), and
    // again once open (the path may have changed in between).
    regular_file(&std::fs::metadata(path)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    regular_file(&meta)?;
    let cap = meta.len().min(limit.saturating_add(1));
    let mut bytes = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An error naming what `meta` is, unless it is a regular file.
fn regular_file(meta: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(std::io::Error::other(format!(
            "not a regular file: it is {what}"
        )));
    }
    Ok(())
}

/// A config's or scenario's text, read with [`read_source`] and decoded by
/// lang (size limit, BOM, UTF-8), or the diagnostic saying why not.
fn read_text(path: &Path, limit: u64) -> Result<String, Diagnostic> {
    let name = display(path);
    let bytes = read_source(path, limit).map_err(|e| {
        Diagnostic::error(format!("cannot read `{name}`: {e}"))
            .with_code("unreadable")
            .at(Location::file_only(name.as_str()))
    })?;
    decode_source(bytes, limit).map_err(|e| e.to_diagnostic(&name, None))
}

/// Read and parse a `.conf` (and its `scenario_file`) or a `.scenario`
/// (with the default experiment, named after the file). `env` is the
/// environment used for `PEERLAB_<KEY>` overrides and `$NAME`. Never fails:
/// every problem, including unreadable files, is a diagnostic.
pub fn load(path: &Path, env: &BTreeMap<String, String>) -> Loaded {
    let name = display(path);
    let experiment_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loaded = Loaded {
        path: path.to_path_buf(),
        experiment: Experiment::for_scenario(&name),
        experiment_dir,
        scenario_path: None,
        scenario: None,
        sources: SourceMap::new(),
        diagnostics: Vec::new(),
    };
    let is_conf = path.extension().is_some_and(|e| e == "conf");
    let limits = Limits::DEFAULT;
    let limit = if is_conf {
        limits.config_bytes
    } else {
        limits.scenario_bytes
    };
    let text = match read_text(path, limit) {
        Ok(t) => t,
        Err(d) => {
            loaded.diagnostics.push(d);
            return loaded;
        }
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("conf") => {
            let (raw, mut diags) = parse_config(&name, &text);
            loaded.sources.add(raw.source.clone());
            let (experiment, more) = Experiment::from_config(&raw, env);
            diags.extend(more);
            loaded.experiment = experiment;
            loaded.diagnostics = diags;
            if let Some(file) = loaded.experiment.scenario_file.clone() {
                let at = raw.get("scenario_file").map(|e| e.value_loc.clone());
                let in_dir = loaded.experiment_dir.join(&file);
                // Anything that exists: a FIFO or a directory is refused
                // by the read with what it is, not "not found".
                let found = [in_dir.clone(), PathBuf::from(&file)]
                    .into_iter()
                    .find(|p| p.exists());
                match found {
                    Some(p) => load_scenario(&mut loaded, &p, env, true),
                    None => {
                        let d = Diagnostic::error(format!("scenario file `{file}` not found"))
                            .with_code("scenario-not-found")
                            .with_label("no such file")
                            .with_help(format!(
                                "looked for `{}`; scenario_file is relative to the config file's directory",
                                in_dir.display()
                            ));
                        loaded.diagnostics.push(match at {
                            Some(l) => d.at(l),
                            None => d,
                        });
                    }
                }
            }
        }
        Some("scenario") => {
            loaded
                .sources
                .add(SourceFile::new(name.as_str(), text.as_str()));
            parse_scenario_text(&mut loaded, path, &text, env, false);
        }
        _ => loaded.diagnostics.push(
            Diagnostic::error(format!(
                "cannot check `{name}`: expected a `.conf` or `.scenario` file"
            ))
            .with_code("unknown-file-kind")
            .at(Location::file_only(name.as_str())),
        ),
    }
    loaded
}

fn load_scenario(
    loaded: &mut Loaded,
    path: &Path,
    env: &BTreeMap<String, String>,
    with_config: bool,
) {
    match read_text(path, Limits::DEFAULT.scenario_bytes) {
        Ok(text) => parse_scenario_text(loaded, path, &text, env, with_config),
        Err(d) => loaded.diagnostics.push(d),
    }
}

/// Parse a scenario's text. `with_config`: the experiment came from a
/// config, so the instance count and run time are known and the scenario is
/// checked against them (a lone scenario gets its count at run time).
fn parse_scenario_text(
    loaded: &mut Loaded,
    path: &Path,
    text: &str,
    env: &BTreeMap<String, String>,
    with_config: bool,
) {
    let vars = loaded.experiment.scenario_vars(env);
    let mut includes = FsIncludeLoader {
        experiment_dir: loaded.experiment_dir.clone(),
    };
    let (scenario, diags) = parse_scenario(&display(path), text, &mut includes, &vars);
    loaded.diagnostics.extend(diags);
    if with_config {
        loaded
            .diagnostics
            .extend(loaded.experiment.check_scenario(&scenario));
    }
    loaded.sources.extend(&scenario.sources);
    loaded.scenario_path = Some(path.to_path_buf());
    loaded.scenario = Some(scenario);
}

/// Resolve the scenario's `&module` names and check every command against
/// the callbacks the modules export (names, argument counts and types):
/// the module loader's [`crate::modules::load_and_check`], over
/// `--plugin-path`, the config's `plugin_path` (relative to the config
/// file), `PEERLAB_PLUGIN_PATH` and the experiment's directory. `verbose`
/// adds abi_stable's full report to layout mismatches.
pub fn resolve_modules(
    loaded: &Loaded,
    scenario: &Scenario,
    plugin_path: &[PathBuf],
    verbose: bool,
) -> (crate::modules::Registry, Vec<Diagnostic>) {
    let plugin_path = super::run::with_config_plugin_path(plugin_path, loaded);
    let paths = crate::modules::SearchPaths::standard(
        &plugin_path,
        Some(&super::run::search_dir(&loaded.experiment_dir)),
    );
    crate::modules::load_and_check(scenario, &paths, verbose)
}

/// The summary of one checked file, as printed and as JSON.
#[derive(Debug, Serialize)]
struct Summary {
    file: String,
    ok: bool,
    errors: usize,
    warnings: usize,
    experiment: String,
    instances: u32,
    nodes: u32,
    runner: peerlab_lang::Runner,
    /// `network = simulated`: the run happens in virtual time in one process.
    simulated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<ScenarioSummary>,
}

#[derive(Debug, Serialize)]
struct ScenarioSummary {
    file: String,
    modules: Vec<String>,
    commands: usize,
    load: usize,
    setup: usize,
    timed: usize,
    timeline_seconds: f64,
}

fn summarize(loaded: &Loaded) -> Summary {
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    let exp = &loaded.experiment;
    Summary {
        file: display(&loaded.path),
        ok: errors == 0,
        errors,
        warnings,
        experiment: exp.name.clone(),
        instances: exp.instances,
        nodes: exp.nodes,
        runner: exp.runner,
        simulated: exp.network == peerlab_lang::Network::Simulated,
        experiment_time: exp
            .experiment_time
            .or(exp.node_timeout)
            .map(|d| d.as_secs_f64()),
        scenario: loaded.scenario.as_ref().map(|s| ScenarioSummary {
            file: s.name.to_string(),
            modules: s.modules.iter().map(|m| m.name.clone()).collect(),
            commands: s.commands.len(),
            load: s.count(PhaseKind::Load),
            setup: s.count(PhaseKind::Setup),
            timed: s.count(PhaseKind::Timed),
            timeline_seconds: s.timeline_length(),
        }),
    }
}

/// `1:30` style for a number of seconds (with fractions when present).
fn clock(seconds: f64) -> String {
    let whole = seconds.trunc() as u64;
    let frac = seconds - seconds.trunc();
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    let frac = if frac > 0.0 {
        format!("{frac:.3}")
            .trim_start_matches('0')
            .trim_end_matches('0')
            .to_string()
    } else {
        String::new()
    };
    if h > 0 {
        format!("{h}:{m:02}:{s:02}{frac}")
    } else {
        format!("{m}:{s:02}{frac}")
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn human_summary(s: &Summary, is_conf: bool) -> String {
    let status = if s.ok { "ok" } else { "FAILED" };
    let mut out = format!("{status}: {}", s.file);
    if s.errors + s.warnings > 0 {
        out.push_str(&format!(
            " ({}, {})",
            plural(s.errors, "error"),
            plural(s.warnings, "warning")
        ));
    }
    out.push('\n');
    if is_conf {
        let placement = if s.simulated {
            "on the simulated network".to_string()
        } else {
            format!(
                "on {}, {} runner",
                plural(s.nodes as usize, "node"),
                match s.runner {
                    peerlab_lang::Runner::Local => "local",
                    peerlab_lang::Runner::Slurm => "slurm",
                }
            )
        };
        out.push_str(&format!(
            "  experiment `{}`: {} {placement}",
            s.experiment,
            plural(s.instances as usize, "instance"),
        ));
        if let Some(t) = s.experiment_time {
            out.push_str(&format!(", runs for {}", clock(t)));
        }
        out.push('\n');
    }
    if let Some(sc) = &s.scenario {
        let mods = if sc.modules.is_empty() {
            "none".to_string()
        } else {
            sc.modules.join(", ")
        };
        out.push_str(&format!("  scenario {}: modules: {mods}\n", sc.file));
        out.push_str(&format!(
            "  {} ({} load, {} setup, {} timed), timeline {} ({}s)\n",
            plural(sc.commands, "command"),
            sc.load,
            sc.setup,
            sc.timed,
            clock(sc.timeline_seconds),
            sc.timeline_seconds
        ));
    }
    out
}

fn explain_keys() -> String {
    let width = KEYS.iter().map(|k| k.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (title, pick) in [
        ("peerlab keys", 0),
        ("Gumby names (aliases)", 1),
        ("Gumby helper keys (accepted, not needed)", 2),
    ] {
        out.push_str(&format!("{title}:\n"));
        for k in KEYS {
            let line = match (k.kind, pick) {
                (KeyKind::Typed(ty), 0) => format!("  {:width$}  {ty:<13} {}\n", k.name, k.doc),
                (KeyKind::Alias(of), 1) => format!("  {:width$}  = {of}: {}\n", k.name, k.doc),
                (KeyKind::Gumby, 2) => format!("  {:width$}  {}\n", k.name, k.doc),
                _ => continue,
            };
            out.push_str(&line);
        }
        out.push('\n');
    }
    out.push_str(
        "Any key can be overridden by the environment variable PEERLAB_<KEY> (upper case).\n",
    );
    out
}

/// Entry point of `peerlab check`.
pub fn run(global: &GlobalArgs, args: CheckArgs) -> anyhow::Result<u8> {
    if args.explain_keys {
        print!("{}", explain_keys());
        if args.files.is_empty() {
            return Ok(EXIT_OK);
        }
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let mut any_error = false;
    let mut out = String::new();
    let (mut total_err, mut total_warn) = (0, 0);
    for path in &args.files {
        let mut loaded = load(path, &env);
        super::run::check_plan(&mut loaded, &args.plan, false);
        if !args.syntax_only
            && let Some(scenario) = &loaded.scenario
        {
            let (registry, more) =
                resolve_modules(&loaded, scenario, &args.plugin_path, global.verbose > 0);
            crate::modules::forget_known_keys(&mut loaded.diagnostics, &registry.config_keys());
            loaded.diagnostics.extend(more);
            loaded
                .diagnostics
                .extend(crate::runner::verdict_choice::check_choice(
                    &loaded.experiment,
                    &registry,
                ));
        }
        let host_keys = check_host_keys(&loaded.experiment);
        loaded.diagnostics.extend(host_keys);
        loaded
            .diagnostics
            .extend(check_capacity(&loaded.experiment, false));
        let summary = summarize(&loaded);
        any_error |= !summary.ok;
        total_err += summary.errors;
        total_warn += summary.warnings;
        let is_conf = path.extension().is_some_and(|e| e == "conf");
        match args.format {
            OutputFormat::Human => {
                // Notes are one line each; errors and warnings get snippets.
                for d in &loaded.diagnostics {
                    if d.severity == Severity::Note {
                        out.push_str(&d.render_short());
                        out.push('\n');
                    } else {
                        out.push_str(&d.render_rich(&loaded.sources, color));
                        out.push_str("\n\n");
                    }
                }
                out.push_str(&human_summary(&summary, is_conf));
            }
            OutputFormat::Short => {
                out.push_str(&peerlab_lang::render_all(
                    &loaded.diagnostics,
                    &loaded.sources,
                    Format::Short,
                ));
                out.push_str(&human_summary(&summary, is_conf));
            }
            OutputFormat::Json => {
                #[derive(Serialize)]
                struct FileReport<'a> {
                    #[serde(flatten)]
                    summary: &'a Summary,
                    diagnostics: &'a [Diagnostic],
                }
                out.push_str(&serde_json::to_string(&FileReport {
                    summary: &summary,
                    diagnostics: &loaded.diagnostics,
                })?);
                out.push('\n');
            }
        }
    }
    if args.format != OutputFormat::Json && args.files.len() > 1 {
        out.push_str(&format!(
            "checked {}: {}, {}\n",
            plural(args.files.len(), "file"),
            plural(total_err, "error"),
            plural(total_warn, "warning")
        ));
    }
    print!("{out}");
    Ok(if any_error { EXIT_FAILED } else { EXIT_OK })
}

/// Whether a run of this experiment's size can start on this machine
/// (memory for its instances, local processes), pointing at the instance
/// count, from [`crate::runner::capacity`]. Checked by `peerlab check`
/// (what depends on this machine is a warning there) and, with the
/// command line's overrides applied to `exp` and `for_run`, as errors
/// before `peerlab run` writes or starts anything.
pub fn check_capacity(exp: &peerlab_lang::Experiment, for_run: bool) -> Vec<Diagnostic> {
    use crate::runner::capacity::{Machine, Plan, check};
    let plan = Plan {
        instances: u64::from(exp.instances),
        per_process: u64::from(exp.instances_per_process.max(1)),
        simulated: exp.network == peerlab_lang::Network::Simulated,
        local: exp.runner == peerlab_lang::Runner::Local,
    };
    let at = exp
        .raw
        .get("instances_to_run")
        .filter(|v| v.value.to_string() == exp.instances.to_string())
        .and_then(|v| match &v.origin {
            peerlab_lang::experiment::Origin::File(at) => Some(at.clone()),
            peerlab_lang::experiment::Origin::Env(_) => None,
        });
    check(&plan, &Machine::this(), for_run)
        .into_iter()
        .map(|d| match &at {
            Some(l) => d.at(l.clone()),
            None => d,
        })
        .collect()
}

/// Values of the config keys the host reads itself (the overlay's
/// `OverlayTuning::KEYS`), checked by `peerlab check`
/// and before `peerlab run` starts anything.
pub fn check_host_keys(exp: &peerlab_lang::Experiment) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for key in crate::runtime::instance::OverlayTuning::KEYS {
        let Some(v) = exp.raw.get(key) else {
            continue;
        };
        let one = BTreeMap::from([(key.to_string(), v.value.to_string())]);
        if let Err(why) = crate::runtime::instance::OverlayTuning::from_config(&one) {
            let d = Diagnostic::error(why).with_code("bad-value");
            out.push(match &v.origin {
                peerlab_lang::experiment::Origin::File(at) => d.at(at.clone()),
                peerlab_lang::experiment::Origin::Env(name) => d.with_help(format!(
                    "the value comes from the environment variable {name}"
                )),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_format() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(135.0), "2:15");
        assert_eq!(clock(3725.5), "1:02:05.5");
    }

    #[test]
    fn the_help_states_lang_s_limits() {
        let l = Limits::DEFAULT;
        for figure in [
            peerlab_lang::source::human_bytes(l.scenario_bytes),
            peerlab_lang::source::human_bytes(l.total_bytes),
            peerlab_lang::source::human_bytes(l.config_bytes),
            peerlab_lang::source::thousands(l.includes),
            peerlab_lang::source::thousands(l.commands),
        ] {
            assert!(LIMITS_HELP.contains(&figure), "{figure}");
        }
    }

    #[test]
    fn explain_lists_every_key() {
        let text = explain_keys();
        for k in KEYS {
            assert!(text.contains(k.name), "{}", k.name);
        }
    }
}
