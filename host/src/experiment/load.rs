//! Reading an experiment from disk: a `.conf` (and the scenario it names,
//! and that scenario's includes) or a lone `.scenario`, handed as text to
//! `peerlab-lang`, which does all the parsing and typing; then resolving
//! the scenario's modules. This is the edge where experiment files are
//! read: every read goes through [`read_source`] (regular files only, at
//! most one byte past lang's size limit, `peerlab_lang::Limits`).
//!
//! It must not print, start instances or open sockets; `peerlab check`,
//! `peerlab run` and the instance processes all call it, so they read an
//! experiment the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peerlab_lang::{
    Diagnostic, Experiment, IncludeLoader, Limits, Location, Scenario, SourceFile, SourceMap,
    decode_source, parse_config, parse_scenario,
};

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
    /// The topology the config names (`topology`), when it reads.
    pub topology: Option<peerlab_lang::network::TopologySpec>,
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

pub(crate) fn display(path: &Path) -> String {
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

/// Read a run's experiment again as `peerlab run` read it: its config
/// when it had one, else its scenario, with this process's environment.
/// Returns the file read and what was loaded.
pub fn load_again(config_path: Option<&Path>, scenario_path: &Path) -> (PathBuf, Loaded) {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let source = config_path.unwrap_or(scenario_path).to_path_buf();
    let loaded = load(&source, &env);
    (source, loaded)
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
        topology: None,
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
            super::topology::read(&mut loaded, &raw);
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
            let (experiment, diags) = Experiment::for_scenario_with_env(&name, env);
            loaded.experiment = experiment;
            loaded.diagnostics = diags;
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
    let plugin_path = with_config_plugin_path(plugin_path, loaded);
    let paths = crate::modules::SearchPaths::standard(
        &plugin_path,
        Some(&search_dir(&loaded.experiment_dir)),
    );
    // Commands only external instances run are theirs to answer: checked
    // against their callback manifest, not peerlab's modules.
    let ids = super::external::ExternalIds::of(&loaded.experiment);
    let (registry, mut diags) =
        crate::modules::load_and_check(&ids.peerlab_share(scenario), &paths, verbose);
    diags.extend(super::external::check_commands(
        &loaded.experiment,
        &loaded.experiment_dir,
        scenario,
    ));
    (registry, diags)
}

/// [`resolve_modules`] for `loaded` itself, as `peerlab check` and
/// `peerlab run` both check an experiment: the modules' problems join its
/// diagnostics, and "unknown key" warnings about keys a module reads are
/// dropped. Returns the modules that could be loaded.
pub fn check_modules(
    loaded: &mut Loaded,
    scenario: &Scenario,
    plugin_path: &[PathBuf],
    verbose: bool,
) -> crate::modules::Registry {
    let (registry, problems) = resolve_modules(loaded, scenario, plugin_path, verbose);
    crate::modules::forget_known_keys(&mut loaded.diagnostics, &registry.config_keys());
    loaded.diagnostics.extend(problems);
    registry
}

/// Everything `peerlab check` and `peerlab run` check in a loaded
/// experiment beyond its files, adding to its diagnostics in this order
/// (the order they are shown in): its modules ([`check_modules`]) and the
/// verdict choice against them, both only with `modules` (`None` for
/// `check --syntax-only`) and a scenario; the values of the host's own keys
/// ([`check_host_keys`](super::check_host_keys)); whether a run of its size
/// fits this machine ([`check_capacity`](super::check_capacity), errors
/// `for_run`). Returns the modules that could be loaded, when they were
/// checked.
pub fn check_loaded(
    loaded: &mut Loaded,
    modules: Option<&[PathBuf]>,
    verbose: bool,
    for_run: bool,
) -> Option<crate::modules::Registry> {
    let registry = match (modules, loaded.scenario.clone()) {
        (Some(plugin_path), Some(scenario)) => {
            let registry = check_modules(loaded, &scenario, plugin_path, verbose);
            let choice = peerlab_verdicts::choice::check_choice(&loaded.experiment, &registry);
            loaded.diagnostics.extend(choice);
            Some(registry)
        }
        _ => None,
    };
    let host_keys = super::check_host_keys(&loaded.experiment);
    loaded.diagnostics.extend(host_keys);
    let capacity = super::check_capacity(&loaded.experiment, for_run);
    loaded.diagnostics.extend(capacity);
    registry
}

/// `--plugin-path` directories, then the config's `plugin_path` ones
/// (relative to the config file's directory).
pub fn with_config_plugin_path(cli: &[PathBuf], loaded: &Loaded) -> Vec<PathBuf> {
    let mut out = cli.to_vec();
    if let Some(v) = loaded.experiment.raw.get("plugin_path") {
        let base = search_dir(&loaded.experiment_dir);
        for item in v.value.items() {
            let item = item.trim();
            if !item.is_empty() {
                out.push(base.join(item));
            }
        }
    }
    out
}

/// The experiment's directory as a search folder: the current directory
/// for a file given without one (`x.conf`), never the empty path.
pub fn search_dir(dir: &Path) -> PathBuf {
    if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        dir.to_path_buf()
    }
}
