//! Why a module could not be loaded ([`LoadError`], one refusal: what was
//! asked for, which file, why, and what to do) and [`LoadErrors`], every
//! refusal of one resolution reported together.
//!
//! Must not: decide anything; the refusals are made by `load.rs` and by
//! the host's registry (`NotFound`, `Duplicate`, `InitFailed`).

use std::fmt;
use std::path::PathBuf;

use peerlab_plugin_api::API_VERSION;

use crate::elf::ElfProblem;

/// Why a module could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadErrorKind {
    /// No built-in, alias or plugin file has this name.
    NotFound {
        /// Every file tried.
        searched: Vec<PathBuf>,
    },
    /// The file could not be opened as a shared library.
    Open(String),
    /// The file is cut short or its ELF header is unusable: refused before
    /// `dlopen` (which would map it and die of SIGBUS on the missing pages).
    Damaged(ElfProblem),
    /// A shared library, but not a peerlab plugin.
    NotAPlugin(String),
    /// Built against a plugin-api whose major version differs.
    IncompatibleApi {
        /// The api version the plugin was built against.
        plugin: String,
        /// This host's api version.
        host: String,
    },
    /// Same api version, but the types differ.
    LayoutMismatch {
        /// A few lines naming what differs.
        summary: String,
    },
    /// The plugin's root module failed to initialise (returned an error or panicked).
    InitFailed(String),
    /// A module of this name is already loaded.
    Duplicate {
        /// The module name.
        name: String,
        /// Where the first one came from.
        first: String,
    },
}

/// A module that could not be loaded: what was asked for, which file, why.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The name as written in `&module` (or the path).
    pub requested: String,
    /// The library file, when one was found.
    pub path: Option<PathBuf>,
    /// Why.
    pub kind: LoadErrorKind,
    /// abi_stable's full report, shown with `-v`.
    pub detail: Option<Box<str>>,
}

impl LoadError {
    /// What to do about it, if there is advice.
    pub fn help(&self) -> Option<String> {
        match &self.kind {
            LoadErrorKind::NotFound { .. } => Some(
                "build the plugin (`cargo build`), pass its directory with --plugin-path \
                 or PEERLAB_PLUGIN_PATH, or give the path to its .so; `peerlab modules` lists what is found"
                    .into(),
            ),
            LoadErrorKind::IncompatibleApi { host, .. } => Some(format!(
                "rebuild the plugin against peerlab-plugin-api {}.x",
                host.split('.').next().unwrap_or(host)
            )),
            LoadErrorKind::LayoutMismatch { .. } => {
                Some("rebuild the plugin against this host's peerlab-plugin-api; -v shows abi_stable's full report".into())
            }
            LoadErrorKind::Duplicate { .. } => {
                Some("load each module once; remove one of the `&module` lines".into())
            }
            LoadErrorKind::Damaged(ElfProblem::Truncated { .. }) => Some(
                "let the build finish or run it again (`cargo build`), then retry".into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) if p.as_os_str() != self.requested.as_str() => {
                write!(f, "module `{}` ({}): ", self.requested, p.display())?
            }
            Some(p) => write!(f, "{}: ", p.display())?,
            None => write!(f, "module `{}`: ", self.requested)?,
        }
        match &self.kind {
            LoadErrorKind::NotFound { searched } => {
                write!(
                    f,
                    "not found: no built-in module, Gumby alias or plugin file of that name"
                )?;
                if !searched.is_empty() {
                    let dirs: Vec<String> = searched
                        .iter()
                        .filter_map(|p| p.parent().map(|d| d.display().to_string()))
                        .fold(Vec::new(), |mut acc, d| {
                            if !acc.contains(&d) {
                                acc.push(d);
                            }
                            acc
                        });
                    write!(f, " (searched {})", dirs.join(", "))?;
                }
                Ok(())
            }
            LoadErrorKind::Open(r) => write!(f, "cannot open it as a shared library: {r}"),
            LoadErrorKind::Damaged(problem) => write!(f, "{problem}"),
            LoadErrorKind::NotAPlugin(r) => write!(f, "not a peerlab plugin: {r}"),
            LoadErrorKind::IncompatibleApi { plugin, host } => write!(
                f,
                "incompatible plugin-api: the plugin was built against {plugin}, this host has {host}"
            ),
            LoadErrorKind::LayoutMismatch { summary } => write!(
                f,
                "layout mismatch with this host's plugin-api {API_VERSION}: {summary}"
            ),
            LoadErrorKind::InitFailed(r) => write!(f, "its root module failed to initialise: {r}"),
            LoadErrorKind::Duplicate { name, first } => {
                write!(f, "module `{name}` is already loaded from {first}")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Every load failure of one resolution, reported together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} module{} could not be loaded",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
            if let Some(h) = e.help() {
                write!(f, "\n    help: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
