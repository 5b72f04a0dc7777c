//! [`ArgBuf`]: the encoded arguments of a command, inline while they are
//! small.

/// Bytes kept inline: a typical command (name, a key, a 64-byte value) fits,
/// while a `Cmd` stays 120 bytes (asserted in its tests), cheap to move through
/// a builder chain.
const INLINE: usize = 110;

/// A byte buffer that lives inside its owner up to [`INLINE`] bytes and
/// moves to the heap past that.
#[derive(Clone)]
pub(crate) enum ArgBuf {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Default for ArgBuf {
    fn default() -> Self {
        ArgBuf::Inline {
            len: 0,
            data: [0; INLINE],
        }
    }
}

impl ArgBuf {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            ArgBuf::Inline { len, data } => &data[..usize::from(*len)],
            ArgBuf::Heap(v) => v,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Appends the pieces one after the other.
    pub(crate) fn extend(&mut self, pieces: &[&[u8]]) {
        let added: usize = pieces.iter().map(|p| p.len()).sum();
        match self {
            ArgBuf::Inline { len, data } if usize::from(*len) + added <= INLINE => {
                let mut at = usize::from(*len);
                for piece in pieces {
                    data[at..at + piece.len()].copy_from_slice(piece);
                    at += piece.len();
                }
                // `at <= INLINE < 256`, checked by the guard above.
                *len = at as u8;
            }
            ArgBuf::Inline { len, data } => {
                let used = usize::from(*len);
                let mut heap = Vec::with_capacity((used + added).max(2 * INLINE));
                heap.extend_from_slice(&data[..used]);
                for piece in pieces {
                    heap.extend_from_slice(piece);
                }
                *self = ArgBuf::Heap(heap);
            }
            ArgBuf::Heap(heap) => {
                heap.reserve(added);
                for piece in pieces {
                    heap.extend_from_slice(piece);
                }
            }
        }
    }
}

impl PartialEq for ArgBuf {
    fn eq(&self, other: &ArgBuf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ArgBuf {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_the_heap_and_keeps_every_byte() {
        let mut buf = ArgBuf::default();
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let piece = [i; 7];
            buf.extend(&[&piece, b"\r\n"]);
            expected.extend_from_slice(&piece);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(buf.as_slice(), &expected[..]);
        }
        assert!(matches!(buf, ArgBuf::Heap(_)));
        assert_eq!(std::mem::size_of::<ArgBuf>(), 112);
    }
}
