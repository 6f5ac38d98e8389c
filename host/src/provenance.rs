//! What makes a run reproducible, as `run.json` records it: the peerlab
//! build (version, git commit) and every plugin library the run loaded
//! (path, SHA-256, api version, build profile); and the check `peerlab
//! rerun` makes against those records before running again.
//!
//! Must not: load plugins (the registry does) or write the run folder (the
//! runner does, through peerlab-run).

use std::fmt;
use std::path::{Component, Path};

use peerlab_run::PluginRecord;

use crate::modules::{ModuleSource, Registry};

/// The git commit this binary was built from (`None` when it was not built
/// from a checkout).
pub fn commit() -> Option<&'static str> {
    option_env!("PEERLAB_GIT_COMMIT")
}

/// SHA-256 of a file, in hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(peerlab_dispersy::crypto::hex(&hasher.finalize()))
}

/// The cargo profile a library was built with, as its path says:
/// `target/<profile>/` (or `target/<triple>/<profile>/`, `.../deps/`).
pub fn build_profile(path: &Path) -> &'static str {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    // The profile directory closest to the file wins.
    for part in parts.iter().rev().skip(1) {
        match *part {
            "debug" => return "debug",
            "release" => return "release",
            _ => {}
        }
    }
    "unknown"
}

/// Every plugin library of `registry` (built-ins are part of the binary,
/// which `peerlab_version`/`peerlab_commit` name). A library that cannot
/// be read for its hash gets an empty hash (and a rerun refuses it).
pub fn plugin_records(registry: &Registry) -> Vec<PluginRecord> {
    registry
        .modules()
        .iter()
        .filter_map(|m| match &m.source {
            ModuleSource::Builtin => None,
            ModuleSource::Plugin(path) => Some(PluginRecord {
                module: m.name.clone(),
                version: m.version.clone(),
                api_version: m.api_version.clone(),
                path: path.clone(),
                sha256: file_sha256(path).unwrap_or_default(),
                build_profile: build_profile(path).into(),
            }),
        })
        .collect()
}

/// One warning line per debug-build plugin: its CPU figures are not
/// representative of an optimised build.
pub fn debug_build_warnings(plugins: &[PluginRecord]) -> Vec<String> {
    plugins
        .iter()
        .filter(|p| p.build_profile == "debug")
        .map(|p| {
            format!(
                "plugin `{}` ({}) is a debug build: its CPU figures are not representative; build it with --release for measurements",
                p.module,
                p.path.display()
            )
        })
        .collect()
}

/// A recorded plugin that is no longer the same file.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedPlugin {
    pub module: String,
    pub path: std::path::PathBuf,
    pub recorded: String,
    /// Its hash now, or why it cannot be read.
    pub now: Result<String, String>,
}

impl fmt::Display for ChangedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.now {
            Ok(now) => write!(
                f,
                "plugin `{}` at {} has changed since the run: recorded sha256 {}, now {}",
                self.module,
                self.path.display(),
                self.recorded,
                now
            ),
            Err(why) => write!(
                f,
                "plugin `{}` at {} cannot be read ({why}); the run recorded sha256 {}",
                self.module,
                self.path.display(),
                self.recorded
            ),
        }
    }
}

/// The recorded plugins whose file is missing or hashes differently now.
pub fn changed_plugins(plugins: &[PluginRecord]) -> Vec<ChangedPlugin> {
    plugins
        .iter()
        .filter_map(|p| {
            let now = file_sha256(&p.path).map_err(|e| e.to_string());
            let same = now.as_ref().is_ok_and(|h| *h == p.sha256);
            (!same).then(|| ChangedPlugin {
                module: p.module.clone(),
                path: p.path.clone(),
                recorded: p.sha256.clone(),
                now,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_the_closest_profile_directory() {
        assert_eq!(
            build_profile(Path::new("/w/target/debug/libgossip.so")),
            "debug"
        );
        assert_eq!(
            build_profile(Path::new("/w/target/release/deps/libgossip.so")),
            "release"
        );
        assert_eq!(
            build_profile(Path::new("/release/x/target/debug/libgossip.so")),
            "debug"
        );
        assert_eq!(build_profile(Path::new("/opt/plugins/libg.so")), "unknown");
        // The file's own name is not a directory.
        assert_eq!(build_profile(Path::new("/opt/debug")), "unknown");
    }

    #[test]
    fn a_changed_or_missing_plugin_is_named_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libx.so");
        std::fs::write(&lib, b"one").unwrap();
        let rec = PluginRecord {
            module: "x".into(),
            path: lib.clone(),
            sha256: file_sha256(&lib).unwrap(),
            ..Default::default()
        };
        assert!(changed_plugins(std::slice::from_ref(&rec)).is_empty());
        std::fs::write(&lib, b"two").unwrap();
        let changed = changed_plugins(std::slice::from_ref(&rec));
        assert_eq!(changed.len(), 1);
        let text = changed[0].to_string();
        assert!(text.contains(&rec.sha256), "{text}");
        assert!(text.contains(&file_sha256(&lib).unwrap()), "{text}");
        assert!(text.contains("libx.so"), "{text}");
        std::fs::remove_file(&lib).unwrap();
        assert!(changed_plugins(&[rec])[0].now.is_err());
    }
}
