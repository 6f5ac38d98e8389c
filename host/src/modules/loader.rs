//! Finding and loading plugin libraries: the search path, the
//! `lib_header_from_path` + `init_root_module` load of one `.so`, and the
//! translation of abi_stable's errors into short, precise refusals.
//!
//! Invariant: every library is loaded by its absolute path through its own
//! header (never `RootModule::load_from*`, which caches one module per type,
//! and never by a bare name `dlopen` would look up in the library search
//! path), after its ELF extent is checked, and is never unloaded. Nothing here calls into a module beyond reading its root.

use std::fmt;
use std::path::{Path, PathBuf};

use peerlab_plugin_api::abi_stable::StableAbi;
use peerlab_plugin_api::abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use peerlab_plugin_api::abi_stable::library::{LibraryError, lib_header_from_path};
use peerlab_plugin_api::{API_VERSION, ModuleRoot_Ref};

use super::elf::{self, ElfProblem};

/// Environment variable with extra plugin directories (`:`-separated).
pub const PLUGIN_PATH_ENV: &str = "PEERLAB_PLUGIN_PATH";

/// Where plugin files are looked for, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPaths {
    /// `--plugin-path` directories, then `PEERLAB_PLUGIN_PATH`'s.
    pub plugin_path: Vec<PathBuf>,
    /// The experiment's directory (where its `.conf`/`.scenario` is).
    pub experiment_dir: Option<PathBuf>,
    /// The workspace's target directories next to the running binary.
    pub target_dirs: Vec<PathBuf>,
}

impl SearchPaths {
    /// The standard search path: `cli` directories, `PEERLAB_PLUGIN_PATH`,
    /// the experiment directory, then `target/debug` and `target/release`
    /// next to the running `peerlab` binary.
    pub fn standard(cli: &[PathBuf], experiment_dir: Option<&Path>) -> Self {
        Self::from_parts(
            cli,
            std::env::var_os(PLUGIN_PATH_ENV).as_deref(),
            experiment_dir,
            std::env::current_exe().ok().as_deref(),
        )
    }

    /// [`SearchPaths::standard`] with the value of `PEERLAB_PLUGIN_PATH`
    /// and the running binary given.
    fn from_parts(
        cli: &[PathBuf],
        env: Option<&std::ffi::OsStr>,
        experiment_dir: Option<&Path>,
        exe: Option<&Path>,
    ) -> Self {
        let mut plugin_path: Vec<PathBuf> = cli.to_vec();
        if let Some(v) = env {
            plugin_path.extend(std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()));
        }
        SearchPaths {
            plugin_path,
            experiment_dir: experiment_dir.map(Path::to_path_buf),
            target_dirs: target_dirs_near(exe),
        }
    }

    /// Every directory, in search order, without duplicates.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let all = self
            .plugin_path
            .iter()
            .chain(self.experiment_dir.iter())
            .chain(self.target_dirs.iter());
        for d in all {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    /// The first plugin file for `name` (`lib<name>.so`, `<name>.so`, with
    /// `-` read as `_` as cargo does), and every path tried.
    pub fn find(&self, name: &str) -> (Option<PathBuf>, Vec<PathBuf>) {
        let mut tried = Vec::new();
        for dir in self.dirs() {
            for file in candidate_files(name) {
                let p = dir.join(file);
                if p.is_file() {
                    return (Some(p), tried);
                }
                tried.push(p);
            }
        }
        (None, tried)
    }

    /// Every plugin-looking file (`*.so`) in the search directories, for
    /// `peerlab modules`.
    pub fn all_plugin_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in self.dirs() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "so"))
                .collect();
            files.sort();
            out.extend(files);
        }
        out
    }
}

fn candidate_files(name: &str) -> Vec<String> {
    let mut v = vec![format!("lib{name}.so"), format!("{name}.so")];
    if name.contains('-') {
        let u = name.replace('-', "_");
        v.push(format!("lib{u}.so"));
        v.push(format!("{u}.so"));
    }
    v
}

/// `target/debug` and `target/release` for a binary in `target/<profile>/`
/// (or `target/<profile>/deps/` when running as a test).
pub fn target_dirs_near(exe: Option<&Path>) -> Vec<PathBuf> {
    let Some(mut dir) = exe.and_then(Path::parent).map(Path::to_path_buf) else {
        return Vec::new();
    };
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let mut out = vec![dir.clone()];
    if let Some(target) = dir.parent() {
        for profile in ["debug", "release"] {
            let p = target.join(profile);
            if !out.contains(&p) && p.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

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

/// Load one plugin library and check its version and layout. The library
/// is opened by its absolute, canonical path (a bare file name would make
/// `dlopen` search `LD_LIBRARY_PATH` and the system's directories instead),
/// and only after [`elf::check_extent`] found every byte it maps.
pub fn load_library(requested: &str, path: &Path) -> Result<ModuleRoot_Ref, LoadError> {
    let err = |kind, detail| LoadError {
        requested: requested.to_string(),
        path: Some(path.to_path_buf()),
        kind,
        detail,
    };
    let canonical =
        std::fs::canonicalize(path).map_err(|e| err(LoadErrorKind::Open(e.to_string()), None))?;
    elf::check_extent(&canonical).map_err(|p| err(LoadErrorKind::Damaged(p), None))?;
    let header = lib_header_from_path(&canonical).map_err(|e| {
        let (kind, detail) = classify(e);
        err(kind, detail)
    })?;
    match header.init_root_module::<ModuleRoot_Ref>() {
        Ok(root) => Ok(root),
        Err(LibraryError::AbiInstability(forward)) => {
            // abi_stable checks that the library has at least every field the
            // host knows: a newer plugin on an older host. A host-only upgrade
            // is the other direction: the plugin, built against an older 1.x,
            // knows fewer fields and methods. Check that direction too: every
            // field and method the plugin knows must match the host's exactly.
            let older_plugin = header
                .layout()
                .is_some_and(|lib| check_layout_compatibility(lib, ModuleRoot_Ref::LAYOUT).is_ok());
            if !older_plugin {
                let (kind, detail) = classify(LibraryError::AbiInstability(forward));
                return Err(err(kind, detail));
            }
            // SAFETY: the version was checked (same major) and the plugin's
            // root-module layout, as a prefix of the host's, was checked
            // above, recursively through every type it reaches. The host
            // reads fields and calls methods appended after the plugin's
            // version only through abi_stable's accessors, which consult the
            // plugin's own per-instance field count and fall back (`None`,
            // or the trait method's default) when it lacks them.
            unsafe { header.init_root_module_with_unchecked_layout::<ModuleRoot_Ref>() }.map_err(
                |e| {
                    let (kind, detail) = classify(e);
                    err(kind, detail)
                },
            )
        }
        Err(e) => {
            let (kind, detail) = classify(e);
            Err(err(kind, detail))
        }
    }
}

fn classify(e: LibraryError) -> (LoadErrorKind, Option<Box<str>>) {
    let full = e.to_string();
    let kind = match e {
        LibraryError::OpenError { err, .. } => LoadErrorKind::Open(err.to_string()),
        LibraryError::GetSymbolError { .. } => LoadErrorKind::NotAPlugin(
            "it exports no abi_stable root module (build it with peerlab_plugin_api's #[module])"
                .into(),
        ),
        LibraryError::InvalidAbiHeader(h) => LoadErrorKind::NotAPlugin(format!(
            "it was built with an incompatible abi_stable (header {h:?})"
        )),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadErrorKind::IncompatibleApi {
            plugin: actual_version.to_string(),
            host: expected_version.to_string(),
        },
        LibraryError::ParseVersionError(p) => {
            LoadErrorKind::NotAPlugin(format!("its api version is unreadable: {p}"))
        }
        LibraryError::AbiInstability(_) => LoadErrorKind::LayoutMismatch {
            summary: summarise_layout(&full),
        },
        LibraryError::InvalidCAbi { .. } => LoadErrorKind::NotAPlugin(
            "it was compiled with a different C ABI (another compiler or target?)".into(),
        ),
        LibraryError::RootModule { err, .. } => {
            LoadErrorKind::InitFailed(err.to_string().trim().to_string())
        }
        LibraryError::Many(list) => {
            let mut kinds = list.into_iter().map(classify);
            match kinds.next() {
                Some((k, _)) => k,
                None => LoadErrorKind::NotAPlugin("unknown loading error".into()),
            }
        }
    };
    (kind, Some(full.into_boxed_str()))
}

/// The few lines of abi_stable's layout report that say what differs:
/// `what: expected X, found Y` for the first two errors.
fn summarise_layout(full: &str) -> String {
    let lines: Vec<&str> = full
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let value_after = |i: usize, marker: &str| -> Option<String> {
        let at = lines.iter().skip(i).take(6).position(|l| *l == marker)? + i;
        let v = lines.get(at + 1)?;
        let v = if v.chars().count() > 60 {
            format!("{}...", v.chars().take(60).collect::<String>())
        } else {
            v.to_string()
        };
        Some(v)
    };
    let mut picked: Vec<String> = Vec::new();
    let mut errors = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(what) = l.strip_prefix("Error:") else {
            continue;
        };
        errors += 1;
        if picked.len() < 2 {
            let mut s = what.trim().to_string();
            if let (Some(e), Some(f)) = (value_after(i, "Expected:"), value_after(i, "Found:")) {
                s.push_str(&format!(": expected `{e}`, found `{f}`"));
            }
            if !picked.contains(&s) {
                picked.push(s);
            }
        }
    }
    if picked.is_empty() {
        return "the plugin's types differ from this host's".into();
    }
    let mut s = picked.join("; ");
    if errors > picked.len() {
        s.push_str(&format!(" (and {} more)", errors - picked.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_reports_are_summarised() {
        let report = "Compared <this>:\n  --- Type Layout ---\n\nError:mismatched package\nExpected:\n    peerlab-plugin-api\nFound:\n    other\n\nError:too many fields\nExpected:\n    7\nFound:\n    6\n";
        assert_eq!(
            summarise_layout(report),
            "mismatched package: expected `peerlab-plugin-api`, found `other`; too many fields: expected `7`, found `6`"
        );
        assert_eq!(
            summarise_layout("nothing useful"),
            "the plugin's types differ from this host's"
        );
    }

    #[test]
    fn file_names_follow_cargo() {
        assert_eq!(candidate_files("benaloh"), ["libbenaloh.so", "benaloh.so"]);
        assert_eq!(
            candidate_files("my-mod"),
            ["libmy-mod.so", "my-mod.so", "libmy_mod.so", "my_mod.so"]
        );
    }

    #[test]
    fn target_dirs_come_from_the_binary() {
        let dirs = target_dirs_near(Some(Path::new("/nonexistent/target/debug/deps/x")));
        assert_eq!(dirs, [PathBuf::from("/nonexistent/target/debug")]);
        assert!(target_dirs_near(None).is_empty());
    }

    #[test]
    fn search_order_is_cli_env_experiment_target() {
        // PEERLAB_PLUGIN_PATH as the process would read it (an empty entry
        // is skipped); tests/tests/plugins.rs sets the real variable.
        let s = SearchPaths::from_parts(
            &["/cli".into()],
            Some(std::ffi::OsStr::new("/env1::/env2:/cli")),
            Some(Path::new("/exp")),
            Some(Path::new("/nonexistent/target/debug/peerlab")),
        );
        assert_eq!(
            s.dirs(),
            [
                PathBuf::from("/cli"),
                "/env1".into(),
                "/env2".into(),
                "/exp".into(),
                "/nonexistent/target/debug".into(),
            ],
            "in order, without duplicates"
        );
        let none = SearchPaths::from_parts(&[], None, None, None);
        assert!(none.dirs().is_empty(), "{none:?}");
    }
}
