//! The bloom filter of catch-up sync requests.
//!
//! Owns: which bits a stored message sets, for a given salt, filter size and
//! number of hash functions (double hashing over the first 16 bytes of the
//! message's signature, which are uniformly distributed). Must not: allocate
//! (filters are written into and read from borrowed bytes) or know packets.

/// The bloom key of a signed packet: the first 16 bytes of its signature.
pub fn key_of(signature: &[u8; 64]) -> [u8; 16] {
    signature[..16].try_into().expect("fixed slice")
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `functions` bit positions `key` sets in a filter of `bits` bits.
pub fn positions(key: &[u8; 16], salt: u32, bits: u32, functions: u8) -> impl Iterator<Item = u32> {
    let a = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let s = u64::from(salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let h1 = mix(a ^ s);
    let h2 = mix(b ^ s.rotate_left(32)) | 1;
    let bits = u64::from(bits.max(1));
    // Map the high 32 bits of each hash onto [0, bits) by multiplication
    // (Lemire's fast range) instead of a 64-bit division: this runs for
    // every stored message of every sync request.
    (0..u64::from(functions))
        .map(move |i| (((h1.wrapping_add(i.wrapping_mul(h2)) >> 32) * bits) >> 32) as u32)
}

/// Sets `key`'s bits in `filter`.
pub fn insert(filter: &mut [u8], key: &[u8; 16], salt: u32, functions: u8) {
    let bits = (filter.len() * 8) as u32;
    for p in positions(key, salt, bits, functions) {
        filter[(p / 8) as usize] |= 1 << (p % 8);
    }
}

/// Whether all of `key`'s bits are set in `filter` (false positives possible, no false negatives).
pub fn contains(filter: &[u8], key: &[u8; 16], salt: u32, functions: u8) -> bool {
    let bits = (filter.len() * 8) as u32;
    positions(key, salt, bits, functions).all(|p| filter[(p / 8) as usize] & (1 << (p % 8)) != 0)
}

/// Filter size in bytes and hash-function count for `n` items within `max_bytes`:
/// about 16 bits per item when room allows, the optimal `k = m/n ln 2` otherwise.
pub fn dimensions(n: usize, max_bytes: usize) -> (usize, u8) {
    let bytes = (n * 2).clamp(8, max_bytes.max(8));
    let m = (bytes * 8) as f64;
    let k = ((m / n.max(1) as f64) * std::f64::consts::LN_2).round();
    (bytes, k.clamp(1.0, 16.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let (bytes, k) = dimensions(500, 1300);
        let mut filter = vec![0u8; bytes];
        let key = |i: u32| -> [u8; 16] {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&mix(u64::from(i)).to_le_bytes());
            k[8..].copy_from_slice(&mix(u64::from(i) + 1_000_000).to_le_bytes());
            k
        };
        for i in 0..500 {
            insert(&mut filter, &key(i), 99, k);
        }
        assert!((0..500).all(|i| contains(&filter, &key(i), 99, k)));
        let fp = (500..10_500)
            .filter(|&i| contains(&filter, &key(i), 99, k))
            .count();
        assert!(fp < 100, "false positive rate too high: {fp} of 10000");
    }
}
