//! The link model: what a simulated network does to a datagram on one link
//! (one direction): a fixed delay, a uniform jitter, a loss probability and
//! an MTU.
//!
//! One type for the one network ([`crate::Network`]), whoever drives it:
//! [`crate::overlay::SimNet`] (overlay cores in the overlay's tests) and the
//! host's simulated runner (whole instances, `network = simulated`), which
//! re-exports it. Each names the values it starts from
//! ([`LinkModel::TEST_LAN`], [`LinkModel::SIMULATED_RUN`]).
//! Must not: draw random numbers or know a clock ([`crate::Network::send`]
//! samples loss and jitter with the network's seeded RNG, in one order,
//! part of what makes a run repeat byte for byte).

use std::time::Duration;

/// Properties of a link (one direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay per datagram, uniform in `[0, jitter)`: reorders datagrams.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Datagrams larger than this many bytes are dropped.
    pub mtu: usize,
}

impl LinkModel {
    /// The link `SimNet` gives the overlay's tests: 10 ms, no jitter, no
    /// loss, Ethernet's 1500-byte MTU.
    pub const TEST_LAN: LinkModel = LinkModel {
        delay: Duration::from_millis(10),
        jitter: Duration::ZERO,
        loss: 0.0,
        mtu: 1500,
    };

    /// The link of a simulated run unless its config's `network_delay`,
    /// `network_jitter` and `network_loss` say otherwise: 5 ms, up to 1 ms
    /// of jitter, no loss, no MTU limit (the overlay never sends more than
    /// `wire::MAX_DATAGRAM`).
    pub const SIMULATED_RUN: LinkModel = LinkModel {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(1),
        loss: 0.0,
        mtu: usize::MAX,
    };
}

impl Default for LinkModel {
    /// [`LinkModel::SIMULATED_RUN`], the default a user sees.
    fn default() -> Self {
        Self::SIMULATED_RUN
    }
}
