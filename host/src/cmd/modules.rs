//! `peerlab modules`: list the modules peerlab can load (built-in and on
//! the plugin search path) with versions and callbacks, or load some and try
//! callbacks on them in-process (`--call`), without a run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::global::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, GlobalArgs};
use crate::modules::harness::{self, HarnessOptions};
use crate::modules::{
    LoadErrorKind, LoadModules, LoadedModule, Registry, SearchPaths, builtin_modules,
};

/// Arguments of `peerlab modules`.
#[derive(Args, Debug)]
pub struct ModulesArgs {
    /// Only these modules (names as in `&module`: built-in, Gumby name, plugin name or .so path)
    pub modules: Vec<String>,
    /// Extra plugin directory, searched first (repeatable; also PEERLAB_PLUGIN_PATH)
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<PathBuf>,
    /// Also search this experiment directory
    #[arg(long = "experiment-dir", value_name = "DIR")]
    pub experiment_dir: Option<PathBuf>,
    /// Load MODULES and run this scenario line (without its time) on each instance, in order (repeatable)
    #[arg(long = "call", value_name = "LINE")]
    pub call: Vec<String>,
    /// With --call: how many instances to make
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub instances: u64,
    /// With --call: a config key the modules can read (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub config: Vec<(String, String)>,
    /// With --call: the run seed
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Entry point of `peerlab modules`.
pub fn run(global: &GlobalArgs, args: ModulesArgs) -> anyhow::Result<u8> {
    let paths = SearchPaths::standard(&args.plugin_path, args.experiment_dir.as_deref());
    let verbose = global.verbose > 0;
    if !args.call.is_empty() || !args.modules.is_empty() {
        let names: Vec<&str> = args.modules.iter().map(String::as_str).collect();
        let registry = match Registry::load(&names, &paths) {
            Ok(r) => r,
            Err(errors) => {
                eprintln!("peerlab: error: {errors}");
                if verbose {
                    for e in &errors.0 {
                        if let Some(d) = &e.detail {
                            eprintln!("\n{}:\n{}", e.requested, d.trim());
                        }
                    }
                }
                return Ok(EXIT_ERROR);
            }
        };
        if args.call.is_empty() {
            for m in registry
                .modules()
                .iter()
                .skip(usize::from(args.modules.iter().all(|n| n != "core")))
            {
                print_module(m);
            }
            return Ok(EXIT_OK);
        }
        return try_calls(registry, &args);
    }
    for m in builtin_modules() {
        print_module(&m);
    }
    let mut seen = Vec::new();
    for file in paths.all_plugin_files() {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        match crate::modules::load_plugin(&file.display().to_string(), &file) {
            Ok(m) => print_module(&m),
            Err(e) => match e.kind {
                LoadErrorKind::NotAPlugin(_) | LoadErrorKind::Open(_) if !verbose => {}
                _ => {
                    println!("{}\n", e);
                    if verbose && let Some(d) = &e.detail {
                        println!("{}\n", d.trim());
                    }
                }
            },
        }
    }
    if verbose {
        let dirs: Vec<String> = paths
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        println!("searched: {}", dirs.join(", "));
    }
    Ok(EXIT_OK)
}

fn print_module(m: &LoadedModule) {
    let about = if m.about.is_empty() {
        String::new()
    } else {
        format!(": {}", m.about)
    };
    println!(
        "{} {} ({}, plugin-api {}){about}",
        m.name, m.version, m.source, m.api_version
    );
    let usages: Vec<String> = m.callbacks.iter().map(|c| c.usage()).collect();
    let width = usages.iter().map(String::len).max().unwrap_or(0).min(48);
    for (c, u) in m.callbacks.iter().zip(&usages) {
        println!("  {u:width$}  {}", c.help);
    }
    if !m.config_keys.is_empty() {
        println!("  config keys:");
        let width = m
            .config_keys
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        for (key, help) in &m.config_keys {
            println!("    {key:width$}  {help}");
        }
    }
    if !m.metrics.is_empty() {
        // As the statistics files and run.json name them.
        println!("  metrics:");
        let rows: Vec<(String, String, &str)> = m
            .metrics
            .iter()
            .map(|d| {
                let kind = d.kind.name().unwrap_or("?");
                let headline = if d.headline { ", headline" } else { "" };
                (
                    peerlab_instance::metrics::full_name(&m.name, d.name.as_str()),
                    format!("{kind}, {}{headline}", d.unit),
                    d.description.as_str(),
                )
            })
            .collect();
        let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w2 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        for (name, kind, what) in &rows {
            println!("    {name:w1$}  {kind:w2$}  {what}");
        }
    }
    println!();
}

fn try_calls(registry: Registry, args: &ModulesArgs) -> anyhow::Result<u8> {
    let calls = match harness::bind_lines(&registry, &args.call) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(EXIT_ERROR);
        }
    };
    let opts = HarnessOptions {
        instances: args.instances,
        config: args.config.iter().cloned().collect::<BTreeMap<_, _>>(),
        seed: args.seed,
    };
    let report = harness::run(Arc::new(registry), &calls, &opts);
    for l in &report.lines {
        println!("{l}");
    }
    Ok(if report.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
