//! The overlay's vocabulary as modules see it: message definitions
//! ([`MessageSpec`], after Dispersy's meta-messages) and delivered messages
//! ([`IncomingMessage`]).
//!
//! Only the interface lives here; the overlay itself is `plugins/dispersy`,
//! reached through [`crate::HostContext`].

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RString, RVec};

/// Who signs a message (Dispersy's Authentication policy).
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Authentication(pub u8);

impl Authentication {
    /// Not signed; receivers see an empty author key.
    pub const NONE: Authentication = Authentication(0);
    /// Signed by the sending member (ed25519), verified on receipt.
    pub const MEMBER: Authentication = Authentication(1);
}

/// How a message spreads (Dispersy's Distribution policy).
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Distribution(pub u8);

impl Distribution {
    /// Stamped with a global time, stored and synchronised until everyone has it.
    pub const FULL_SYNC: Distribution = Distribution(0);
    /// Sent once, never stored.
    pub const DIRECT: Distribution = Distribution(1);
}

/// Where a message goes (Dispersy's Destination policy).
///
/// Crosses the boundary as [`Destination_NE`]; match with a wildcard arm.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [u64; 4], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum Destination {
    /// Gossip to `fanout` peers of the community.
    Community {
        /// How many peers each send reaches.
        fanout: u32,
    },
    /// To the instances the sender names in [`crate::Overlay::send`].
    Candidate,
}

/// A message type a module defines before sending or receiving it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MessageSpec {
    /// The message's name, unique within the community.
    pub name: RString,
    /// Signed or not.
    pub authentication: Authentication,
    /// Synchronised or direct.
    pub distribution: Distribution,
    /// Gossip or addressed.
    pub destination: Destination_NE,
}

impl MessageSpec {
    /// A message definition.
    pub fn new(
        name: &str,
        authentication: Authentication,
        distribution: Distribution,
        destination: Destination,
    ) -> Self {
        MessageSpec {
            name: name.into(),
            authentication,
            distribution,
            destination: Destination_NE::new(destination),
        }
    }
}

/// A message delivered to the module that defined its type, through
/// `on_message`.
///
/// Who wrote it: trust [`author_instance`](Self::author_instance), which the
/// overlay checked, never `sender` or anything the payload claims.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// The message type's name.
    pub name: RString,
    /// The sending experiment instance, 0 when the sender is not one
    /// (e.g. a py-ipv8 peer). For a signed message this is its author when
    /// the author's key is the run's, otherwise the peer it came from
    /// (which may only have passed it on).
    pub sender: u64,
    /// The author's public key; empty for unauthenticated messages.
    pub author: RVec<u8>,
    /// The Lamport global time (0 for direct messages).
    pub global_time: u64,
    /// The payload bytes as the author sent them.
    pub payload: RVec<u8>,
    /// Since 1.3: the experiment instance whose key signed this message,
    /// when that key is the one the run's peer table (the sync server's
    /// directory) gives the instance and the signature verified; `RNone`
    /// for unsigned messages, for keys from outside the run, and from
    /// hosts older than 1.3. A message claiming to come from instance `i`
    /// is authentic when this is `RSome(i)`.
    pub author_instance: ROption<u64>,
}

impl IncomingMessage {
    /// The directory-verified author instance as an `Option`.
    pub fn verified_author(&self) -> Option<u64> {
        self.author_instance.into_option()
    }
}

/// The message as plugin-api 1.0 to 1.2 lay it out, for plugins built
/// against them (`ModuleInstance::on_message` carries it). Plugin code uses
/// [`IncomingMessage`].
#[doc(hidden)]
pub mod v1 {
    use abi_stable::StableAbi;
    use abi_stable::std_types::{RString, RVec};

    /// [`super::IncomingMessage`] without `author_instance` (frozen: its
    /// layout is what 1.0 plugins check against).
    #[repr(C)]
    #[derive(StableAbi, Debug, Clone, PartialEq)]
    pub struct IncomingMessage {
        /// See [`super::IncomingMessage::name`].
        pub name: RString,
        /// See [`super::IncomingMessage::sender`].
        pub sender: u64,
        /// See [`super::IncomingMessage::author`].
        pub author: RVec<u8>,
        /// See [`super::IncomingMessage::global_time`].
        pub global_time: u64,
        /// See [`super::IncomingMessage::payload`].
        pub payload: RVec<u8>,
    }
}

impl From<v1::IncomingMessage> for IncomingMessage {
    /// A message from a host older than 1.3: the author is not verified.
    fn from(m: v1::IncomingMessage) -> Self {
        IncomingMessage {
            name: m.name,
            sender: m.sender,
            author: m.author,
            global_time: m.global_time,
            payload: m.payload,
            author_instance: ROption::RNone,
        }
    }
}

impl From<IncomingMessage> for v1::IncomingMessage {
    fn from(m: IncomingMessage) -> Self {
        v1::IncomingMessage {
            name: m.name,
            sender: m.sender,
            author: m.author,
            global_time: m.global_time,
            payload: m.payload,
        }
    }
}
