//! `peerlab check FILE...`: validate `.conf` and `.scenario` files without
//! running anything, print what was understood or every problem.
//!
//! Reading, planning and module resolution are the library's
//! ([`crate::experiment`]); this file parses the flags, calls it, and
//! renders the summary. Module resolution is skipped with `--syntax-only`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use peerlab_lang::{Diagnostic, Format, KEYS, KeyKind, PhaseKind, Severity};
use serde::Serialize;

use crate::experiment::load::display;
use crate::experiment::{self, Loaded, load};
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
    #[command(flatten)]
    pub plugin: super::PluginPathArg,
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
        experiment::check_plan(&mut loaded, &args.plan.overrides(), false);
        let modules = (!args.syntax_only).then_some(args.plugin.plugin_path.as_slice());
        experiment::check_loaded(&mut loaded, modules, global.verbose > 0, false);
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
        let l = peerlab_lang::Limits::DEFAULT;
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
