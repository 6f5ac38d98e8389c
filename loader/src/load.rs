//! Opening one plugin file: its ELF extent checked first, then
//! `lib_header_from_path` + `init_root_module` by its canonical path, with
//! a plugin built against an older 1.x accepted after a layout check in
//! the other direction, and abi_stable's errors turned into short, precise
//! refusals.
//!
//! Must not: call into a module beyond reading its root, or unload a
//! library.

use std::path::Path;

use peerlab_plugin_api::ModuleRoot_Ref;
use peerlab_plugin_api::abi_stable::StableAbi;
use peerlab_plugin_api::abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use peerlab_plugin_api::abi_stable::library::{LibraryError, lib_header_from_path};

use crate::elf;
use crate::error::{LoadError, LoadErrorKind};

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
}
