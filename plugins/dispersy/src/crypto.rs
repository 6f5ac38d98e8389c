//! Keys, member ids and community ids in py-ipv8's formats.
//!
//! Owns: the ed25519 key pair derived from a 32-byte seed, the 74-byte
//! `LibNaCLPK:` public key encoding, SHA-1 member ids and the derivation of an
//! isolated community id. Must not: read an OS RNG (every key comes from a
//! given seed) or know anything about packets beyond signing bytes.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha1::{Digest, Sha1};

use crate::error::DecodeError;

/// The 10-byte prefix py-ipv8 puts before a libnacl (curve25519 + ed25519) public key.
pub const PUBLIC_KEY_PREFIX: &[u8; 10] = b"LibNaCLPK:";
/// Length of a serialised public key: prefix + 32-byte curve25519 key + 32-byte ed25519 key.
pub const PUBLIC_KEY_LEN: usize = 74;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// A member's public key as py-ipv8 serialises it (`key_to_bin()`): `LibNaCLPK:`,
/// the 32-byte curve25519 (encryption) key, then the 32-byte ed25519 (verification) key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Parses a serialised key; only py-ipv8's libnacl keys (74 bytes, `LibNaCLPK:`) are accepted.
    pub fn from_bin(bytes: &[u8]) -> Result<Self, DecodeError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::UnsupportedKey { len: bytes.len() })?;
        if &arr[..10] != PUBLIC_KEY_PREFIX {
            return Err(DecodeError::UnsupportedKey { len: bytes.len() });
        }
        Ok(Self(arr))
    }

    /// The 74 serialised bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// The 32-byte ed25519 verification key inside.
    pub fn ed25519_bytes(&self) -> &[u8; 32] {
        self.0[42..74]
            .try_into()
            .expect("fixed slice of a fixed array")
    }

    /// The 32-byte curve25519 key inside (unused by peerlab, kept for py-ipv8).
    pub fn curve25519_bytes(&self) -> &[u8; 32] {
        self.0[10..42]
            .try_into()
            .expect("fixed slice of a fixed array")
    }

    /// py-ipv8's member id (`key_to_hash`): SHA-1 of the 74 serialised bytes.
    pub fn member_id(&self) -> MemberId {
        MemberId(Sha1::digest(self.0).into())
    }

    /// Decompresses the ed25519 key (about as costly as a few microseconds; cache the result).
    pub fn verifying_key(&self) -> Result<VerifyingKey, DecodeError> {
        VerifyingKey::from_bytes(self.ed25519_bytes()).map_err(|_| DecodeError::InvalidKey)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex(&self.ed25519_bytes()[..8]))
    }
}

/// SHA-1 of a serialised public key, py-ipv8's `mid`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub [u8; 20]);

impl std::fmt::Debug for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberId({})", hex(&self.0))
    }
}

/// A member's key pair, derived deterministically from a 32-byte seed.
///
/// The ed25519 secret is the seed itself (RFC 8032). The curve25519 half of the
/// public key is the Montgomery form of the ed25519 key, which is what
/// libsodium's `crypto_sign_ed25519_pk_to_curve25519` gives; py-ipv8 generates
/// that half independently, but nothing in the overlay checks it.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// Derives the key pair from a seed (e.g. from the run seed and the instance id).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifying = signing.verifying_key();
        let mut bin = [0u8; PUBLIC_KEY_LEN];
        bin[..10].copy_from_slice(PUBLIC_KEY_PREFIX);
        bin[10..42].copy_from_slice(&verifying.to_montgomery().to_bytes());
        bin[42..74].copy_from_slice(verifying.as_bytes());
        Self {
            signing,
            public: PublicKey(bin),
        }
    }

    /// The serialised public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The ed25519 verification key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `data` (deterministic ed25519).
    pub fn sign(&self, data: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(data).to_bytes()
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Verifies one ed25519 signature (the standard, cofactorless check libsodium does).
pub fn verify(key: &VerifyingKey, data: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    key.verify(data, &Signature::from_bytes(signature)).is_ok()
}

/// A 20-byte community id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommunityId(pub [u8; 20]);

impl CommunityId {
    /// The id `isolate_community NAME` gives within one run: SHA-1 over a domain tag,
    /// the run identity (e.g. the run id and seed) and the name, so two runs never share a community.
    pub fn isolated(name: &str, run_identity: &[u8]) -> Self {
        let mut h = Sha1::new();
        h.update(b"peerlab isolate_community v1\0");
        h.update((run_identity.len() as u64).to_be_bytes());
        h.update(run_identity);
        h.update(name.as_bytes());
        Self(h.finalize().into())
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = unhex(s)?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommunityId({})", hex(&self.0))
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); `None` on an odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_py_ipv8_for_rfc8032_seed() {
        // py-ipv8 3.2.1, LibNaCLSK with sign seed 00..1f and crypt key sha512(seed)[:32]
        // (see scripts/ipv8/make_vectors.py), prints this key_to_bin().
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let kp = Keypair::from_seed(&seed);
        assert_eq!(
            hex(kp.public().as_bytes()),
            "4c69624e61434c504b3a4701d08488451f545a409fb58ae3e58581ca40ac3f7f114698cd71deac73ca01\
             03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(
            hex(&kp.sign(b"abc")),
            "cc46d62d3754f41754b27b6ea2cb2c272bafa7a5a1f6062bd060f414e50caaea\
             c2da66ad39cef4424a90236ea907b7d8057e3443dc5abfc9986967ee7213a407"
        );
    }

    #[test]
    fn public_key_rejects_other_formats() {
        assert!(PublicKey::from_bin(&[0u8; 74]).is_err());
        assert!(PublicKey::from_bin(b"LibNaCLPK:").is_err());
    }

    #[test]
    fn isolated_ids_differ_by_run_and_name() {
        let a = CommunityId::isolated("Benaloh", b"run1");
        assert_ne!(a, CommunityId::isolated("Benaloh", b"run2"));
        assert_ne!(a, CommunityId::isolated("Other", b"run1"));
        assert_eq!(a, CommunityId::isolated("Benaloh", b"run1"));
        assert_eq!(CommunityId::from_hex(&a.to_hex()), Some(a));
    }
}
