//! What every instance of a process shares: the scenario's commands bound
//! to their modules ([`ScheduledCall`]), the run's seed and identity, the
//! time scale and the overlay settings read from the config
//! ([`OverlayTuning`]).
//!
//! Owns: these types and the reading of the overlay's config keys. Must
//! not: hold per-instance state or do any I/O (it is built once by
//! `experiment::shared` and only read afterwards).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy as dispersy;
use peerlab_lang::{Command, PeerSpec, Phase};

use crate::modules::{BoundCall, Registry};

/// Where a scenario command stands in the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// `@!`: when the instance is created.
    Load,
    /// `@@`: after loading, before the barrier.
    Setup,
    /// `@t`: t scenario seconds after the common start.
    At(f64),
}

/// The two phases an instance runs before the barrier, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyPhase {
    /// `@!`: when the instance is created.
    Load,
    /// `@@`: after loading, before the barrier.
    Setup,
}

/// A scenario command, bound to its module and arguments.
#[derive(Debug, Clone)]
pub struct ScheduledCall {
    pub when: When,
    pub call: BoundCall,
    pub peers: PeerSpec,
    /// Where it was written, for error messages (`file:line`).
    pub file: Arc<str>,
    pub line: u32,
}

impl ScheduledCall {
    pub fn new(cmd: &Command, call: BoundCall) -> Self {
        let when = match cmd.phase {
            Phase::Load => When::Load,
            Phase::Setup => When::Setup,
            other => When::At(other.seconds().unwrap_or(0.0)),
        };
        Self {
            when,
            call,
            peers: cmd.peers.clone(),
            file: cmd.loc.file.clone(),
            line: cmd.loc.line,
        }
    }
}

/// What every instance of a process shares.
pub struct Shared {
    pub registry: Arc<Registry>,
    /// Sorted: load, setup, then the timeline by time (file order kept).
    pub commands: Vec<ScheduledCall>,
    /// Every config key of the experiment.
    pub config: BTreeMap<String, String>,
    pub instances: u32,
    pub run_seed: u64,
    /// Scenario seconds are multiplied by this to get wall seconds.
    pub time_scale: f64,
    /// Mixed into `isolate_community` ids so no two runs share a community,
    /// and into the member keys. For a run over a network it is the run
    /// token, which is in no file of the run folder (instances get it from
    /// the environment), so nobody can rebuild a member's key from
    /// `run.json`; a simulated run derives it from the seed, so it repeats.
    pub run_identity: Vec<u8>,
    /// Signed packets already verified by some instance of this process:
    /// the others accept identical bytes without verifying again (see
    /// `peerlab_dispersy::pool` for what that means for CPU figures).
    pub pool: Option<Arc<peerlab_dispersy::SharedPool>>,
    /// Overlay settings from the experiment config.
    pub overlay: OverlayTuning,
    /// The run's topology with every instance in its group (`topology`),
    /// read and checked by the host.
    pub topology: Option<Arc<peerlab_lang::network::Topology>>,
}

/// Overlay settings an experiment may change through config keys (the
/// `dispersy` module declares them); `None` keeps the overlay's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OverlayTuning {
    /// `sync_interval`: scenario time between catch-up sync requests (default 1 s).
    pub sync_interval: Option<Duration>,
    /// `sync_response_limit`: most stored messages sent in answer to one
    /// sync request (default 32).
    pub sync_response_limit: Option<usize>,
    /// `drop_unknown_authors`: drop signed messages whose key is not in the
    /// run's peer table (default on: every peer of a run comes from it).
    pub drop_unknown_authors: Option<bool>,
    /// `max_messages_per_author`: most FullSync messages stored per author
    /// (default 10,000).
    pub max_messages_per_author: Option<usize>,
}

impl OverlayTuning {
    /// The config keys read here (the `dispersy` module declares them).
    pub const KEYS: [&'static str; 4] = [
        "sync_interval",
        "sync_response_limit",
        "drop_unknown_authors",
        "max_messages_per_author",
    ];

    /// Read the keys from the experiment config; a bad value is an error
    /// naming the key.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut tuning = Self::default();
        if let Some(v) = config.get("sync_interval") {
            let d = peerlab_lang::value::parse_duration(v)
                .map_err(|e| format!("config key `sync_interval` = {v:?}: {e}"))?;
            if d.is_zero() || d > Duration::from_secs(24 * 3600) {
                return Err(format!(
                    "config key `sync_interval` = {v:?}: give a time above 0 and at most a day, e.g. 1s or 500ms"
                ));
            }
            tuning.sync_interval = Some(d);
        }
        if let Some(v) = config.get("sync_response_limit") {
            let n = peerlab_lang::value::parse_int(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    format!(
                        "config key `sync_response_limit` = {v:?}: give a number of messages from 1 to 100000"
                    )
                })?;
            tuning.sync_response_limit = Some(n);
        }
        if let Some(v) = config.get("drop_unknown_authors") {
            let b = peerlab_lang::value::parse_bool(v).map_err(|_| {
                format!("config key `drop_unknown_authors` = {v:?}: give true or false")
            })?;
            tuning.drop_unknown_authors = Some(b);
        }
        if let Some(v) = config.get("max_messages_per_author") {
            let n = peerlab_lang::value::parse_int(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=dispersy::MAX_MESSAGES_PER_AUTHOR).contains(n))
                .ok_or_else(|| {
                    format!(
                        "config key `max_messages_per_author` = {v:?}: give a number of messages from 1 to {}",
                        dispersy::MAX_MESSAGES_PER_AUTHOR
                    )
                })?;
            tuning.max_messages_per_author = Some(n);
        }
        Ok(tuning)
    }
}

impl Shared {
    pub(super) fn first_timed(&self) -> usize {
        self.commands
            .iter()
            .position(|c| matches!(c.when, When::At(_)))
            .unwrap_or(self.commands.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_tuning_reads_its_keys_and_refuses_bad_values() {
        let cfg = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            OverlayTuning::from_config(&cfg(&[])).unwrap(),
            OverlayTuning::default()
        );
        let t = OverlayTuning::from_config(&cfg(&[
            ("sync_interval", "250ms"),
            ("sync_response_limit", "128"),
            ("drop_unknown_authors", "false"),
            ("max_messages_per_author", "500"),
        ]))
        .unwrap();
        assert_eq!(t.sync_interval, Some(Duration::from_millis(250)));
        assert_eq!(t.sync_response_limit, Some(128));
        assert_eq!(t.drop_unknown_authors, Some(false));
        assert_eq!(t.max_messages_per_author, Some(500));
        for (k, v) in [
            ("sync_interval", "0"),
            ("sync_interval", "soon"),
            ("sync_interval", "2d"),
            ("sync_response_limit", "0"),
            ("sync_response_limit", "-3"),
            ("sync_response_limit", "1e9"),
            ("drop_unknown_authors", "maybe"),
            ("max_messages_per_author", "0"),
            ("max_messages_per_author", "65536"),
        ] {
            let e = OverlayTuning::from_config(&cfg(&[(k, v)])).unwrap_err();
            assert!(e.contains(k), "{e}");
        }
    }
}
