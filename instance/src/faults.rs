//! The fault model: the network conditions a scenario sets on an
//! instance's outgoing traffic (`set_network` loss, delay and jitter;
//! `partition`) and what they do to one datagram ([`Route`]).
//!
//! Owns: [`NetConditions`] and the routing decision, drawn from the
//! instance's seeded network RNG so a run repeats exactly. Must not: carry
//! datagrams or hold them back (the driver applies a [`Route`]'s delay),
//! or know which driver runs the instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy::PeerDirectory;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What the network does with one outgoing datagram of this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Lost (a fault: loss or a partition).
    Drop,
    /// Sent after this extra delay (zero: at once).
    After(Duration),
}

/// Network conditions applied to this instance's outgoing traffic
/// (`set_network`, `partition`); seeded, so a run repeats exactly.
#[derive(Debug, Clone)]
pub struct NetConditions {
    pub loss: f64,
    pub delay: Duration,
    pub jitter: Duration,
    /// Groups of instance ids that can reach each other; instances in no
    /// group form one more group.
    pub partition: Option<Arc<Vec<peerlab_lang::IdSet>>>,
}

impl Default for NetConditions {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            partition: None,
        }
    }
}

impl NetConditions {
    /// No loss, no delay, no partition.
    pub fn is_clean(&self) -> bool {
        self.loss == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.partition.is_none()
    }

    fn group_of(&self, id: u32) -> Option<usize> {
        let groups = self.partition.as_ref()?;
        Some(
            groups
                .iter()
                .position(|g| g.contains(id))
                .unwrap_or(groups.len()),
        )
    }
}

impl NetConditions {
    /// What happens to a datagram instance `from` sends to `dest`: lost to
    /// a partition (`directory` says whose address `dest` is) or to the
    /// loss rate, else sent after the delay plus a share of the jitter.
    /// Draws from `rng` only when loss or jitter is set, so clean
    /// conditions leave the draws of a run as they were.
    pub(super) fn route(
        &self,
        rng: &mut ChaCha8Rng,
        directory: Option<&PeerDirectory>,
        from: u32,
        dest: SocketAddr,
    ) -> Route {
        if self.partition.is_some() {
            let dest_id = directory.and_then(|d| {
                d.index_of_addr(&dest)
                    .map(|i| d.entries()[i as usize].instance_id)
            });
            if let Some(dest_id) = dest_id
                && self.group_of(dest_id) != self.group_of(from)
            {
                return Route::Drop;
            }
        }
        if self.loss > 0.0 && rng.random::<f64>() < self.loss {
            return Route::Drop;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(rng.random::<f64>())
        };
        Route::After(self.delay + jitter)
    }
}
