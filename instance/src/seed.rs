//! Seeds and overlay settings derived from the run: every random choice of
//! an instance (its modules' RNG, its overlay, its network faults, its
//! member key) follows from `--seed` and, for keys, the run's secret
//! identity; and the overlay's timers are scaled with the scenario.
//!
//! Owns: the derivation functions and the time scaling (`scaled`). Must
//! not: keep state, read the clock or draw randomness itself.

use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy as dispersy;

use super::Shared;

/// Derive a 64-bit seed for `purpose` from the run seed and an instance id,
/// so every random choice of a run follows from `--seed`.
pub fn derive_seed(run_seed: u64, instance: u32, purpose: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"peerlab seed v1\0");
    h.update(run_seed.to_be_bytes());
    h.update(instance.to_be_bytes());
    h.update(purpose.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Overlay timers are scaled with the scenario but never below this, so a
/// strongly compressed run does not spend its time walking.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(20);

/// The overlay settings of instance `id` at `addr`: its key and RNG from
/// the run seed, its walk and sync timers scaled with the scenario (every
/// driver uses this, so real and simulated runs behave alike).
pub fn overlay_config(
    shared: &Shared,
    id: u32,
    addr: std::net::SocketAddr,
    pool: Option<Arc<peerlab_dispersy::SharedPool>>,
) -> dispersy::Config {
    let mut cfg = dispersy::Config::new(
        key_seed(&shared.run_identity, shared.run_seed, id),
        derive_seed(shared.run_seed, id, "overlay"),
        addr,
    );
    if let Some(d) = shared.overlay.sync_interval {
        cfg.sync_interval = d;
    }
    if let Some(n) = shared.overlay.sync_response_limit {
        cfg.sync_response_limit = n;
    }
    // Every peer of a run comes from the sync server's table, so a key
    // outside it is a forgery unless the experiment lets outsiders in.
    cfg.drop_unknown_authors = shared.overlay.drop_unknown_authors.unwrap_or(true);
    if let Some(n) = shared.overlay.max_messages_per_author {
        cfg.max_messages_per_author = n;
    }
    cfg.walk_interval = scaled_interval(cfg.walk_interval, shared.time_scale);
    cfg.sync_interval = scaled_interval(cfg.sync_interval, shared.time_scale);
    cfg.pool = pool;
    cfg.bootstrap = tracker_bootstrap(&shared.config, addr);
    cfg
}

/// With `tracker_cmd` set the runner runs the built-in tracker on this
/// host's `tracker_port` (resolved when the run started): the walker's
/// bootstrap address while it knows no peer.
fn tracker_bootstrap(
    config: &std::collections::BTreeMap<String, String>,
    addr: std::net::SocketAddr,
) -> Vec<std::net::SocketAddr> {
    let wanted = config
        .get("tracker_cmd")
        .is_some_and(|c| !c.trim().is_empty());
    match config.get("tracker_port").map(|p| p.trim().parse::<u16>()) {
        Some(Ok(port)) if wanted => vec![std::net::SocketAddr::new(addr.ip(), port)],
        _ => Vec::new(),
    }
}

/// An overlay interval in wall time: scaled, never below [`MIN_INTERVAL`].
pub(super) fn scaled_interval(d: Duration, scale: f64) -> Duration {
    scaled(d.as_secs_f64(), scale).max(MIN_INTERVAL)
}

/// The 32-byte seed of an instance's member key: from the run's secret
/// identity (the run token; see [`Shared::run_identity`]), the seed and the
/// instance id. The seed alone, which `run.json` holds, is not enough.
pub fn key_seed(run_identity: &[u8], run_seed: u64, instance: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"peerlab member key v2\0");
    h.update((run_identity.len() as u64).to_be_bytes());
    h.update(run_identity);
    h.update(run_seed.to_be_bytes());
    h.update(instance.to_be_bytes());
    h.finalize().into()
}

/// The farthest any timer is set (ten years): a plugin asking for
/// `Duration::MAX` means "never", not an overflow.
pub(super) const FAR: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Scenario seconds as wall time, clamped to `[0, FAR]` (NaN is 0).
pub(super) fn scaled(scenario_secs: f64, scale: f64) -> Duration {
    let wall = scenario_secs * scale;
    if wall.is_nan() || wall <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(wall).map_or(FAR, |d| d.min(FAR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_times_scale_and_never_overflow() {
        assert_eq!(scaled(1.5, 2.0), Duration::from_secs(3));
        assert_eq!(scaled(-1.0, 1.0), Duration::ZERO);
        assert_eq!(scaled(f64::NAN, 1.0), Duration::ZERO);
        assert_eq!(scaled(f64::INFINITY, 1.0), FAR);
        assert_eq!(
            scaled(f64::MAX, 0.5),
            FAR,
            "Duration::MAX as a timer means never"
        );
        assert_eq!(scaled_interval(Duration::from_secs(1), 0.001), MIN_INTERVAL);
    }

    #[test]
    fn seeds_differ_by_instance_and_purpose_and_repeat() {
        assert_eq!(derive_seed(7, 1, "overlay"), derive_seed(7, 1, "overlay"));
        assert_ne!(derive_seed(7, 1, "overlay"), derive_seed(7, 2, "overlay"));
        assert_ne!(derive_seed(7, 1, "overlay"), derive_seed(7, 1, "modules"));
        assert_ne!(key_seed(b"t", 7, 1), key_seed(b"t", 8, 1));
        assert_ne!(
            key_seed(b"token a", 7, 1),
            key_seed(b"token b", 7, 1),
            "the secret identity changes every key"
        );
    }
}
