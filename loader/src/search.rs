//! Where plugin files are looked for: the search path (`--plugin-path`,
//! `PEERLAB_PLUGIN_PATH`, the experiment's folder, the target folders next
//! to the running binary) and the file names a module name may have.
//!
//! Must not: open or load a library (that is `load.rs`'s), or know which
//! modules are built in (that is the host's registry).

use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

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
