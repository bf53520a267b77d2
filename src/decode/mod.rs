//! Decoders look inside bytes and hand back a derived view whose positions
//! map back to the original, so findings point at the original line.

pub mod escapes;

/// A decoded view of some bytes, with the way back to original offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Name of the decoding step, as reported in a finding's `decoded`.
    pub step: &'static str,
    pub data: Vec<u8>,
    /// `map[i]` is the original offset where decoded byte `i` starts;
    /// `map[data.len()]` is the original end.
    map: Vec<usize>,
}

impl Decoded {
    pub fn new(step: &'static str, data: Vec<u8>, map: Vec<usize>) -> Self {
        debug_assert_eq!(map.len(), data.len() + 1);
        Decoded { step, data, map }
    }

    /// The original byte span covering decoded bytes `start..end`.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.map[start], self.map[end])
    }
}
