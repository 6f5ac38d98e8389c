//! The config keys of external instances: instances of a run that are
//! other programs (a py-ipv8 peer through peerlab's Python client, say),
//! started and supervised like peerlab's own (`external_instances`,
//! `external_cmd`, `external_callbacks`), and the registration timeout
//! they are the first to need (`registration_timeout`: a Python program
//! importing py-ipv8 starts slower than a peerlab instance; the key holds
//! for every instance of the run).
//!
//! Typing only, like the rest of lang: no I/O. The host starts the
//! programs and reads the callback manifest.

use std::time::Duration;

use serde::Serialize;

/// `external_instances`, `external_cmd`, `external_callbacks`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct External {
    /// How many of `instances_to_run` are other programs: the last ones
    /// (with 6 instances and 2 external, ids 5 and 6). Default 0.
    pub instances: u32,
    /// The command line each external instance runs (through `sh -c`, in
    /// the config file's directory).
    pub cmd: Option<String>,
    /// The callback manifest of the external program (JSON, relative to
    /// the config file's directory): the scenario commands it answers.
    pub callbacks: Option<String>,
}

impl External {
    /// The keys this struct types.
    pub const KEYS: [&'static str; 3] =
        ["external_instances", "external_cmd", "external_callbacks"];

    /// Type the value `text` of `key` (one of [`Self::KEYS`]); the error is
    /// a diagnostic's message. Any other key is left alone (`Ok(false)`).
    pub fn set(&mut self, key: &str, text: &str) -> Result<bool, String> {
        match key {
            "external_instances" => {
                self.instances = text.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "bad value for `external_instances`: expected a whole number from 0, found `{text}`"
                    )
                })?;
            }
            "external_cmd" => {
                let s = text.trim();
                if s.is_empty() {
                    return Err("`external_cmd` is empty: name the program each external instance runs, e.g. `python3 my_peer.py`".into());
                }
                self.cmd = Some(s.to_string());
            }
            "external_callbacks" => {
                let s = text.trim();
                if s.is_empty() {
                    return Err("`external_callbacks` is empty: name the external program's callback manifest (JSON)".into());
                }
                self.callbacks = Some(s.to_string());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The external instances' ids among `instances` (the last
    /// [`External::instances`] of them).
    pub fn ids(&self, instances: u32) -> std::ops::RangeInclusive<u32> {
        let n = self.instances.min(instances);
        (instances - n + 1)..=instances
    }

    /// Whether instance `id` of `instances` is external.
    pub fn is_external(&self, id: u32, instances: u32) -> bool {
        self.instances > 0 && self.ids(instances).contains(&id)
    }

    /// Problems between the keys (and with `instances_to_run`), as messages.
    /// `cmd_written`: the config sets `external_cmd` (if its value did not
    /// type, that has its own diagnostic).
    pub fn check(&self, instances: u32, cmd_written: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.instances > instances {
            out.push(format!(
                "`external_instances = {}` is more than `instances_to_run = {instances}`: external instances are counted among the run's instances (the last ones)",
                self.instances
            ));
        }
        if self.instances > 0 && self.cmd.is_none() && !cmd_written {
            out.push(format!(
                "`external_instances = {}` needs `external_cmd`, the program each of them runs",
                self.instances
            ));
        }
        out
    }
}

/// The longest `registration_timeout` (a day): beyond it a run waiting
/// for an instance is a mistake, and deadlines stay far from overflowing.
pub const MAX_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Type `registration_timeout`: a duration above 0, at most
/// [`MAX_REGISTRATION_TIMEOUT`]; the error is a diagnostic's message.
pub fn registration_timeout(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "bad value for `registration_timeout`: expected a duration from 1ms to 24h (`20`, `90s`, `2m`), found `{}`",
            text.trim()
        )
    };
    let d = crate::value::parse_duration(text).map_err(|_| bad())?;
    if d < Duration::from_millis(1) || d > MAX_REGISTRATION_TIMEOUT {
        return Err(bad());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_instances_are_external() {
        let mut e = External::default();
        assert!(!e.is_external(6, 6));
        e.set("external_instances", "2").unwrap();
        assert_eq!(e.ids(6), 5..=6);
        assert!(!e.is_external(4, 6) && e.is_external(5, 6) && e.is_external(6, 6));
        assert_eq!(e.check(6, false).len(), 1, "no external_cmd");
        assert!(
            e.check(6, true).is_empty(),
            "its bad value was said already"
        );
        e.set("external_cmd", "python3 p.py").unwrap();
        assert!(e.check(6, false).is_empty());
        assert_eq!(e.check(1, false).len(), 1, "more external than instances");
        assert!(e.set("external_instances", "-1").is_err());
        assert_eq!(e.set("other", "x"), Ok(false));
    }

    #[test]
    fn the_registration_timeout_is_a_positive_duration_up_to_a_day() {
        assert_eq!(registration_timeout("3"), Ok(Duration::from_secs(3)));
        assert_eq!(registration_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            registration_timeout("500ms"),
            Ok(Duration::from_millis(500))
        );
        for bad in ["0", "0ms", "25h", "soon", "-1", ""] {
            let err = registration_timeout(bad).unwrap_err();
            assert!(
                err.contains("expected a duration from 1ms to 24h"),
                "{bad}: {err}"
            );
        }
    }
}
