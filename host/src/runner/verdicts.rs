//! Verdicts: after a run, every loaded module judges the run from its
//! outputs (the verdict hook of the plugin api). The host only reads the
//! run folder and hands each module a read-only view; what to check is the
//! module's business, so no experiment-specific code lives here.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use peerlab_plugin_api::RunOutputs;
use peerlab_plugin_api::RunOutputs_TO;
use peerlab_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use peerlab_plugin_api::abi_stable::std_types::{ROption, RStr, RString, RVec};

use super::folder::{Summary, Verdict};
use crate::modules::Registry;

/// The run folder as the verdict hook sees it.
struct FolderOutputs {
    lines: BTreeMap<u64, Vec<String>>,
    status: BTreeMap<u64, (bool, String)>,
    config: BTreeMap<String, String>,
}

impl FolderOutputs {
    fn load(run_dir: &Path, summary: &Summary, config: &BTreeMap<String, String>) -> Self {
        let mut lines = BTreeMap::new();
        let mut status = BTreeMap::new();
        for s in &summary.instance_status {
            let text = fs::read_to_string(run_dir.join(&s.out)).unwrap_or_default();
            lines.insert(u64::from(s.id), text.lines().map(str::to_owned).collect());
            let words = match (&s.error, s.exit_code) {
                (Some(e), _) => format!("{}: {e}", s.status),
                (None, Some(code)) => format!("{} (exit status {code})", s.status),
                (None, None) => s.status.clone(),
            };
            status.insert(u64::from(s.id), (s.status == "finished", words));
        }
        Self {
            lines,
            status,
            config: config.clone(),
        }
    }
}

impl RunOutputs for FolderOutputs {
    fn instance_ids(&self) -> RVec<u64> {
        self.lines.keys().copied().collect()
    }

    fn lines(&self, instance: u64) -> RVec<RString> {
        self.lines
            .get(&instance)
            .map(|l| l.iter().map(|s| RString::from(s.as_str())).collect())
            .unwrap_or_default()
    }

    fn succeeded(&self, instance: u64) -> bool {
        self.status.get(&instance).is_some_and(|(ok, _)| *ok)
    }

    fn status(&self, instance: u64) -> RString {
        self.status
            .get(&instance)
            .map(|(_, s)| RString::from(s.as_str()))
            .unwrap_or_else(|| RString::from("unknown instance"))
    }

    fn config(&self, key: RStr<'_>) -> ROption<RString> {
        self.config
            .get(key.as_str())
            .map(|v| RString::from(v.as_str()))
            .into()
    }

    fn config_keys(&self) -> RVec<RString> {
        self.config
            .keys()
            .map(|k| RString::from(k.as_str()))
            .collect()
    }
}

/// Ask every module of `registry` for its verdicts on the run in `run_dir`.
/// A module whose hook fails gets a failing verdict saying why.
pub fn collect(
    registry: &Registry,
    run_dir: &Path,
    summary: &Summary,
    config: &BTreeMap<String, String>,
) -> Vec<Verdict> {
    collect_some(registry, run_dir, summary, config, |_| true)
}

/// [`collect`] from the modules whose name `judges` accepts (config key
/// `verdicts`, see [`super::verdict_choice`]).
pub fn collect_some(
    registry: &Registry,
    run_dir: &Path,
    summary: &Summary,
    config: &BTreeMap<String, String>,
    judges: impl Fn(&str) -> bool,
) -> Vec<Verdict> {
    let outputs = FolderOutputs::load(run_dir, summary, config);
    let mut verdicts = Vec::new();
    for module in registry.modules() {
        if !judges(&module.name) {
            continue;
        }
        let raw = RunOutputs_TO::from_ptr(&outputs, TD_Opaque);
        let check = module.root().check();
        match check(raw).into_result() {
            Ok(list) => verdicts.extend(list.into_iter().map(|v| Verdict {
                name: format!("{}/{}", module.name, v.name),
                passed: v.passed,
                message: v.message.into(),
                skipped: false,
            })),
            Err(e) => verdicts.push(Verdict {
                name: format!("{}/verdict hook", module.name),
                passed: false,
                message: format!("the verdict hook failed: {e}"),
                skipped: false,
            }),
        }
    }
    verdicts
}
