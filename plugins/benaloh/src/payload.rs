//! The payload of Benaloh's two messages: a fixed 26-byte big-endian
//! record `version(1) kind(1) origin(8) modulus(8) value(8)`.
//!
//! The origin is in the payload because a synchronised `broadcast-share`
//! can reach an instance through any peer, and the modulus so that an
//! instance computing with another modulus is noticed rather than summed.
//! Decoding never panics: bad bytes are a [`PayloadError`].

use std::fmt;

use crate::protocol::{Kind, Share};

/// The payload format version.
pub const VERSION: u8 = 1;
/// The encoded length.
pub const LEN: usize = 26;

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::LocalShare => 1,
        Kind::SubsetSum => 2,
    }
}

/// Encode a share of `kind`.
pub fn encode(kind: Kind, share: Share) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.push(VERSION);
    out.push(kind_byte(kind));
    out.extend_from_slice(&share.origin.to_be_bytes());
    out.extend_from_slice(&share.modulus.to_be_bytes());
    out.extend_from_slice(&share.value.to_be_bytes());
    out
}

/// Why a payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Not 26 bytes.
    Length(usize),
    /// Another format version.
    Version(u8),
    /// The kind byte does not match the message it came in.
    Kind {
        /// The kind byte found.
        found: u8,
        /// The message's kind.
        expected: Kind,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Length(n) => write!(f, "payload has {n} bytes, expected {LEN}"),
            PayloadError::Version(v) => {
                write!(f, "payload version {v} is not the supported {VERSION}")
            }
            PayloadError::Kind { found, expected } => write!(
                f,
                "payload kind {found} does not match a {} message",
                expected.noun()
            ),
        }
    }
}

/// Decode a payload that arrived in a message of `kind`.
pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Share, PayloadError> {
    let bytes: &[u8; LEN] = bytes
        .try_into()
        .map_err(|_| PayloadError::Length(bytes.len()))?;
    if bytes[0] != VERSION {
        return Err(PayloadError::Version(bytes[0]));
    }
    if bytes[1] != kind_byte(kind) {
        return Err(PayloadError::Kind {
            found: bytes[1],
            expected: kind,
        });
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(w)
    };
    Ok(Share {
        origin: word(2),
        modulus: word(10),
        value: word(18),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extreme_values() {
        for (kind, s) in [
            (
                Kind::LocalShare,
                Share {
                    origin: 1,
                    modulus: 2,
                    value: 1,
                },
            ),
            (
                Kind::SubsetSum,
                Share {
                    origin: u64::MAX,
                    modulus: u64::MAX,
                    value: u64::MAX - 1,
                },
            ),
        ] {
            let b = encode(kind, s);
            assert_eq!(b.len(), LEN);
            assert_eq!(decode(kind, &b), Ok(s));
        }
    }

    #[test]
    fn layout_is_big_endian_fields_in_order() {
        let b = encode(
            Kind::SubsetSum,
            Share {
                origin: 3,
                modulus: 1000,
                value: 258,
            },
        );
        let mut want = vec![1, 2];
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&1000u64.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(b, want);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let good = encode(
            Kind::LocalShare,
            Share {
                origin: 2,
                modulus: 7,
                value: 5,
            },
        );
        for len in 0..good.len() {
            assert_eq!(
                decode(Kind::LocalShare, &good[..len]),
                Err(PayloadError::Length(len))
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode(Kind::LocalShare, &long),
            Err(PayloadError::Length(LEN + 1))
        );
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(decode(Kind::LocalShare, &v2), Err(PayloadError::Version(2)));
        let e = decode(Kind::SubsetSum, &good).unwrap_err();
        assert_eq!(
            e,
            PayloadError::Kind {
                found: 1,
                expected: Kind::SubsetSum
            }
        );
        assert_eq!(
            e.to_string(),
            "payload kind 1 does not match a subset sum message"
        );
    }
}
