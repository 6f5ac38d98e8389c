//! The scenario as external instances see it (`external_instances`):
//! which commands are theirs, their callback manifest (`external_callbacks`)
//! and its check, and each external instance's schedule (its share of the
//! scenario, as JSON: docs/sync-protocol.md §6).
//!
//! Commands that select only external instances are not bound to peerlab's
//! modules (no peerlab instance runs them); commands that select any
//! external instance are checked against the manifest instead.
//!
//! Must not: start programs (the runner's `external.rs` does) or read
//! anything but the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peerlab_lang::{Command, Diagnostic, Experiment, Location, Phase, Scenario};
use serde::{Deserialize, Serialize};

/// The instances of a run that are other programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalIds {
    /// All instances of the run.
    pub instances: u32,
    /// How many of them, the last ones, are external.
    pub external: u32,
}

impl ExternalIds {
    pub fn of(exp: &Experiment) -> Self {
        Self {
            instances: exp.instances,
            external: exp.external.instances.min(exp.instances),
        }
    }

    /// Whether `id` is an external instance.
    pub fn is_external(&self, id: u32) -> bool {
        self.external > 0 && id > self.instances - self.external && id <= self.instances
    }

    /// Whether `cmd` runs on some peerlab instance.
    pub fn runs_on_peerlab(&self, cmd: &Command) -> bool {
        (1..=self.instances - self.external).any(|id| cmd.peers.selects(id, self.instances))
    }

    /// Whether `cmd` runs on some external instance.
    pub fn runs_on_external(&self, cmd: &Command) -> bool {
        self.external > 0
            && (self.instances - self.external + 1..=self.instances)
                .any(|id| cmd.peers.selects(id, self.instances))
    }

    /// The scenario without the commands only external instances run (what
    /// peerlab's modules must resolve).
    pub fn peerlab_share(&self, scenario: &Scenario) -> Scenario {
        let mut out = scenario.clone();
        if self.external > 0 {
            out.commands.retain(|c| self.runs_on_peerlab(c));
        }
        out
    }
}

/// An external program's callback manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub callbacks: BTreeMap<String, CallbackSpec>,
}

/// One callback: its parameters in positional order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackSpec {
    #[serde(default)]
    pub params: Vec<ParamSpec>,
}

/// One parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    /// `str`, `int`, `float` or `bool` (default `str`).
    #[serde(default, rename = "type")]
    pub ty: String,
    /// Absent: the parameter is required.
    #[serde(default)]
    pub default: Option<String>,
}

/// The largest manifest read.
const MANIFEST_LIMIT: u64 = 1 << 20;

/// Where `external_callbacks` points (relative to the experiment's folder).
pub fn manifest_path(exp: &Experiment, experiment_dir: &Path) -> Option<PathBuf> {
    let rel = exp.external.callbacks.as_ref()?;
    Some(super::load::search_dir(experiment_dir).join(rel))
}

/// Read the manifest named by `external_callbacks`; a problem is a
/// diagnostic at the key.
pub fn read_manifest(
    exp: &Experiment,
    experiment_dir: &Path,
) -> Result<Option<Manifest>, Diagnostic> {
    let Some(path) = manifest_path(exp, experiment_dir) else {
        return Ok(None);
    };
    let at = exp
        .raw
        .get("external_callbacks")
        .and_then(|v| match &v.origin {
            peerlab_lang::Origin::File(l) => Some(l.clone()),
            peerlab_lang::Origin::Env(_) => None,
        });
    let fail = |msg: String| {
        let d = Diagnostic::error(msg)
            .with_code("bad-manifest")
            .with_help("write it with `python3 -m peerlab manifest my_peer.py > callbacks.json` (docs/sync-protocol.md §6)");
        match &at {
            Some(l) => d.at(l.clone()),
            None => d,
        }
    };
    let bytes = super::load::read_source(&path, MANIFEST_LIMIT).map_err(|e| {
        fail(format!(
            "cannot read the callback manifest `{}`: {e}",
            path.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "the callback manifest `{}` is not valid: {e}",
            path.display()
        ))
    })?;
    for (name, spec) in &manifest.callbacks {
        for p in &spec.params {
            if !matches!(p.ty.as_str(), "" | "str" | "int" | "float" | "bool") {
                return Err(fail(format!(
                    "the callback manifest `{}`: `{name}` parameter `{}` has type `{}`; expected str, int, float or bool",
                    path.display(),
                    p.name,
                    p.ty
                )));
            }
        }
    }
    Ok(Some(manifest))
}

/// Check every command external instances run against the manifest (or
/// say once that they cannot be checked without one).
pub fn check_commands(
    exp: &Experiment,
    experiment_dir: &Path,
    scenario: &Scenario,
) -> Vec<Diagnostic> {
    let ids = ExternalIds::of(exp);
    if ids.external == 0 {
        return Vec::new();
    }
    let manifest = match read_manifest(exp, experiment_dir) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return vec![
                Diagnostic::warning(
                    "the commands of the external instances are not checked: `external_callbacks` names no manifest",
                )
                .with_code("no-manifest")
                .with_help("set external_callbacks to the program's manifest (`python3 -m peerlab manifest my_peer.py`)"),
            ];
        }
        Err(d) => return vec![d],
    };
    let mut out = Vec::new();
    for cmd in scenario.commands.iter().filter(|c| ids.runs_on_external(c)) {
        out.extend(check_one(&manifest, cmd));
    }
    out
}

/// Callbacks every external client answers without declaring them
/// (docs/sync-protocol.md §6).
pub const ALWAYS_ANSWERED: [&str; 1] = ["stop"];

fn check_one(manifest: &Manifest, cmd: &Command) -> Vec<Diagnostic> {
    let name = cmd.callback_name();
    if ALWAYS_ANSWERED.contains(&name) && !manifest.callbacks.contains_key(name) {
        return Vec::new();
    }
    let Some(spec) = manifest.callbacks.get(name) else {
        let mut d = Diagnostic::error(format!("the external instances have no callback `{name}`"))
            .with_code("unknown-callback")
            .at(cmd.callback_loc.clone());
        let known = manifest.callbacks.keys().map(String::as_str);
        d = match peerlab_lang::suggest(name, known) {
            Some(s) => d.with_help(format!(
                "did you mean `{s}`? (the external program's manifest lists its callbacks)"
            )),
            None => d.with_help(format!(
                "the external program's manifest lists: {}",
                manifest
                    .callbacks
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        return vec![d];
    };
    let mut out = Vec::new();
    let bad = |msg: String, loc: &Location| {
        Diagnostic::error(format!("external `{name}`: {msg}"))
            .with_code("bad-argument")
            .at(loc.clone())
    };
    let mut given: Vec<&str> = Vec::new();
    for (i, a) in cmd.args.iter().enumerate() {
        match spec.params.get(i) {
            Some(p) => {
                given.push(&p.name);
                if let Err(why) = type_check(&p.ty, &a.value) {
                    out.push(bad(format!("`{}`: {why}", p.name), &a.loc));
                }
            }
            None => out.push(bad(
                format!("takes {} arguments; this is one more", spec.params.len()),
                &a.loc,
            )),
        }
    }
    for k in &cmd.kwargs {
        match spec.params.iter().find(|p| p.name == k.name) {
            Some(p) if given.contains(&p.name.as_str()) => {
                out.push(bad(format!("`{}` is given twice", k.name), &k.loc))
            }
            Some(p) => {
                given.push(&p.name);
                if let Err(why) = type_check(&p.ty, &k.value) {
                    out.push(bad(format!("`{}`: {why}", p.name), &k.loc));
                }
            }
            None => out.push(bad(format!("has no parameter `{}`", k.name), &k.loc)),
        }
    }
    for p in &spec.params {
        if p.default.is_none() && !given.contains(&p.name.as_str()) {
            out.push(bad(format!("`{}` is required", p.name), &cmd.callback_loc));
        }
    }
    out
}

fn type_check(ty: &str, value: &str) -> Result<(), String> {
    let ok = match ty {
        "int" => value.parse::<i64>().is_ok(),
        "float" => value.parse::<f64>().is_ok(),
        "bool" => matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "1" | "0" | "yes" | "no"
        ),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {ty}, found `{value}`"))
    }
}

/// One external instance's schedule (docs/sync-protocol.md §6).
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub instance: u32,
    pub instances: u32,
    pub time_scale: f64,
    pub commands: Vec<ScheduledCommand>,
}

/// One command of a schedule.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledCommand {
    /// `load`, `setup` or `at`.
    pub phase: &'static str,
    /// Scenario seconds after the start (0 for load and setup).
    pub t: f64,
    pub callback: String,
    pub args: Vec<String>,
    pub kwargs: BTreeMap<String, String>,
    pub file: String,
    pub line: u32,
}

/// The commands of `scenario` that instance `id` of `instances` runs, in
/// scenario order.
pub fn schedule(scenario: &Scenario, id: u32, instances: u32, time_scale: f64) -> Schedule {
    let commands = scenario
        .commands
        .iter()
        .filter(|c| c.peers.selects(id, instances))
        .map(|c| {
            let (phase, t) = match c.phase {
                Phase::Load => ("load", 0.0),
                Phase::Setup => ("setup", 0.0),
                Phase::At(t) => ("at", t),
            };
            ScheduledCommand {
                phase,
                t,
                callback: c.callback_name().to_string(),
                args: c.args.iter().map(|a| a.value.clone()).collect(),
                kwargs: c
                    .kwargs
                    .iter()
                    .map(|k| (k.name.clone(), k.value.clone()))
                    .collect(),
                file: c.callback_loc.file.to_string(),
                line: c.callback_loc.line,
            }
        })
        .collect();
    Schedule {
        instance: id,
        instances,
        time_scale,
        commands,
    }
}
