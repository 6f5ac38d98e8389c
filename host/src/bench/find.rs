//! Finding what `peerlab bench` measures: the module `peerlab bench <name>`
//! names, found and loaded as `&module <name>` would be, and the workload it
//! declares (plugin-api 1.5); for `--list`, every module on the search path
//! that declares one.
//!
//! Must not: run or measure anything; name any plugin (the names come from
//! the command line and the modules' declarations).

use std::path::{Path, PathBuf};

use peerlab_plugin_api::abi_stable::std_types::ROption;

use super::error::BenchError;
use super::workload::BenchWorkload;
use crate::modules::{LoadModules, LoadedModule, Registry, SearchPaths, builtin_modules};

/// The workload module `name` declares, or why there is none.
pub fn declared_by(module: &LoadedModule) -> Option<BenchWorkload> {
    match module.root().bench() {
        Some(ROption::RSome(spec)) => Some(BenchWorkload::from_spec(&module.name, spec)),
        _ => None,
    }
}

/// Load module `name` and every module its workload needs: the workload
/// and a registry of them in the scenario's order (for binding its
/// commands and judging the run).
pub fn load(name: &str, plugin_path: &[PathBuf]) -> Result<(BenchWorkload, Registry), BenchError> {
    let paths = SearchPaths::standard(plugin_path, None);
    let builtin = builtin_modules().into_iter().find(|m| m.name == name);
    if builtin.is_none() && paths.find(name).0.is_none() {
        return Err(BenchError::NotBuilt {
            plugin: name.to_string(),
            dirs: dirs(&paths),
        });
    }
    let mut alone = Registry::core_only();
    let index = alone
        .add(name, &paths)
        .map_err(|error| BenchError::CannotLoad {
            plugin: name.to_string(),
            error: Box::new(error),
        })?;
    let module = &alone.modules()[index];
    let Some(workload) = declared_by(module) else {
        return Err(BenchError::NoWorkload {
            plugin: name.to_string(),
            api_version: module.api_version.clone(),
        });
    };
    let all = workload.all_modules();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let (registry, mut errors) = Registry::load_partial(&names, &paths);
    if !errors.is_empty() {
        let (_, error) = errors.swap_remove(0);
        return Err(BenchError::CannotLoad {
            plugin: name.to_string(),
            error: Box::new(error),
        });
    }
    if let Err(why) = check(&workload, &registry) {
        return Err(BenchError::DoesNotFit {
            plugin: name.to_string(),
            why,
        });
    }
    Ok((workload, registry))
}

/// The workload's names, checked against what the loaded modules declare:
/// its commands bind, its fanout key is a config key, its `done` is an
/// observation of its own module. A renamed one is a clear error instead
/// of a measurement of nothing. (Message types are defined at run time and
/// cannot be checked before.)
pub fn check(workload: &BenchWorkload, registry: &Registry) -> Result<(), String> {
    let start = std::iter::once(workload.start_command());
    for command in start.chain(workload.end_commands.iter().map(String::as_str)) {
        registry
            .lookup(command)
            .map_err(|e| format!("command `{command}`: {e}"))?;
    }
    if !workload.fanout_key.is_empty() && !registry.config_keys().contains(&workload.fanout_key) {
        return Err(format!(
            "no module declares the config key `{}`",
            workload.fanout_key
        ));
    }
    let own = registry
        .modules()
        .iter()
        .find(|m| m.name == workload.name)
        .map(|m| m.metrics.as_slice())
        .unwrap_or_default();
    let done = &workload.done;
    match own.iter().find(|m| m.name.as_str() == done.as_str()) {
        Some(m) if m.kind == peerlab_plugin_api::MetricKind::OBSERVATION => Ok(()),
        Some(_) => Err(format!(
            "`done = {done}` is declared, but not as an observation"
        )),
        None => Err(format!(
            "`done = {done}` is not one of the module's declared metrics"
        )),
    }
}

/// Every module on the search path (built-in ones first) that declares a
/// workload, each once (the first found by name, as `&module` finds it),
/// with where it came from.
pub fn list(plugin_path: &[PathBuf]) -> (Vec<(BenchWorkload, String)>, Vec<String>) {
    let paths = SearchPaths::standard(plugin_path, None);
    let mut found: Vec<(BenchWorkload, String)> = builtin_modules()
        .iter()
        .filter_map(|m| declared_by(m).map(|w| (w, m.source.to_string())))
        .collect();
    let mut seen: Vec<PathBuf> = Vec::new();
    for file in paths.all_plugin_files() {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        let Ok(m) = crate::modules::load_plugin(&file.display().to_string(), &file) else {
            continue;
        };
        if let Some(w) = declared_by(&m)
            && !found.iter().any(|(f, _)| f.name == w.name)
        {
            found.push((w, shown(&file)));
        }
    }
    (found, dirs(&paths))
}

fn dirs(paths: &SearchPaths) -> Vec<String> {
    paths
        .dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect()
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::tests::ring;

    #[test]
    fn a_workload_the_modules_do_not_declare_is_refused() {
        let e = check(&ring(), &Registry::core_only()).unwrap_err();
        assert!(e.contains("ping_all"), "{e}");
    }

    #[test]
    fn a_module_without_a_workload_is_named_with_what_to_do() {
        let e = load("dispersy", &[]).unwrap_err().to_string();
        assert!(
            e.contains("dispersy") && e.contains("declares no benchmark workload"),
            "{e}"
        );
        let e = load("no_such_module_here", &[]).unwrap_err().to_string();
        assert!(e.contains("is not built"), "{e}");
    }
}
