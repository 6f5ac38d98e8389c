//! What makes a simulated network's result independent of the order in
//! which its endpoints are handled: the loss and jitter draws of a datagram
//! come from its *sender's* own stream (run seed, sender index, the
//! sender's count of datagrams so far), and the queue's order among events
//! due at the same instant is a key made of who they concern (destination,
//! kind, sender, sender's count), never of when they were queued.
//!
//! With both, the events of one endpoint happen in the same order whatever
//! else the network did in between, which is what lets the host's
//! simulated runner hand endpoints to several threads and still repeat a
//! run byte for byte (`runtime/src/sim_parallel.rs`).
//!
//! Owns: [`Draws`] (the per-sender counters and the stateless draw) and the
//! ordering keys. Must not: hold a shared generator (a draw must depend on
//! nothing but its sender's own history), read the clock, or know what an
//! endpoint is.

/// Sender field of a key for a datagram from no known endpoint (forged in
/// tests, or from outside the network).
const NO_SENDER: u64 = 0x7FFF_FFFF;
/// Kind bit: a delivery sorts before a wake-up due at the same instant.
const WAKE: u64 = 1 << 31;

/// The ordering key of a queued event after its due time: `(hi, lo)`,
/// compared as a pair. `hi` is (destination, kind, sender), `lo` the
/// sender's count (it wraps after 2^32 datagrams of one sender, far beyond
/// any run; equal keys would only need equal due times as well).
pub(crate) type Key = (u64, u32);

/// The key of a datagram to endpoint `to` that is the `seq`-th of `from`.
pub(crate) fn deliver_key(to: usize, from: Option<usize>, seq: u64) -> Key {
    let from = from.map_or(NO_SENDER, |f| (f as u64) & NO_SENDER);
    (((to as u64) << 32) | from, seq as u32)
}

/// The key of a wake-up of endpoint `to` (`None`: not said; those sort
/// after every endpoint's events at the same instant).
pub(crate) fn wake_key(to: Option<usize>, seq: u64) -> Key {
    let to = to.map_or(u64::from(u32::MAX), |t| t as u64 & u64::from(u32::MAX));
    ((to << 32) | WAKE, seq as u32)
}

/// The endpoint an event with this key is for (`None` for wake-ups
/// queued without one).
pub(crate) fn key_endpoint(key: Key) -> Option<usize> {
    let to = key.0 >> 32;
    (to != u64::from(u32::MAX) || key.0 & WAKE == 0).then_some(to as usize)
}

/// The seeded draws of loss and jitter, one stream per sender.
#[derive(Debug, Clone)]
pub(crate) struct Draws {
    seed: u64,
    /// Datagrams each endpoint has sent so far (by endpoint index).
    sent: Vec<u64>,
    /// Datagrams sent from no known endpoint, and wake-ups without one.
    other: u64,
}

/// SplitMix64's finaliser: a good 64-bit mix, cheap and stateless.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Draws {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            sent: Vec::new(),
            other: 0,
        }
    }

    /// The next count of sender `from` (counted from 1).
    pub(crate) fn next(&mut self, from: Option<usize>) -> u64 {
        let slot = match from {
            Some(f) => {
                if f >= self.sent.len() {
                    self.sent.resize(f + 1, 0);
                }
                &mut self.sent[f]
            }
            None => &mut self.other,
        };
        *slot += 1;
        *slot
    }

    /// A uniform number in `[0, 1)`: draw `which` (0: loss, 1: jitter) of
    /// the `seq`-th datagram of `from`.
    pub(crate) fn unit(&self, from: Option<usize>, seq: u64, which: u64) -> f64 {
        let sender = from.map_or(u64::MAX, |f| f as u64);
        let stream = mix(self.seed ^ mix(sender.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        let z = mix(stream ^ mix(seq.wrapping_mul(2).wrapping_add(which)));
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_senders_draws_depend_on_its_own_count_only() {
        let mut a = Draws::new(7);
        let mut b = Draws::new(7);
        // b's other senders send in between: sender 3's draws do not move.
        let s_a: Vec<f64> = (0..5)
            .map(|_| {
                let n = a.next(Some(3));
                a.unit(Some(3), n, 0)
            })
            .collect();
        let s_b: Vec<f64> = (0..5)
            .map(|_| {
                b.next(Some(1));
                b.next(None);
                let n = b.next(Some(3));
                b.unit(Some(3), n, 0)
            })
            .collect();
        assert_eq!(s_a, s_b);
        assert_ne!(a.unit(Some(3), 1, 0), a.unit(Some(4), 1, 0));
        assert_ne!(a.unit(Some(3), 1, 0), a.unit(Some(3), 1, 1));
        assert_ne!(a.unit(Some(3), 1, 0), Draws::new(8).unit(Some(3), 1, 0));
        // Roughly uniform: the mean of many draws is near one half.
        let mean = (1..=10_000).map(|n| a.unit(Some(9), n, 0)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn keys_order_by_destination_then_deliveries_then_sender_and_count() {
        assert!(deliver_key(1, Some(9), 9) < deliver_key(2, Some(0), 0));
        assert!(deliver_key(1, Some(0), 5) < deliver_key(1, Some(1), 0));
        assert!(deliver_key(1, Some(0), 1) < deliver_key(1, Some(0), 2));
        assert!(deliver_key(1, None, 1) < wake_key(Some(1), 0));
        assert!(wake_key(Some(1), 0) < deliver_key(2, Some(0), 0));
        assert_eq!(key_endpoint(deliver_key(5, None, 1)), Some(5));
        assert_eq!(key_endpoint(wake_key(Some(5), 1)), Some(5));
        assert_eq!(key_endpoint(wake_key(None, 1)), None);
    }
}
