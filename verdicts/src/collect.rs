//! Verdicts: after a run, every loaded module judges the run from its
//! outputs (the verdict hook of the plugin api). The host only reads the
//! run folder and hands each module a read-only view; what to check is the
//! module's business, so no experiment-specific code lives here.
//!
//! Two rules are the host's, for every module alike: an output that cannot
//! be read is never passed off as an empty one (the instance counts as not
//! succeeded and its status says which file and why), and when no instance
//! ran (none finished or printed a line) no verdict passes: each one a
//! module gives is recorded as failed, "not judged", with why.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use peerlab_plugin_api::RunOutputs;
use peerlab_plugin_api::RunOutputs_TO;
use peerlab_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use peerlab_plugin_api::abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use peerlab_plugin_api::{RunOutputsRef, Verdict};

use peerlab_instance::modules::Registry;
use peerlab_run::{EndStatus, Summary, VerdictRecord};

/// What every "not judged" verdict message starts with.
pub const NOT_JUDGED: &str = "not judged";

/// One instance as the verdict hook sees it.
struct Instance {
    /// Its printed lines; `None` when its output could not be read.
    lines: Option<Vec<String>>,
    /// Whether it finished and its output was read.
    succeeded: bool,
    /// How it ended, in words (with why its output is missing, if it is).
    status: String,
    /// Its status in `summary.json` (`finished`, `never_started`, ...).
    end: EndStatus,
    /// Online at its end (its `end` event does not say `"online": false`).
    online_at_end: bool,
}

/// The run folder as the verdict hook sees it.
struct FolderOutputs {
    instances: BTreeMap<u64, Instance>,
    config: BTreeMap<String, String>,
}

impl FolderOutputs {
    fn load(run_dir: &Path, summary: &Summary, config: &BTreeMap<String, String>) -> Self {
        let mut instances = BTreeMap::new();
        for s in &summary.instance_status {
            let mut status = match (&s.error, s.exit_code) {
                (Some(e), _) => format!("{}: {e}", s.status),
                (None, Some(code)) => format!("{} (exit status {code})", s.status),
                (None, None) => s.status.to_string(),
            };
            let path = run_dir.join(&s.out);
            let lines = match fs::read_to_string(&path) {
                Ok(text) => Some(text.lines().map(str::to_owned).collect()),
                Err(e) => {
                    let why = if e.kind() == io::ErrorKind::NotFound {
                        "is missing".to_string()
                    } else {
                        format!("cannot be read: {e}")
                    };
                    status.push_str(&format!("; its output {} {why}", s.out.display()));
                    None
                }
            };
            let online_at_end = online_at_end(&run_dir.join(s.out.with_extension("events.jsonl")));
            instances.insert(
                u64::from(s.id),
                Instance {
                    online_at_end,
                    succeeded: s.status == EndStatus::Finished && lines.is_some(),
                    end: s.status,
                    lines,
                    status,
                },
            );
        }
        Self {
            instances,
            config: config.clone(),
        }
    }

    /// Why the run cannot be judged: no instance ran, i.e. none finished
    /// or printed a line (`None` when at least one did).
    fn not_judged_because(&self) -> Option<String> {
        if self.instances.is_empty() {
            return Some("the run has no instances".into());
        }
        let ran = |i: &Instance| {
            i.lines
                .as_ref()
                .is_some_and(|l| i.end == EndStatus::Finished || !l.is_empty())
        };
        if self.instances.values().any(ran) {
            return None;
        }
        let mut ends: BTreeMap<String, usize> = BTreeMap::new();
        for i in self.instances.values() {
            let end = match (&i.lines, i.end) {
                (_, EndStatus::NeverStarted) => "never started".to_string(),
                (None, end) => format!("{end} with no readable output"),
                (Some(_), end) => format!("{end} before printing anything"),
            };
            *ends.entry(end).or_default() += 1;
        }
        let ends: Vec<String> = ends.iter().map(|(e, n)| format!("{n} {e}")).collect();
        Some(format!(
            "no instance ran (of {}: {})",
            self.instances.len(),
            ends.join(", ")
        ))
    }
}

impl RunOutputs for FolderOutputs {
    fn instance_ids(&self) -> RVec<u64> {
        self.instances.keys().copied().collect()
    }

    fn lines(&self, instance: u64) -> RVec<RString> {
        self.instances
            .get(&instance)
            .and_then(|i| i.lines.as_ref())
            .map(|l| l.iter().map(|s| RString::from(s.as_str())).collect())
            .unwrap_or_default()
    }

    fn succeeded(&self, instance: u64) -> bool {
        self.instances.get(&instance).is_some_and(|i| i.succeeded)
    }

    fn status(&self, instance: u64) -> RString {
        self.instances
            .get(&instance)
            .map(|i| RString::from(i.status.as_str()))
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

    fn online_at_end(&self, instance: u64) -> bool {
        self.instances
            .get(&instance)
            .is_none_or(|i| i.online_at_end)
    }
}

/// Whether an instance's events (`path`) end with it online: only an `end`
/// event saying `"online": false` (it was away after `leave` or churn)
/// says it was not. Events that cannot be read say nothing either way.
fn online_at_end(path: &Path) -> bool {
    let Ok(text) = fs::read_to_string(path) else {
        return true;
    };
    !text.lines().rev().any(|line| {
        serde_json::from_str::<peerlab_run::EventLine<'_>>(line).is_ok_and(|e| {
            e.kind() == peerlab_run::schema::EventKind::End && e.online == Some(false)
        })
    })
}

/// A module's verdict hook.
type CheckFn = extern "C" fn(RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString>;

/// Ask every module of `registry` for its verdicts on the run in `run_dir`.
/// A module whose hook fails gets a failing verdict saying why.
pub fn collect(
    registry: &Registry,
    run_dir: &Path,
    summary: &Summary,
    config: &BTreeMap<String, String>,
) -> Vec<VerdictRecord> {
    collect_some(registry, run_dir, summary, config, |_| true)
}

/// [`collect`] from the modules whose name `judges` accepts (config key
/// `verdicts`, see [`crate::choice`]).
pub fn collect_some(
    registry: &Registry,
    run_dir: &Path,
    summary: &Summary,
    config: &BTreeMap<String, String>,
    judges: impl Fn(&str) -> bool,
) -> Vec<VerdictRecord> {
    let outputs = FolderOutputs::load(run_dir, summary, config);
    judge(
        registry
            .modules()
            .iter()
            .filter(|m| judges(&m.name))
            .map(|m| (m.name.as_str(), m.root().check())),
        &outputs,
    )
}

/// Run each `(module name, hook)` over `outputs`. When no instance ran,
/// every verdict a hook gives is recorded as failed and "not judged".
fn judge<'a>(
    modules: impl IntoIterator<Item = (&'a str, CheckFn)>,
    outputs: &FolderOutputs,
) -> Vec<VerdictRecord> {
    let not_judged = outputs.not_judged_because();
    let mut verdicts = Vec::new();
    for (module, check) in modules {
        let raw = RunOutputs_TO::from_ptr(outputs, TD_Opaque);
        match check(raw).into_result() {
            Ok(list) => verdicts.extend(list.into_iter().map(|v| VerdictRecord {
                name: format!("{module}/{}", v.name),
                passed: v.passed && not_judged.is_none(),
                message: match &not_judged {
                    Some(why) => format!("{NOT_JUDGED}: {why}"),
                    None => v.message.into(),
                },
                skipped: false,
            })),
            Err(e) => verdicts.push(VerdictRecord {
                name: format!("{module}/verdict hook"),
                passed: false,
                message: match &not_judged {
                    Some(why) => format!("{NOT_JUDGED}: {why}"),
                    None => format!("the verdict hook failed: {e}"),
                },
                skipped: false,
            }),
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use peerlab_plugin_api::Outputs;

    use super::*;
    use peerlab_run::InstanceStatus;

    /// A summary of instances `(id, status)`, outputs at `NNNNN.out`.
    fn summary(instances: &[(u32, &str)]) -> Summary {
        Summary {
            run_id: "0001-t".into(),
            experiment: "t".into(),
            seed: 1,
            instances: instances.len() as u32,
            nodes: 1,
            runner: "local".into(),
            time_scale: 1.0,
            started_at: String::new(),
            ended_at: String::new(),
            duration_s: 0.0,
            outcome: Some(peerlab_run::RunStatus::Passed),
            timed_out: false,
            instance_status: instances
                .iter()
                .map(|&(id, status)| InstanceStatus {
                    id,
                    host: "localhost".into(),
                    node: 1,
                    status: peerlab_run::EndStatus::parse(status).expect("a status"),
                    exit_code: None,
                    error: None,
                    out: PathBuf::from(format!("{id:05}.out")),
                    err: PathBuf::from(format!("{id:05}.err")),
                })
                .collect(),
            verdicts: Vec::new(),
        }
    }

    /// Passes when every instance printed `ok`; fails naming the others.
    extern "C" fn all_print_ok(raw: RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString> {
        let o = Outputs::new(raw);
        let bad: Vec<String> = o
            .instance_ids()
            .into_iter()
            .filter(|&i| !o.lines(i).iter().any(|l| l == "ok"))
            .map(|i| format!("{i}: {}", o.status(i)))
            .collect();
        RResult::ROk(RVec::from(vec![if bad.is_empty() {
            Verdict::pass("ok", "everyone printed ok")
        } else {
            Verdict::fail("ok", bad.join(", "))
        }]))
    }

    /// Passes whatever the outputs say (as a careless module might).
    extern "C" fn always_passes(_: RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString> {
        RResult::ROk(RVec::from(vec![Verdict::pass("fine", "fine")]))
    }

    extern "C" fn hook_fails(_: RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString> {
        RResult::RErr("boom".into())
    }

    fn run(dir: &Path, s: &Summary, hooks: &[(&'static str, CheckFn)]) -> Vec<VerdictRecord> {
        judge(
            hooks.iter().copied(),
            &FolderOutputs::load(dir, s, &BTreeMap::new()),
        )
    }

    #[test]
    fn a_missing_or_unreadable_output_is_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00001.out"), "ok\n").unwrap();
        fs::write(dir.path().join("00002.out"), "").unwrap();
        fs::create_dir(dir.path().join("00004.out")).unwrap(); // unreadable as text
        let s = summary(&[
            (1, "finished"),
            (2, "finished"),
            (3, "finished"),
            (4, "finished"),
        ]);
        let o = FolderOutputs::load(dir.path(), &s, &BTreeMap::new());
        let view = Outputs::from_impl(&o);
        assert_eq!(view.instance_ids(), [1, 2, 3, 4]);
        assert!(view.succeeded(1) && view.succeeded(2));
        assert_eq!(view.status(2), "finished", "an empty output is fine");
        assert!(!view.succeeded(3), "a missing output");
        assert_eq!(view.status(3), "finished; its output 00003.out is missing");
        assert!(!view.succeeded(4), "an unreadable output");
        assert!(
            view.status(4)
                .starts_with("finished; its output 00004.out cannot be read: "),
            "{}",
            view.status(4)
        );
        let v = run(dir.path(), &s, &[("m", all_print_ok)]);
        assert_eq!(v.len(), 1);
        assert!(!v[0].passed);
        assert_eq!(v[0].name, "m/ok");
        assert!(
            v[0].message.starts_with(
                "2: finished, 3: finished; its output 00003.out is missing, 4: finished; its output 00004.out cannot be read"
            ),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn a_run_where_every_instance_printed_passes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00001.out"), "ok\n").unwrap();
        fs::write(dir.path().join("00002.out"), "x\nok\n").unwrap();
        let s = summary(&[(1, "finished"), (2, "finished")]);
        let v = run(dir.path(), &s, &[("m", all_print_ok), ("c", always_passes)]);
        assert!(v.iter().all(|v| v.passed), "{v:?}");
        assert_eq!(v[0].message, "everyone printed ok");
    }

    #[test]
    fn an_instance_whose_end_event_says_it_was_away_is_not_online_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        for id in 1..=3 {
            fs::write(dir.path().join(format!("0000{id}.out")), "ok\n").unwrap();
        }
        let end = |online: &str| {
            format!(
                "{{\"t\":1.0,\"kind\":\"fault\",\"text\":\"leave\"}}\n{{\"t\":9.0,\"kind\":\"end\",\"status\":\"finished\"{online}}}\n"
            )
        };
        fs::write(dir.path().join("00001.events.jsonl"), end("")).unwrap();
        fs::write(
            dir.path().join("00002.events.jsonl"),
            end(",\"online\":false"),
        )
        .unwrap();
        // 3 has no events file: nothing says it was away.
        let s = summary(&[(1, "finished"), (2, "finished"), (3, "finished")]);
        let o = FolderOutputs::load(dir.path(), &s, &BTreeMap::new());
        let view = Outputs::from_impl(&o);
        assert!(view.online_at_end(1));
        assert!(!view.online_at_end(2));
        assert!(view.online_at_end(3));
        assert!(
            view.online_at_end(9),
            "an unknown id says nothing either way"
        );
    }

    #[test]
    fn no_verdict_passes_when_no_instance_ran() {
        let dir = tempfile::tempdir().unwrap();
        let never = summary(&[(1, "never_started"), (2, "never_started")]);
        let v = run(
            dir.path(),
            &never,
            &[("m", all_print_ok), ("c", always_passes), ("h", hook_fails)],
        );
        assert_eq!(
            v.iter()
                .map(|v| (v.name.as_str(), v.passed, v.message.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "m/ok",
                    false,
                    "not judged: no instance ran (of 2: 2 never started)"
                ),
                (
                    "c/fine",
                    false,
                    "not judged: no instance ran (of 2: 2 never started)"
                ),
                (
                    "h/verdict hook",
                    false,
                    "not judged: no instance ran (of 2: 2 never started)"
                ),
            ]
        );
        // started, but failed before printing, or no output survived
        fs::write(dir.path().join("00002.out"), "").unwrap();
        fs::write(dir.path().join("00003.out"), "").unwrap();
        let gone = summary(&[
            (1, "never_started"),
            (2, "failed"),
            (3, "failed"),
            (4, "crashed"),
        ]);
        let v = run(dir.path(), &gone, &[("c", always_passes)]);
        assert_eq!(
            v[0].message,
            "not judged: no instance ran (of 4: 1 crashed with no readable output, \
             2 failed before printing anything, 1 never started)"
        );
        assert!(!v[0].passed);
        // one instance that printed is enough to judge, even if it failed
        fs::write(dir.path().join("00003.out"), "ok\n").unwrap();
        let v = run(dir.path(), &gone, &[("c", always_passes)]);
        assert!(v[0].passed, "{v:?}");
        // and so is one that finished without printing
        let quiet = summary(&[(1, "never_started"), (2, "finished")]);
        let v = run(dir.path(), &quiet, &[("c", always_passes)]);
        assert!(v[0].passed, "{v:?}");
        let v = run(dir.path(), &summary(&[]), &[("c", always_passes)]);
        assert_eq!(
            (v[0].passed, v[0].message.as_str()),
            (false, "not judged: the run has no instances")
        );
    }

    #[test]
    fn a_failing_hook_is_a_failing_verdict() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00001.out"), "ok\n").unwrap();
        let v = run(
            dir.path(),
            &summary(&[(1, "finished")]),
            &[("h", hook_fails)],
        );
        assert_eq!(v[0].name, "h/verdict hook");
        assert_eq!(v[0].message, "the verdict hook failed: boom");
        assert!(!v[0].passed);
    }
}
