//! Masking (RFC 6455 §5.3): XOR the payload with a 4-byte key, repeated.
//!
//! ```text
//! j                   = i MOD 4
//! transformed-octet-i = original-octet-i XOR masking-key-octet-j
//! ```
//!
//! Every frame a client sends is masked with a fresh random key, so that a script in
//! a browser cannot choose the bytes that appear on the wire (which could otherwise
//! poison a proxy cache that mistakes them for HTTP, §10.3). Masking is its own
//! inverse: the same function masks and unmasks. The server never masks (§5.1), so
//! in this crate masking happens only on received bytes, and in tests that play the
//! client.
//!
//! A frame's payload may arrive in several reads. The key's phase then depends on how
//! far into the payload a piece starts, which is what `offset` is for: byte `i` of
//! `buf` is XORed with `key[(offset + i) % 4]`.
//!
//! # Word at a time
//!
//! [`apply_mask_bytewise`] is the rule as written: one XOR per byte. [`apply_mask`]
//! does the same work eight bytes at a time: it rotates the key by the offset, repeats
//! it twice into a `u64`, and XORs each 8-byte chunk as one word. Both the data and
//! the key word are read with `from_ne_bytes`, so byte `j` of the chunk meets byte `j`
//! of the repeated key on any endianness. Because 8 is a multiple of 4, every chunk
//! starts at the same phase of the key. The few bytes after the last whole chunk take
//! the byte-at-a-time path. No `unsafe` and no alignment tricks: `chunks_exact_mut`
//! lets the compiler drop the bounds checks, and it vectorizes the loop further on
//! its own. A test checks that both functions agree for every offset and length.

/// XOR `buf` with the masking key, starting at `offset` bytes into the payload,
/// eight bytes at a time. Same result as [`apply_mask_bytewise`].
///
/// ```
/// use wirepatterns::ws::mask::apply_mask;
///
/// // RFC 6455 §5.7: "Hello" masked with key 37 fa 21 3d.
/// let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(&payload, b"Hello");
/// ```
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let [k0, k1, k2, k3] = key;
    let key_word = u64::from_ne_bytes([k0, k1, k2, k3, k0, k1, k2, k3]);

    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(word) ^ key_word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so at phase 0 of the rotated key.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// XOR `buf` with the masking key, starting at `offset` bytes into the payload, one
/// byte at a time: the reference that [`apply_mask`] is tested against.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64), so tests need no randomness.
    fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn word_at_a_time_agrees_with_bytewise_for_all_offsets_and_lengths() {
        let key = [0x12, 0x34, 0xab, 0xcd];
        let data = pseudo_random_bytes(64, 7);
        for offset in 0..8 {
            for len in 0..=64 {
                let mut fast = data[..len].to_vec();
                let mut slow = fast.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_bytewise(&mut slow, key, offset);
                assert_eq!(fast, slow, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn word_at_a_time_agrees_on_a_big_random_buffer_and_in_pieces() {
        let key = [0x9e, 0x37, 0x79, 0xb9];
        let data = pseudo_random_bytes(100_003, 42);
        let mut slow = data.clone();
        apply_mask_bytewise(&mut slow, key, 0);

        let mut fast = data.clone();
        apply_mask(&mut fast, key, 0);
        assert_eq!(fast, slow);

        // The same payload unmasked as it would arrive: in uneven pieces, each at its
        // offset into the payload.
        let mut pieces = data;
        let mut start = 0;
        for step in [1, 3, 8, 13, 1000, 4097].iter().cycle() {
            let end = (start + step).min(pieces.len());
            apply_mask(&mut pieces[start..end], key, start);
            start = end;
            if start == pieces.len() {
                break;
            }
        }
        assert_eq!(pieces, slow);
    }

    #[test]
    fn masking_twice_is_the_identity() {
        let data = pseudo_random_bytes(77, 3);
        let mut buf = data.clone();
        apply_mask(&mut buf, [1, 2, 3, 4], 5);
        apply_mask(&mut buf, [1, 2, 3, 4], 5);
        assert_eq!(buf, data);
    }
}
