//! Error types of the overlay: decoding, encoding and commands.
//!
//! Owns: the typed errors every fallible function of this crate returns.
//! Must not: hold any protocol logic.

use thiserror::Error;

/// Why a datagram could not be decoded. Decoding never panics and never reads
/// past the input: every malformed input maps to one of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before a field was complete.
    #[error("packet truncated: {what} needs {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Where the field starts.
        offset: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The first two bytes are not py-ipv8's `00 02`.
    #[error("bad packet prefix {found:02x?}: expected [00, 02] (py-ipv8 community version 2)")]
    BadPrefix {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// An address field has an unknown type tag (py-ipv8: 1 = IPv4, 3 = IPv6).
    #[error("unsupported address type {0} in packet: expected 1 (IPv4) or 3 (IPv6)")]
    BadAddressType(u8),
    /// The public key is not a 74-byte `LibNaCLPK:` key.
    #[error("unsupported public key of {len} bytes: expected 74 bytes starting with LibNaCLPK:")]
    UnsupportedKey {
        /// Length of the key field.
        len: usize,
    },
    /// The ed25519 key bytes are not a valid curve point.
    #[error("invalid ed25519 public key in packet")]
    InvalidKey,
    /// Bytes remain after a fixed-layout payload.
    #[error("{count} trailing bytes after a {what} payload")]
    TrailingBytes {
        /// The payload.
        what: &'static str,
        /// How many bytes remain.
        count: usize,
    },
    /// A field has a value the layout forbids.
    #[error("invalid {what} in packet: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The caller's buffer is too small.
    #[error("encode buffer too small: need {needed} bytes, have {capacity}")]
    BufferTooSmall {
        /// Bytes needed so far.
        needed: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// An old-style (IPv4-only) py-ipv8 message was asked to carry an IPv6 address.
    #[error("address {0} is not IPv4: use the new-style message variant")]
    NotIpv4(std::net::SocketAddr),
    /// A length does not fit its length field.
    #[error("{what} of {len} bytes does not fit its {max}-byte maximum")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Its maximum.
        max: usize,
    },
}

/// Why a command to the overlay core was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// The message does not fit one datagram.
    #[error(
        "message {meta} of {payload} payload bytes makes a {size}-byte packet, over the {max}-byte datagram limit: send less per message"
    )]
    Oversize {
        /// Meta-message name.
        meta: String,
        /// Payload length.
        payload: usize,
        /// Packet length it would have.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// No meta-message has that name or id.
    #[error("unknown meta-message {0}: define it with define_message first")]
    UnknownMessage(String),
    /// A meta-message name or id is already taken.
    #[error(
        "meta-message {name} (id {id}) conflicts with an existing definition: pick another name or id"
    )]
    Conflict {
        /// The new name.
        name: String,
        /// The id.
        id: u8,
    },
    /// The id is reserved for py-ipv8's discovery messages or peerlab's sync messages.
    #[error("message id {0} is reserved (229..=255 belong to discovery and sync): use 1..=228")]
    ReservedId(u8),
    /// The Lamport clock reached its end: no new global time can be claimed.
    #[error(
        "the global time reached its limit (2^64-1), so no new message can be stamped: a peer pushed the clock to the end"
    )]
    ClockExhausted,
    /// No free message id is left.
    #[error("no free message id left for {0}: at most 228 meta-messages per community")]
    NoFreeId(String),
    /// A combination of policies the overlay does not support.
    #[error("meta-message {name}: {why}")]
    Unsupported {
        /// The meta-message.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// `Destination::Candidate` was used without naming any peer, or `Community(n)` with no peer known.
    #[error("message {meta} has no destination: {why}")]
    NoDestination {
        /// The meta-message.
        meta: String,
        /// Why.
        why: &'static str,
    },
    /// The community id is not set yet.
    #[error("no community id: call set_community (isolate_community) before sending")]
    NoCommunity,
}
