//! Mapping byte offsets to 1-based line and column (columns count
//! characters: UTF-8 continuation bytes are not counted, so a column matches
//! what an editor shows).

/// Newline positions of one blob, built only when the blob has findings.
pub struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    pub fn new(data: &[u8]) -> Self {
        LineIndex {
            newlines: memchr::memchr_iter(b'\n', data).collect(),
        }
    }

    /// Start offset of the line holding `offset`, and its 1-based number.
    pub fn line_of(&self, offset: usize) -> (usize, usize) {
        let before = self.newlines.partition_point(|&n| n < offset);
        let start = if before == 0 {
            0
        } else {
            self.newlines[before - 1] + 1
        };
        (start, before + 1)
    }

    /// 1-based (line, column) of `offset`.
    pub fn position(&self, data: &[u8], offset: usize) -> (usize, usize) {
        let (start, line) = self.line_of(offset);
        (line, char_count(&data[start..offset]) + 1)
    }

    /// End offset (exclusive, without the newline) of the line starting at `start`.
    pub fn line_end(&self, data: &[u8], start: usize) -> usize {
        let i = self.newlines.partition_point(|&n| n < start);
        self.newlines.get(i).copied().unwrap_or(data.len())
    }
}

/// Number of characters in `bytes`, counting every byte that does not
/// continue a UTF-8 sequence (invalid bytes count as one character each).
pub fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let data = "ab\nçd=SECRET\n".as_bytes();
        let idx = LineIndex::new(data);
        assert_eq!(idx.position(data, 0), (1, 1));
        assert_eq!(idx.position(data, 3), (2, 1));
        let secret = data.windows(6).position(|w| w == b"SECRET").unwrap();
        assert_eq!(idx.position(data, secret), (2, 4));
        assert_eq!(idx.position(data, data.len()), (3, 1));
    }
}
