//! Modules as the host finds them: the registry's types and dispatch are
//! the instance runtime's (`peerlab_instance::modules`, re-exported here);
//! this module opens them.
//!
//! - [`LoadModules::resolve`] (on [`Registry`]) turns a scenario's
//!   `&module` lines into loaded modules (built-in name, Gumby alias, plugin
//!   file on the search path, or a path), collecting every failure;
//!   finding, checking and opening plugin files is `peerlab_loader`'s
//!   ([`loader`]).
//! - [`load_and_check`]: the one procedure behind `peerlab check` and the
//!   checks `peerlab run` makes before starting anything.
//! - [`harness`]: `peerlab modules --call`, modules run without a network.
//!
//! Invariant: no function here panics on bad input (a scenario, a plugin's
//! table, a plugin's error); plugin panics are caught on the plugin side.

pub mod harness;

pub use peerlab_loader as loader;
pub use peerlab_loader::alias;

use std::path::{Path, PathBuf};

use peerlab_lang::{Diagnostic, ModuleRef};

pub use instances::{Instances, Services};
pub use loader::{LoadError, LoadErrorKind, LoadErrors, SearchPaths};

pub use peerlab_instance::modules::{
    BUILTIN_ROOTS, BUILTINS, BoundCall, CallError, LoadedModule, ModuleSource, Registry, RootFn,
    builtin, builtin_modules, command_args, core, instances,
};

/// Loading modules into a [`Registry`]: the host's half of it (the search
/// path, plugin files, Gumby's alias names), written as associated
/// functions so that callers read `Registry::load(..)`.
pub trait LoadModules: Sized {
    /// Load every `&module` of a scenario; fails with every load error.
    fn resolve(refs: &[ModuleRef], paths: &SearchPaths) -> Result<Self, LoadErrors>;
    /// Load modules by name (as `&module` would); fails with every load error.
    fn load(names: &[&str], paths: &SearchPaths) -> Result<Self, LoadErrors>;
    /// Load what can be loaded; return the registry plus, for each failure,
    /// the index of the name that failed and why.
    fn load_partial(names: &[&str], paths: &SearchPaths) -> (Self, Vec<(usize, LoadError)>);
    /// Diagnostics (at each `&module` line) for the failures of
    /// [`LoadModules::load_partial`]; `verbose` adds abi_stable's full report.
    fn load_diagnostics(
        refs: &[ModuleRef],
        errors: &[(usize, LoadError)],
        verbose: bool,
    ) -> Vec<Diagnostic>;
    /// Resolve one name and add its module (a no-op if that same module is
    /// already loaded).
    fn add(&mut self, requested: &str, paths: &SearchPaths) -> Result<usize, LoadError>;
}

impl LoadModules for Registry {
    fn resolve(refs: &[ModuleRef], paths: &SearchPaths) -> Result<Registry, LoadErrors> {
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        Registry::load(&names, paths)
    }

    fn load(names: &[&str], paths: &SearchPaths) -> Result<Registry, LoadErrors> {
        let (reg, errors) = Registry::load_partial(names, paths);
        if errors.is_empty() {
            Ok(reg)
        } else {
            Err(LoadErrors(errors.into_iter().map(|(_, e)| e).collect()))
        }
    }

    fn load_partial(names: &[&str], paths: &SearchPaths) -> (Registry, Vec<(usize, LoadError)>) {
        let mut reg = Registry::core_only();
        let mut errors = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = reg.add(name, paths) {
                errors.push((i, e));
            }
        }
        (reg, errors)
    }

    fn load_diagnostics(
        refs: &[ModuleRef],
        errors: &[(usize, LoadError)],
        verbose: bool,
    ) -> Vec<Diagnostic> {
        errors
            .iter()
            .map(|(i, e)| {
                let mut d = Diagnostic::error(e.to_string()).with_code(match e.kind {
                    LoadErrorKind::NotFound { .. } => "module-not-found",
                    LoadErrorKind::IncompatibleApi { .. } => "incompatible-plugin-api",
                    LoadErrorKind::LayoutMismatch { .. } => "plugin-layout-mismatch",
                    LoadErrorKind::Duplicate { .. } => "duplicate-module",
                    _ => "plugin-load-failed",
                });
                if let Some(r) = refs.get(*i) {
                    d = d.at(r.loc.clone());
                }
                let mut help = e.help().unwrap_or_default();
                if verbose && let Some(detail) = &e.detail {
                    help = format!("{help}\n{}", detail.trim());
                }
                if !help.is_empty() {
                    d = d.with_help(help);
                }
                d
            })
            .collect()
    }

    fn add(&mut self, requested: &str, paths: &SearchPaths) -> Result<usize, LoadError> {
        let m = resolve_one(requested, paths)?;
        if let Some((i, first)) = self.module(&m.name) {
            if first.source == m.source {
                return Ok(i);
            }
            return Err(LoadError {
                requested: requested.to_string(),
                path: match &m.source {
                    ModuleSource::Plugin(p) => Some(p.clone()),
                    ModuleSource::Builtin => None,
                },
                kind: LoadErrorKind::Duplicate {
                    name: m.name.clone(),
                    first: first.source.to_string(),
                },
                detail: None,
            });
        }
        Ok(self.push(m))
    }
}

/// Everything `peerlab check` needs from modules for one scenario: load its
/// `&module`s (search path: `plugin_path`, `PEERLAB_PLUGIN_PATH`, the
/// experiment directory, the workspace's target directories), then resolve
/// and bind every command. Returns one diagnostic per problem, each at its
/// file:line:col; `verbose` adds abi_stable's full layout report to layout
/// mismatches. While some module failed to load, unknown callbacks are not
/// reported (the missing module may define them).
pub fn check_scenario(
    scenario: &peerlab_lang::Scenario,
    experiment_dir: &Path,
    plugin_path: &[PathBuf],
    verbose: bool,
) -> Vec<Diagnostic> {
    check_scenario_with_keys(scenario, experiment_dir, plugin_path, verbose).0
}

/// [`check_scenario`], plus the config keys the loaded modules read.
pub fn check_scenario_with_keys(
    scenario: &peerlab_lang::Scenario,
    experiment_dir: &Path,
    plugin_path: &[PathBuf],
    verbose: bool,
) -> (Vec<Diagnostic>, Vec<String>) {
    let paths = SearchPaths::standard(plugin_path, Some(experiment_dir));
    let (registry, diagnostics) = load_and_check(scenario, &paths, verbose);
    (diagnostics, registry.config_keys())
}

/// Load a scenario's modules and check every command against them: the
/// one procedure behind `peerlab check` and the checks `peerlab run` makes
/// before starting anything. With a module that failed to load, commands
/// are still checked, but "unknown callback/module" is not reported (the
/// callback may well be in the module that did not load).
pub fn load_and_check(
    scenario: &peerlab_lang::Scenario,
    paths: &SearchPaths,
    verbose: bool,
) -> (Registry, Vec<Diagnostic>) {
    let names: Vec<&str> = scenario.modules.iter().map(|m| m.name.as_str()).collect();
    let (registry, errors) = Registry::load_partial(&names, paths);
    let mut out = Registry::load_diagnostics(&scenario.modules, &errors, verbose);
    for cmd in &scenario.commands {
        for d in registry.check_command(cmd) {
            let unknown = matches!(d.code, Some("unknown-callback" | "unknown-module"));
            if !unknown || errors.is_empty() {
                out.push(d);
            }
        }
    }
    (registry, out)
}

/// Drop "unknown key" warnings about keys one of the modules reads.
pub fn forget_known_keys(diagnostics: &mut Vec<Diagnostic>, module_keys: &[String]) {
    diagnostics.retain(|d| {
        peerlab_lang::unknown_key_of(d).is_none_or(|k| !module_keys.iter().any(|m| m == k))
    });
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".so")
}

fn resolve_one(requested: &str, paths: &SearchPaths) -> Result<LoadedModule, LoadError> {
    if let Some(m) = builtin(requested) {
        return Ok(m);
    }
    let name = alias::resolve(requested).unwrap_or(requested);
    if let Some(m) = builtin(name) {
        return Ok(m);
    }
    let path = if looks_like_path(name) {
        let p = PathBuf::from(name);
        let p = match (&paths.experiment_dir, p.is_relative() && !p.exists()) {
            (Some(dir), true) => dir.join(&p),
            _ => p,
        };
        if !p.is_file() {
            return Err(LoadError {
                requested: requested.into(),
                path: Some(p.clone()),
                kind: LoadErrorKind::NotFound { searched: vec![p] },
                detail: None,
            });
        }
        p
    } else {
        match paths.find(name) {
            (Some(p), _) => p,
            (None, searched) => {
                return Err(LoadError {
                    requested: requested.into(),
                    path: None,
                    kind: LoadErrorKind::NotFound { searched },
                    detail: None,
                });
            }
        }
    };
    load_plugin(requested, &path)
}

/// Load one plugin file into a [`LoadedModule`].
pub fn load_plugin(requested: &str, path: &Path) -> Result<LoadedModule, LoadError> {
    let root = loader::load_library(requested, path)?;
    // The library was opened by its canonical path; say which file that was.
    let source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    LoadedModule::from_root(root, ModuleSource::Plugin(source)).map_err(|e| LoadError {
        requested: requested.into(),
        path: Some(path.to_path_buf()),
        kind: LoadErrorKind::InitFailed(e),
        detail: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_aliases_resolve() {
        let mut r = Registry::core_only();
        let i = r
            .add(
                "gumby.modules.dispersy_module.DispersyModule",
                &SearchPaths::default(),
            )
            .unwrap();
        assert_eq!(r.modules()[i].name, "dispersy");
        assert_eq!(r.add("dispersy", &SearchPaths::default()).unwrap(), i);
        assert_eq!(r.modules()[0].name, "core");
    }

    #[test]
    fn unknown_plugin_names_every_directory_searched() {
        let paths = SearchPaths {
            plugin_path: vec!["/nonexistent/plugins".into()],
            ..SearchPaths::default()
        };
        let e = Registry::load(&["nosuchmodule"], &paths).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("module `nosuchmodule`: not found"), "{s}");
        assert!(s.contains("/nonexistent/plugins"), "{s}");
    }
}
