//! Modules as an instance uses them: the registry of everything a scenario
//! can call, built from built-in modules and plugin roots through one table.
//!
//! - [`Registry::lookup`] / [`Registry::bind`] find a callback (plain or
//!   `module.callback`) and bind and convert its arguments against the
//!   callback's spec; [`Registry::check_command`] turns problems into
//!   diagnostics for `peerlab check`, with "did you mean".
//! - [`instances::Instances`] holds one instance of every module for one
//!   experiment instance and dispatches calls, timers and messages, giving
//!   each call a host context built over the runtime's [`instances::Services`].
//! - Built-in modules ([`core`], and `dispersy` from
//!   `peerlab_dispersy::module`) are written with the same `#[module]` macro
//!   as plugins and registered through the same `ModuleRoot_Ref` table
//!   ([`BUILTIN_ROOTS`]): there is no second code path.
//!
//! Must not: open libraries or read files. Finding and opening plugins
//! (the search path, dlopen, the ELF check, Gumby's alias names) is the
//! host's (`peerlab::modules`), which adds what it loaded with
//! [`Registry::push`].
//!
//! Invariant: no function here panics on bad input (a scenario, a plugin's
//! table, a plugin's error); plugin panics are caught on the plugin side.

pub mod core;
pub mod instances;

use std::fmt;
use std::path::PathBuf;

use peerlab_lang::{Command, Diagnostic, Location};
use peerlab_plugin_api::{BindError, CallArgs, CallbackSpec, ModuleRoot_Ref, RawArg, Value};

pub use instances::{Instances, Services};

/// Where a loaded module came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleSource {
    /// Linked into the host.
    Builtin,
    /// A plugin library.
    Plugin(PathBuf),
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::Builtin => f.write_str("built-in"),
            ModuleSource::Plugin(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One module in the registry: its root module and what it declared.
#[derive(Clone)]
pub struct LoadedModule {
    /// The module's name.
    pub name: String,
    /// The module's version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// One line about it (empty for plugins built against api 1.0).
    pub about: String,
    /// Built-in or which file.
    pub source: ModuleSource,
    /// Its callback table.
    pub callbacks: Vec<CallbackSpec>,
    /// The experiment-config keys it reads, as (name, help) (api 1.2 on).
    pub config_keys: Vec<(String, String)>,
    /// The metrics it declares (api 1.4 on), checked when it was read.
    pub metrics: Vec<peerlab_plugin_api::MetricSpec>,
    root: ModuleRoot_Ref,
}

impl fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("api_version", &self.api_version)
            .field("source", &self.source)
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}

impl LoadedModule {
    /// Read a root module: name, versions and callback table.
    pub fn from_root(root: ModuleRoot_Ref, source: ModuleSource) -> Result<Self, String> {
        let callbacks = (root.describe())().into_result().map_err(String::from)?;
        let metrics: Vec<_> = root
            .metrics()
            .map(|m| m.as_slice().to_vec())
            .unwrap_or_default();
        crate::metrics::check_declarations(root.name().as_str(), &metrics)?;
        Ok(LoadedModule {
            name: root.name().to_string(),
            version: root.version().to_string(),
            api_version: root.api_version().to_string(),
            about: root.about().map(|s| s.to_string()).unwrap_or_default(),
            source,
            callbacks: callbacks.into_vec(),
            config_keys: root
                .config_keys()
                .map(|keys| {
                    keys.iter()
                        .map(|k| (k.name.to_string(), k.help.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            metrics,
            root,
        })
    }

    /// A module written with `#[module(.., export = false)]` inside the
    /// host's own tests.
    #[cfg(test)]
    pub fn builtin<M: peerlab_plugin_api::Module>() -> Self {
        LoadedModule::from_root(
            peerlab_plugin_api::root_module_for::<M>(),
            ModuleSource::Builtin,
        )
        .expect("a test module describes itself")
    }

    /// The root module (to make instances and run the verdict hook).
    pub fn root(&self) -> ModuleRoot_Ref {
        self.root
    }

    /// A callback's spec.
    pub fn callback(&self, name: &str) -> Option<&CallbackSpec> {
        self.callbacks.iter().find(|c| c.name.as_str() == name)
    }
}

/// Names of the built-in modules.
pub const BUILTINS: [&str; 2] = ["core", "dispersy"];

/// What a module gives its root module with (`peerlab_root_module`).
pub type RootFn = fn() -> ModuleRoot_Ref;

/// The built-in modules' table, by name: each gives its root module as a
/// plugin's `peerlab_root_module` does, and is read through the same
/// [`LoadedModule::from_root`].
pub const BUILTIN_ROOTS: [(&str, RootFn); 2] = [
    ("core", core::peerlab_root_module),
    ("dispersy", peerlab_dispersy::module::peerlab_root_module),
];

/// The built-in module `name`, if there is one.
pub fn builtin(name: &str) -> Option<LoadedModule> {
    let (_, root) = BUILTIN_ROOTS.iter().find(|(n, _)| *n == name)?;
    // describe() of a built-in cannot fail short of a bug in the host; keep
    // the module usable with an empty table rather than panic.
    let root = root();
    Some(
        LoadedModule::from_root(root, ModuleSource::Builtin).unwrap_or_else(|_| LoadedModule {
            name: name.into(),
            version: root.version().to_string(),
            api_version: root.api_version().to_string(),
            about: root.about().map(|s| s.to_string()).unwrap_or_default(),
            source: ModuleSource::Builtin,
            callbacks: Vec::new(),
            config_keys: Vec::new(),
            metrics: Vec::new(),
            root,
        }),
    )
}

/// Every built-in module.
pub fn builtin_modules() -> Vec<LoadedModule> {
    BUILTINS.iter().filter_map(|n| builtin(n)).collect()
}

/// A callback call resolved and bound, ready for [`Instances::call`].
#[derive(Debug, Clone, PartialEq)]
pub struct BoundCall {
    /// Index of the module in the registry.
    pub module: usize,
    /// The module's name.
    pub module_name: String,
    /// The callback's name.
    pub callback: String,
    /// Bound, converted arguments.
    pub args: CallArgs,
}

impl fmt::Display for BoundCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module_name, self.callback)
    }
}

/// Why a scenario call does not resolve or bind.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// `module.callback` with a module that is not loaded.
    UnknownModule {
        /// The module part.
        module: String,
        /// The loaded modules.
        loaded: Vec<String>,
    },
    /// No loaded module has this callback.
    UnknownCallback {
        /// The name as written.
        name: String,
        /// The closest known callback, qualified when needed.
        suggestion: Option<String>,
        /// The loaded modules.
        loaded: Vec<String>,
        /// A built-in module that is not loaded but has this callback.
        provided_by: Option<String>,
    },
    /// Several loaded modules have it.
    Ambiguous {
        /// The callback.
        name: String,
        /// The modules defining it.
        modules: Vec<String>,
    },
    /// The arguments do not fit.
    Args {
        /// The resolved `module.callback`.
        target: String,
        /// Every problem.
        errors: Vec<BindError>,
    },
}

impl CallError {
    /// What to do about it.
    pub fn help(&self) -> Option<String> {
        match self {
            CallError::UnknownModule { loaded, .. } => {
                Some(format!("loaded modules: {}", loaded.join(", ")))
            }
            CallError::UnknownCallback {
                name,
                suggestion,
                loaded,
                provided_by,
            } => Some(match (provided_by, suggestion) {
                (Some(m), _) => format!(
                    "`{name}` is a callback of the module `{m}`, which the scenario does not load: add `&module {m}` at its top"
                ),
                (None, Some(s)) => {
                    format!("did you mean `{s}`? loaded modules: {}", loaded.join(", "))
                }
                (None, None) => format!(
                    "loaded modules: {}; `peerlab modules` lists their callbacks",
                    loaded.join(", ")
                ),
            }),
            CallError::Ambiguous { name, modules } => Some(format!(
                "qualify it: {}",
                modules
                    .iter()
                    .map(|m| format!("`{m}.{name}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            CallError::Args { errors, .. } => errors.iter().find_map(|e| e.help.clone()),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownModule { module, .. } => write!(f, "no module `{module}` is loaded"),
            CallError::UnknownCallback { name, .. } => write!(f, "unknown callback `{name}`"),
            CallError::Ambiguous { name, modules } => write!(
                f,
                "callback `{name}` is defined by several modules: {}",
                modules
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            CallError::Args { target, errors } => {
                write!(f, "{target}: ")?;
                let msgs: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                f.write_str(&msgs.join("; "))
            }
        }
    }
}

impl std::error::Error for CallError {}

/// The modules of one experiment, in load order; `core` is always first.
#[derive(Debug, Clone)]
pub struct Registry {
    modules: Vec<LoadedModule>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::core_only()
    }
}

impl Registry {
    /// Only the always-present `core` module.
    pub fn core_only() -> Self {
        Registry {
            modules: builtin("core").into_iter().collect(),
        }
    }

    /// Add a module the host loaded (the host checks for a duplicate
    /// name first: [`Registry::module`]); returns its index.
    pub fn push(&mut self, module: LoadedModule) -> usize {
        self.modules.push(module);
        self.modules.len() - 1
    }

    /// The config keys every loaded module reads.
    pub fn config_keys(&self) -> Vec<String> {
        self.modules
            .iter()
            .flat_map(|m| m.config_keys.iter().map(|(k, _)| k.clone()))
            .collect()
    }

    /// Every loaded module's metric declarations, by the full names the
    /// statistics files use, as `run.json` records them.
    pub fn metric_decls(&self) -> Vec<peerlab_run::metrics::MetricDecl> {
        use peerlab_run::metrics::{MetricDecl, MetricKind};
        self.modules
            .iter()
            .flat_map(|m| {
                m.metrics.iter().map(|d| MetricDecl {
                    name: crate::metrics::full_name(&m.name, d.name.as_str()),
                    module: m.name.clone(),
                    kind: match d.kind {
                        peerlab_plugin_api::MetricKind::COUNTER => Some(MetricKind::Counter),
                        peerlab_plugin_api::MetricKind::GAUGE => Some(MetricKind::Gauge),
                        peerlab_plugin_api::MetricKind::OBSERVATION => {
                            Some(MetricKind::Observation)
                        }
                        _ => None,
                    },
                    unit: d.unit.to_string(),
                    description: d.description.to_string(),
                    headline: d.headline,
                })
            })
            .collect()
    }

    /// The modules, `core` first, then in load order.
    pub fn modules(&self) -> &[LoadedModule] {
        &self.modules
    }

    /// A module by name.
    pub fn module(&self, name: &str) -> Option<(usize, &LoadedModule)> {
        self.modules
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
    }

    /// The loaded modules' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.name.clone()).collect()
    }

    /// Find the module of a callback written `callback` or `module.callback`.
    ///
    /// An unqualified name must be defined by exactly one loaded module;
    /// modules loaded with `&module` shadow `core`'s callbacks of the same
    /// name (as Gumby's later registrations did).
    pub fn lookup(&self, written: &str) -> Result<(usize, &CallbackSpec), CallError> {
        if let Some((module, cb)) = written.rsplit_once('.') {
            let Some((i, m)) = self.module(module) else {
                return Err(CallError::UnknownModule {
                    module: module.into(),
                    loaded: self.names(),
                });
            };
            return match m.callback(cb) {
                Some(spec) => Ok((i, spec)),
                None => Err(CallError::UnknownCallback {
                    name: written.into(),
                    suggestion: peerlab_lang::suggest(
                        cb,
                        m.callbacks.iter().map(|c| c.name.as_str()),
                    )
                    .map(|s| format!("{module}.{s}")),
                    loaded: self.names(),
                    provided_by: None,
                }),
            };
        }
        let found: Vec<(usize, &CallbackSpec)> = self
            .modules
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.callback(written).map(|s| (i, s)))
            .collect();
        let non_core: Vec<&(usize, &CallbackSpec)> = found
            .iter()
            .filter(|(i, _)| self.modules[*i].name != "core")
            .collect();
        match (non_core.len(), found.first()) {
            (1, _) => Ok(*non_core[0]),
            (0, Some(core)) => Ok(*core),
            (0, None) => {
                let all: Vec<&str> = self
                    .modules
                    .iter()
                    .flat_map(|m| m.callbacks.iter().map(|c| c.name.as_str()))
                    .collect();
                let loaded = self.names();
                let provided_by = builtin_modules()
                    .into_iter()
                    .find(|m| !loaded.contains(&m.name) && m.callback(written).is_some())
                    .map(|m| m.name);
                Err(CallError::UnknownCallback {
                    name: written.into(),
                    suggestion: peerlab_lang::suggest(written, all).map(str::to_string),
                    loaded,
                    provided_by,
                })
            }
            _ => Err(CallError::Ambiguous {
                name: written.into(),
                modules: non_core
                    .iter()
                    .map(|(i, _)| self.modules[*i].name.clone())
                    .collect(),
            }),
        }
    }

    /// Resolve and bind a call.
    pub fn bind(&self, written: &str, args: &[RawArg]) -> Result<BoundCall, CallError> {
        let (module, spec) = self.lookup(written)?;
        let module_name = self.modules[module].name.clone();
        match peerlab_plugin_api::bind(spec, args) {
            Ok(args) => Ok(BoundCall {
                module,
                module_name,
                callback: spec.name.to_string(),
                args,
            }),
            Err(errors) => Err(CallError::Args {
                target: format!("{module_name}.{}", spec.name),
                errors,
            }),
        }
    }

    /// Resolve and bind a parsed scenario command, or say at which words
    /// (file:line:col) it goes wrong.
    pub fn bind_command(&self, cmd: &Command) -> Result<BoundCall, Vec<Diagnostic>> {
        let (raw, locs) = command_args(cmd);
        let bound = self
            .bind(&cmd.callback, &raw)
            .map_err(|e| self.call_diagnostics(cmd, &locs, e))?;
        // Values whose units and ranges the core module's own callbacks
        // take as text (bandwidths): checked here, at their words.
        if bound.module_name == "core" {
            let diags = core::check_command(&bound.callback, cmd);
            if !diags.is_empty() {
                return Err(diags);
            }
        }
        Ok(bound)
    }

    /// Every problem with one scenario command (empty when it will bind).
    pub fn check_command(&self, cmd: &Command) -> Vec<Diagnostic> {
        match self.bind_command(cmd) {
            // The presence commands' words have a grammar of their own.
            Ok(call) => crate::presence::check_command(&call, cmd),
            Err(diags) => diags,
        }
    }

    fn call_diagnostics(&self, cmd: &Command, locs: &[Location], e: CallError) -> Vec<Diagnostic> {
        match &e {
            CallError::Args { target, errors } => errors
                .iter()
                .map(|b| {
                    let loc = b.arg.and_then(|i| locs.get(i)).unwrap_or(&cmd.callback_loc);
                    let mut d = Diagnostic::error(format!("{target}: {}", b.message))
                        .with_code("bad-argument")
                        .at(loc.clone());
                    if let Some(h) = &b.help {
                        d = d.with_help(h.clone());
                    }
                    d
                })
                .collect(),
            _ => {
                let code = match e {
                    CallError::UnknownModule { .. } => "unknown-module",
                    CallError::Ambiguous { .. } => "ambiguous-callback",
                    _ => "unknown-callback",
                };
                let mut d = Diagnostic::error(e.to_string())
                    .with_code(code)
                    .at(cmd.callback_loc.clone());
                if let Some(h) = e.help() {
                    d = d.with_help(h);
                }
                vec![d]
            }
        }
    }
}

/// A command's words as raw arguments (positional, then keyword) and the
/// location of each.
pub fn command_args(cmd: &Command) -> (Vec<RawArg>, Vec<Location>) {
    let mut raw = Vec::new();
    let mut locs = Vec::new();
    for a in &cmd.args {
        raw.push(RawArg::positional(Value::Str(a.value.as_str().into())));
        locs.push(a.loc.clone());
    }
    for k in &cmd.kwargs {
        raw.push(RawArg::keyword(
            &k.name,
            Value::Str(k.value.as_str().into()),
        ));
        locs.push(k.loc.clone());
    }
    (raw, locs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        let mut r = Registry::core_only();
        r.push(builtin("dispersy").unwrap());
        r
    }

    fn words(ws: &[&str]) -> Vec<RawArg> {
        ws.iter().map(|w| RawArg::from_word(w)).collect()
    }

    #[test]
    fn calls_bind_with_suggestions() {
        let r = reg();
        let b = r.bind("introduce_peers", &words(&["max_peers=3"])).unwrap();
        assert_eq!(b.to_string(), "dispersy.introduce_peers");
        assert_eq!(b.args.get(0), Some(Value::Int(3)));
        let e = r.bind("introduce_peer", &[]).unwrap_err();
        assert_eq!(
            e.help().unwrap(),
            "did you mean `introduce_peers`? loaded modules: core, dispersy"
        );
        let e = r
            .bind("introduce_peers", &words(&["max_peers=many"]))
            .unwrap_err();
        assert!(e.to_string().contains("expected an integer"), "{e}");
        assert!(r.bind("core.echo", &words(&["a", "b"])).is_ok());
        let e = r.bind("nope.echo", &[]).unwrap_err();
        assert_eq!(e.to_string(), "no module `nope` is loaded");
    }

    #[test]
    fn the_dispersy_module_declares_the_keys_the_runtime_reads() {
        let d = builtin("dispersy").unwrap();
        let keys: Vec<&str> = d.config_keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, crate::OverlayTuning::KEYS);
        assert_eq!(d.source, ModuleSource::Builtin);
    }
}
