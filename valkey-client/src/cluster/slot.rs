//! Hash slots: which of the cluster's 16,384 slots a key belongs to.
//!
//! The server hashes a key with CRC16/XMODEM (polynomial 0x1021, initial
//! value 0, no reflection) and takes the result modulo 16,384. When the key
//! holds a hash tag (the text between the first `{` and the first `}` after
//! it, if that text is not empty), only the tag is hashed, so that keys
//! sharing a tag land in one slot and can be used together by multi-key
//! commands.

use crc::{CRC_16_XMODEM, Crc};

/// The number of hash slots in a cluster.
pub const SLOTS: u16 = 16_384;

const XMODEM: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The part of `key` that is hashed: its hash tag when it has a non-empty
/// one, else the whole key.
///
/// ```
/// use valkey_client::cluster::hash_tag;
/// assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
/// assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}"); // an empty first tag: the whole key
/// ```
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

/// The hash slot of `key`, in `0..16384`.
///
/// ```
/// use valkey_client::cluster::key_slot;
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"{foo}bar"), key_slot(b"foo"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    XMODEM.checksum(hash_tag(key)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of the retry semantics, section 6.
    #[test]
    fn slots_of_the_reference_vectors() {
        let vectors: &[(&[u8], u16)] = &[
            (b"", 0),
            (b"foo", 12182),
            (b"{foo}bar", 12182),
            (b"{foo}", 12182),
            (b"a{foo}", 12182),
            (b"1337", 4314),
            (b"125", 14228),
            (b"123456789", 12739),
            (b"a", 15495),
            (b"b", 3300),
            (b"abc", 7638),
            (b"bar", 5061),
            (b"{}", 15257),
            (b"{}foo", 9500),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{bar", 4015),
            (b"bar}", 6624),
            (b"{user1000}.following", 3443),
            (&[0xe5, 0xa4, 0xa7, 0xe5, 0xa5, 0x96], 6709),
            (b"1337.1234", 10207),
            (b"x{1}", 9842),
            (b"key", 12539),
        ];
        for (key, slot) in vectors {
            assert_eq!(
                key_slot(key),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn the_check_value_of_crc16_xmodem() {
        assert_eq!(XMODEM.checksum(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{bar"), b"{bar");
        assert_eq!(hash_tag(b"}{"), b"}{");
        assert_eq!(hash_tag(b"{}"), b"{}");
    }
}
