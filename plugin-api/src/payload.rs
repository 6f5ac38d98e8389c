//! Typed payloads: turn a serde value into the bytes an overlay message
//! carries, and back. The encoding is postcard's (compact, varint integers,
//! no field names), so a payload stays well under a datagram. Both sides
//! must use the same type: add new fields at the end as `Option`s or use
//! a version field when a message's type changes.
//!
//! ```
//! use peerlab_plugin_api::payload;
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Share { from: u64, value: u64 }
//!
//! let bytes = payload::to_bytes(&Share { from: 3, value: 1_000 }).unwrap();
//! assert!(bytes.len() <= 4);
//! assert_eq!(payload::from_bytes::<Share>(&bytes).unwrap(), Share { from: 3, value: 1_000 });
//! assert!(payload::from_bytes::<Share>(&[0xff]).is_err());
//! ```

use serde::{Deserialize, Serialize};

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadError(String);

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PayloadError {}

/// Encode `value` as payload bytes.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, PayloadError> {
    postcard::to_allocvec(value)
        .map_err(|e| PayloadError(format!("cannot encode the payload: {e}")))
}

/// Decode payload bytes as a `T`; trailing bytes are an error, so a payload
/// of another type is refused rather than half read.
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, PayloadError> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| PayloadError(format!("malformed payload of {} bytes: {e}", bytes.len())))?;
    if !rest.is_empty() {
        return Err(PayloadError(format!(
            "payload has {} bytes more than its type holds",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Rumor {
        author: u64,
        seq: u32,
        text: String,
    }

    #[test]
    fn values_round_trip_and_garbage_is_refused() {
        let r = Rumor {
            author: 7,
            seq: 1,
            text: "hello".into(),
        };
        let bytes = to_bytes(&r).unwrap();
        assert_eq!(from_bytes::<Rumor>(&bytes).unwrap(), r);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            from_bytes::<Rumor>(&longer)
                .unwrap_err()
                .to_string()
                .contains("1 bytes more")
        );
        assert!(from_bytes::<Rumor>(&bytes[..bytes.len() - 1]).is_err());
        assert!(from_bytes::<Rumor>(&[]).is_err());
    }
}
