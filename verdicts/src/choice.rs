//! Which modules judge a run: the config key `verdicts` (`all`, the
//! default; `none`; or a list of module names) and `peerlab run
//! --no-verdicts`. A module loaded only for a callback or two need not fail
//! the run through its verdicts. Parsing, the diagnostics `peerlab check`
//! and `peerlab run` show for a bad value, and the "skipped" entries the
//! summary lists for modules left out live here; asking the modules lives
//! in [`crate::collect`].
//!
//! Must not: call a module or read the run folder.

use peerlab_lang::Diagnostic;
use peerlab_lang::experiment::{Experiment, Origin};

use peerlab_instance::modules::Registry;
use peerlab_run::VerdictRecord;

/// The config key.
pub const KEY: &str = "verdicts";

/// Which modules' verdict hooks run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VerdictChoice {
    /// Every loaded module's (the default).
    #[default]
    All,
    /// No module's.
    None,
    /// Only these modules' (names as `&module` loaded them, e.g. `benaloh`).
    Only(Vec<String>),
}

impl VerdictChoice {
    /// Read a value: `all`, `none`, or module names (a list).
    pub fn parse(items: &[&str]) -> Result<VerdictChoice, String> {
        let items: Vec<&str> = items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        match items.as_slice() {
            [] => Err(format!(
                "`{KEY}` is empty: give `all`, `none` or module names, e.g. `benaloh, gossip`"
            )),
            [w] if w.eq_ignore_ascii_case("all") => Ok(VerdictChoice::All),
            [w] if w.eq_ignore_ascii_case("none") => Ok(VerdictChoice::None),
            names => {
                if let Some(w) = names
                    .iter()
                    .find(|w| w.eq_ignore_ascii_case("all") || w.eq_ignore_ascii_case("none"))
                {
                    return Err(format!(
                        "`{KEY}`: `{w}` cannot be combined with module names"
                    ));
                }
                Ok(VerdictChoice::Only(
                    names.iter().map(|s| s.to_string()).collect(),
                ))
            }
        }
    }

    /// The experiment's choice (`All` when the key is absent), or why its
    /// value is not usable.
    pub fn of(exp: &Experiment) -> Result<VerdictChoice, String> {
        match exp.raw.get(KEY) {
            None => Ok(VerdictChoice::All),
            Some(v) => VerdictChoice::parse(&v.value.items()),
        }
    }

    /// Whether the module named `module` judges the run.
    pub fn judges(&self, module: &str) -> bool {
        match self {
            VerdictChoice::All => true,
            VerdictChoice::None => false,
            VerdictChoice::Only(names) => names.iter().any(|n| n == module),
        }
    }

    /// How the choice is written, for "skipped (verdicts = ...)".
    pub fn describe(&self) -> String {
        match self {
            VerdictChoice::All => "all".into(),
            VerdictChoice::None => "none".into(),
            VerdictChoice::Only(names) => names.join(", "),
        }
    }

    /// One "skipped" entry for each module of `registry` whose verdicts were
    /// not asked for (`core` has none and is left out).
    pub fn skipped(&self, registry: &Registry, why: &str) -> Vec<VerdictRecord> {
        registry
            .modules()
            .iter()
            .filter(|m| m.name != "core" && !self.judges(&m.name))
            .map(|m| VerdictRecord {
                name: m.name.clone(),
                passed: true,
                message: format!("skipped ({why})"),
                skipped: true,
            })
            .collect()
    }
}

/// Problems with the experiment's `verdicts` value: unreadable, or naming
/// a module the scenario does not load.
pub fn check_choice(exp: &Experiment, registry: &Registry) -> Vec<Diagnostic> {
    let Some(v) = exp.raw.get(KEY) else {
        return Vec::new();
    };
    let at = |d: Diagnostic| match &v.origin {
        Origin::File(loc) => d.at(loc.clone()),
        Origin::Env(name) => d.with_help(format!(
            "the value comes from the environment variable {name}"
        )),
    };
    let loaded: Vec<&str> = registry
        .modules()
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| *n != "core")
        .collect();
    match VerdictChoice::of(exp) {
        Err(why) => vec![at(Diagnostic::error(why).with_code("bad-value"))],
        Ok(VerdictChoice::Only(names)) => names
            .iter()
            .filter(|n| !loaded.contains(&n.as_str()))
            .map(|n| {
                let d = Diagnostic::error(format!(
                    "`{KEY}` names module `{n}`, which the scenario does not load"
                ))
                .with_code("bad-value");
                let d = match peerlab_lang::suggest(n, loaded.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "the scenario loads: {}",
                        if loaded.is_empty() {
                            "no module with verdicts".to_string()
                        } else {
                            loaded.join(", ")
                        }
                    )),
                };
                at(d)
            })
            .collect(),
        Ok(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read() {
        assert_eq!(VerdictChoice::parse(&["all"]), Ok(VerdictChoice::All));
        assert_eq!(VerdictChoice::parse(&["None"]), Ok(VerdictChoice::None));
        assert_eq!(
            VerdictChoice::parse(&["benaloh", " gossip "]),
            Ok(VerdictChoice::Only(vec!["benaloh".into(), "gossip".into()]))
        );
        assert!(VerdictChoice::parse(&[]).is_err());
        assert!(VerdictChoice::parse(&["none", "benaloh"]).is_err());
        let only = VerdictChoice::Only(vec!["gossip".into()]);
        assert!(only.judges("gossip") && !only.judges("benaloh"));
        assert!(!VerdictChoice::None.judges("gossip"));
    }
}
