//! The Dispersy overlay: communities, signed gossip with global time,
//! catch-up synchronisation and peer discovery, speaking py-ipv8's wire format.
//!
//! - [`wire`]: the codec (py-ipv8's packet format, zero-copy decode, encode into a caller buffer).
//! - [`crypto`]: keys (`LibNaCLPK:` format), member ids, community ids.
//! - [`OverlayCore`]: the sans-IO protocol core (packets and time in; packets, events and deadlines out).
//! - [`module`]: the built-in `dispersy` module (scenario callbacks, config keys) over
//!   plugin-api, and the mapping between plugin-api's message types and the overlay's.
//! - [`store`] and [`table`]: the FullSync store of each overlay, over a table of
//!   messages shared by the overlays of a process.
//! - The simulated network (`SimNet`, the link model) is the crate `peerlab-netsim`
//!   (`netsim/`), shared with the host's simulated runner; the overlay's
//!   simulated tests live there too.
//! - `udp` (feature `tokio`, on by default): helpers that run a core over a tokio UDP socket.
//!
//! **Invariant:** the core never touches a socket, a clock or a thread RNG.

pub mod bloom;
mod core;
mod counts;
pub mod crypto;
pub mod error;
pub mod module;
pub mod peers;
pub mod pool;
pub mod stats;
pub mod store;
pub mod table;
pub mod tracker;
#[cfg(feature = "tokio")]
pub mod udp;
pub mod wire;

pub use crate::core::{
    Authentication, Config, DEFAULT_MAX_MESSAGES_PER_AUTHOR, Delivered, Destination, Distribution,
    MAX_MESSAGES_PER_AUTHOR, MetaId, MetaMessage, OverlayCore, OverlayEvent, SendReport, Transmit,
};
pub use crate::crypto::{CommunityId, Keypair, MemberId, PublicKey};
pub use crate::error::{CommandError, DecodeError, EncodeError};
pub use crate::peers::{PeerDirectory, PeerKey};
pub use crate::pool::SharedPool;
pub use crate::stats::{DropReason, Stats, TypeStats};
