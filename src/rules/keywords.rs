//! Finding every keyword occurrence in a blob, in any ASCII case, overlapping
//! ones included (`sk-` and `sk-ant-` both count).
//!
//! An Aho-Corasick DFA does this with one table lookup per byte, but each
//! lookup waits for the one before, and the pack's 2,200 keywords make a
//! table far larger than the L1 cache: about 300 MB/s, a third of a Git
//! scan's time. The finder here looks first for one four-byte piece of each
//! keyword, its *gram*, and compares the whole keyword only where a gram is.
//!
//! - Each keyword's gram is its rarest four bytes, judged by how rare their
//!   byte pairs are in ordinary code and prose (`bigrams.rs`, made by
//!   `scripts/bigram-costs.py`). `openai_api_key` is looked for as `nai_`,
//!   not `api_`, so the filter rarely fires on text with no keyword.
//! - The filter is a table of 2^16 32-bit words: the word is chosen by the
//!   gram's first three bytes, and two bits within it by all four. A
//!   three-byte keyword fills its word, so every fourth byte passes. With
//!   AVX2 eight positions are tested at once (one gather); elsewhere, and
//!   for the last bytes of a range, one at a time.
//! - Where the filter fires, an open-addressing table gives the keywords
//!   with that exact gram and where in the keyword it lies; each is compared
//!   in place.
//!
//! Measured (release builds, this 2-core machine): on the source files of
//! git/git about 1.8% of positions pass the filter, 1.2% of them true grams
//! (such as `comm` of the generic keyword `comm`), and the search alone runs
//! about 1.8 times as fast as the DFA; a scan of git/git's whole history takes
//! 16% less time, a scan of Rust crate sources 25% less. Text dense with
//! keywords gains nothing: every true occurrence costs a table lookup and a
//! compare, more than a DFA's match state (the engine benchmark's corpus,
//! with a keyword every few words, scans a few percent slower).
//! Keywords shorter than three bytes have no gram; a set with one uses the
//! Aho-Corasick automaton instead.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};

mod bigrams;

/// Every occurrence of a set of keywords (stored lowercased).
#[derive(Debug)]
pub struct KeywordFinder {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Grams(Grams),
    Automaton(AhoCorasick),
}

impl KeywordFinder {
    /// A finder for `patterns` (non-empty, lowercase ASCII where they are
    /// letters). Pattern ids are indexes into `patterns`.
    pub fn new(patterns: &[String]) -> Result<KeywordFinder, aho_corasick::BuildError> {
        let inner = if patterns.iter().all(|p| p.len() >= 3) {
            Inner::Grams(Grams::new(patterns))
        } else {
            Inner::Automaton(automaton(patterns)?)
        };
        Ok(KeywordFinder { inner })
    }

    /// Calls `f(pattern, start, end)` for every occurrence lying wholly in
    /// `data[range]`, in no particular order.
    pub fn find(&self, data: &[u8], range: Range<usize>, mut f: impl FnMut(usize, usize, usize)) {
        let range = range.start..range.end.min(data.len());
        if range.start >= range.end {
            return;
        }
        match &self.inner {
            Inner::Grams(g) => g.find(data, range, &mut f),
            Inner::Automaton(ac) => {
                for m in ac.find_overlapping_iter(aho_corasick::Input::new(data).range(range)) {
                    f(m.pattern().as_usize(), m.start(), m.end());
                }
            }
        }
    }
}

/// The reference automaton: every overlapping occurrence in any ASCII case.
fn automaton(patterns: &[String]) -> Result<AhoCorasick, aho_corasick::BuildError> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(patterns)
}

/// log2 of the filter's word count: 256 KiB, mostly in L2. Smaller tables
/// let more non-keyword text through than they save in cache misses.
const WORD_BITS: u32 = 16;

#[derive(Debug)]
struct Grams {
    /// The filter (see the module docs).
    words: Box<[u32]>,
    /// Four-byte grams → their keywords, and three-byte keywords by their
    /// bytes: open addressing, `mask + 1` slots each.
    slots: Box<[Slot]>,
    slots3: Box<[Slot]>,
    mask: usize,
    entries: Box<[Entry]>,
    patterns: Box<[Box<[u8]>]>,
}

/// The keywords of one gram: `entries[start..end]` (`end == 0`: empty slot).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    gram: u32,
    start: u32,
    end: u32,
}

/// A keyword, where its gram starts in it, and its first (up to) eight
/// bytes: most places where a gram occurs without its keyword (`sswo` in
/// `password` for `.password`) are turned away by one masked compare.
#[derive(Clone, Copy, Debug)]
struct Entry {
    pattern: u32,
    offset: u32,
    head: u64,
    head_mask: u64,
}

impl Entry {
    fn new(pattern: usize, offset: usize, keyword: &[u8]) -> Entry {
        let mut head = [0u8; 8];
        let n = keyword.len().min(8);
        head[..n].copy_from_slice(&keyword[..n]);
        Entry {
            pattern: pattern as u32,
            offset: offset as u32,
            head: u64::from_le_bytes(head),
            head_mask: u64::MAX >> (8 * (8 - n)),
        }
    }
}

/// The word of a gram (or of a three-byte keyword): its low three bytes.
#[inline(always)]
fn word_index(gram: u32) -> usize {
    ((gram & 0x00FF_FFFF).wrapping_mul(0x9E37_79B1) >> (32 - WORD_BITS)) as usize
}

/// The two bits of a four-byte gram within its word.
#[inline(always)]
fn word_bits(gram: u32) -> u32 {
    let h = gram.wrapping_mul(0x85EB_CA6B);
    (1 << (h >> 27)) | (1 << ((h >> 22) & 31))
}

#[inline(always)]
fn slot_index(gram: u32, mask: usize) -> usize {
    (gram.wrapping_mul(0x2545_F491) >> 16) as usize & mask
}

/// ASCII-lowercases four bytes at once (bytes above 0x7F unchanged).
#[inline(always)]
fn lower4(x: u32) -> u32 {
    let low7 = x & 0x7F7F_7F7F;
    let from_a = low7.wrapping_add(0x3F3F_3F3F); // high bit: byte >= b'A'
    let past_z = low7.wrapping_add(0x2525_2525); // high bit: byte > b'Z'
    let upper = !x & (from_a ^ past_z) & 0x8080_8080;
    x | (upper >> 2)
}

/// ASCII-lowercases eight bytes at once, as `lower4`.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    let low7 = x & 0x7F7F_7F7F_7F7F_7F7F;
    let from_a = low7.wrapping_add(0x3F3F_3F3F_3F3F_3F3F);
    let past_z = low7.wrapping_add(0x2525_2525_2525_2525);
    let upper = !x & (from_a ^ past_z) & 0x8080_8080_8080_8080;
    x | (upper >> 2)
}

/// The (lowercased) gram at `data[i..]`: four bytes, or three and a zero
/// when only three are left before `end`.
#[inline(always)]
fn gram_at(data: &[u8], i: usize, end: usize) -> u32 {
    let bytes = match data.get(i..i + 4) {
        Some(b) if i + 4 <= end => [b[0], b[1], b[2], b[3]],
        _ => [data[i], data[i + 1], data[i + 2], 0],
    };
    lower4(u32::from_le_bytes(bytes))
}

/// The offset of the rarest four bytes of `p` (`p.len() >= 4`).
fn rarest_gram(p: &[u8]) -> usize {
    let cost = |a: u8, b: u8| {
        let (a, b) = (bigrams::CLASS[a as usize], bigrams::CLASS[b as usize]);
        bigrams::COST[a as usize][b as usize] as u32
    };
    // Ties go to the first: `max_by_key` would take the last.
    (0..p.len() - 3)
        .map(|o| {
            (
                o,
                cost(p[o], p[o + 1]) + cost(p[o + 1], p[o + 2]) + cost(p[o + 2], p[o + 3]),
            )
        })
        .fold(
            (0, 0),
            |best, (o, c)| if c > best.1 { (o, c) } else { best },
        )
        .0
}

impl Grams {
    fn new(patterns: &[String]) -> Grams {
        let mut words = vec![0u32; 1 << WORD_BITS].into_boxed_slice();
        let mut four: Vec<(u32, Entry)> = Vec::new();
        let mut three: Vec<(u32, Entry)> = Vec::new();
        let patterns: Box<[Box<[u8]>]> = patterns
            .iter()
            .map(|p| p.as_bytes().to_ascii_lowercase().into_boxed_slice())
            .collect();
        for (id, p) in patterns.iter().enumerate() {
            if p.len() == 3 {
                let gram = u32::from_le_bytes([p[0], p[1], p[2], 0]);
                words[word_index(gram)] = u32::MAX;
                three.push((gram, Entry::new(id, 0, p)));
            } else {
                let o = rarest_gram(p);
                let gram = u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
                words[word_index(gram)] |= word_bits(gram);
                four.push((gram, Entry::new(id, o, p)));
            }
        }
        let size = ((four.len() + three.len()) * 2).next_power_of_two().max(16);
        let mask = size - 1;
        let mut entries = Vec::with_capacity(four.len() + three.len());
        let mut table = |mut list: Vec<(u32, Entry)>| {
            list.sort_by_key(|(gram, _)| *gram);
            let mut slots = vec![Slot::default(); size].into_boxed_slice();
            for group in list.chunk_by(|a, b| a.0 == b.0) {
                let start = entries.len() as u32;
                entries.extend(group.iter().map(|(_, e)| *e));
                let mut k = slot_index(group[0].0, mask);
                while slots[k].end != 0 {
                    k = (k + 1) & mask;
                }
                slots[k] = Slot {
                    gram: group[0].0,
                    start,
                    end: entries.len() as u32,
                };
            }
            slots
        };
        let slots = table(four);
        let slots3 = table(three);
        Grams {
            words,
            slots,
            slots3,
            mask,
            entries: entries.into_boxed_slice(),
            patterns,
        }
    }

    fn lookup(&self, slots: &[Slot], gram: u32) -> &[Entry] {
        let mut k = slot_index(gram, self.mask);
        loop {
            let s = slots[k];
            if s.end == 0 {
                return &[];
            }
            if s.gram == gram {
                return &self.entries[s.start as usize..s.end as usize];
            }
            k = (k + 1) & self.mask;
        }
    }

    fn find(&self, data: &[u8], range: Range<usize>, f: &mut impl FnMut(usize, usize, usize)) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            let done = unsafe { self.filter_avx2(data, range.clone(), f) };
            return self.filter(data, done..range.end, range, f);
        }
        self.filter(data, range.clone(), range, f)
    }

    /// The filter one position at a time, over `positions` (within `range`).
    fn filter(
        &self,
        data: &[u8],
        positions: Range<usize>,
        range: Range<usize>,
        f: &mut impl FnMut(usize, usize, usize),
    ) {
        for i in positions.start..range.end.saturating_sub(2) {
            let gram = gram_at(data, i, range.end);
            let bits = word_bits(gram);
            if self.words[word_index(gram)] & bits == bits {
                self.verify(data, i, gram, &range, f);
            }
        }
    }

    /// The filter eight positions at a time. Returns where it stopped (the
    /// last 34 bytes of `range` are left to `filter`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn filter_avx2(
        &self,
        data: &[u8],
        range: Range<usize>,
        f: &mut impl FnMut(usize, usize, usize),
    ) -> usize {
        use std::arch::x86_64::*;
        // `KeywordFinder::find` keeps the range within `data`.
        let end = range.end;
        debug_assert!(end <= data.len());
        let before_a = _mm256_set1_epi8(b'A' as i8 - 1);
        let after_z = _mm256_set1_epi8(b'Z' as i8 + 1);
        let case = _mm256_set1_epi8(0x20);
        let low3 = _mm256_set1_epi32(0x00FF_FFFF);
        let k_word = _mm256_set1_epi32(0x9E37_79B1u32 as i32);
        let k_bits = _mm256_set1_epi32(0x85EB_CA6Bu32 as i32);
        let low5 = _mm256_set1_epi32(31);
        let words = self.words.as_ptr().cast::<i32>();
        let mut i = range.start;
        while i + 35 <= end {
            // Lane `k` of the load at `i + o` holds the four bytes at
            // `i + o + 4k` (little-endian, as `gram_at`): four loads cover
            // 32 positions.
            for o in 0..4 {
                // SAFETY: `i + o + 32 <= i + 35 <= data.len()`.
                let v = unsafe { _mm256_loadu_si256(data.as_ptr().add(i + o).cast::<__m256i>()) };
                let upper = _mm256_and_si256(
                    _mm256_cmpgt_epi8(v, before_a),
                    _mm256_cmpgt_epi8(after_z, v),
                );
                let gram = _mm256_or_si256(v, _mm256_and_si256(upper, case));
                let index = _mm256_srli_epi32::<{ 32 - WORD_BITS as i32 }>(_mm256_mullo_epi32(
                    _mm256_and_si256(gram, low3),
                    k_word,
                ));
                // SAFETY: every index is below 2^WORD_BITS, the length of `words`.
                let word = unsafe { _mm256_i32gather_epi32::<4>(words, index) };
                let h = _mm256_mullo_epi32(gram, k_bits);
                let bit1 = _mm256_srli_epi32::<27>(h);
                let bit2 = _mm256_and_si256(_mm256_srli_epi32::<22>(h), low5);
                let both =
                    _mm256_and_si256(_mm256_srlv_epi32(word, bit1), _mm256_srlv_epi32(word, bit2));
                let mut lanes =
                    _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<31>(both))) as u32;
                while lanes != 0 {
                    let p = i + o + 4 * lanes.trailing_zeros() as usize;
                    lanes &= lanes - 1;
                    self.verify(data, p, gram_at(data, p, end), &range, f);
                }
            }
            i += 32;
        }
        i
    }

    /// Reports the keywords whose gram (or which, with three bytes) is at
    /// `data[i..]` and which lie wholly in `range`.
    #[inline(always)]
    fn verify(
        &self,
        data: &[u8],
        i: usize,
        gram: u32,
        range: &Range<usize>,
        f: &mut impl FnMut(usize, usize, usize),
    ) {
        if self.words[word_index(gram)] == u32::MAX {
            for e in self.lookup(&self.slots3, gram & 0x00FF_FFFF) {
                f(e.pattern as usize, i, i + 3);
            }
        }
        if i + 4 > range.end {
            return;
        }
        for e in self.lookup(&self.slots, gram) {
            let Some(start) = i.checked_sub(e.offset as usize) else {
                continue;
            };
            if start < range.start {
                continue;
            }
            if let Some(b) = data.get(start..start + 8) {
                let x = lower8(u64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]));
                if x & e.head_mask != e.head {
                    continue;
                }
            }
            let p = &self.patterns[e.pattern as usize];
            let end = start + p.len();
            if end <= range.end && data[start..end].eq_ignore_ascii_case(p) {
                f(e.pattern as usize, start, end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(
        patterns: &[String],
        data: &[u8],
        range: Range<usize>,
    ) -> Vec<(usize, usize, usize)> {
        let ac = automaton(patterns).unwrap();
        let mut v: Vec<_> = ac
            .find_overlapping_iter(aho_corasick::Input::new(data).range(range))
            .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
            .collect();
        v.sort_unstable();
        v
    }

    fn found(
        finder: &KeywordFinder,
        data: &[u8],
        range: Range<usize>,
    ) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        finder.find(data, range, |p, s, e| v.push((p, s, e)));
        v.sort_unstable();
        v
    }

    /// The one-at-a-time filter alone (the AVX2 path is what `find` runs here).
    fn found_scalar(
        patterns: &[String],
        data: &[u8],
        range: Range<usize>,
    ) -> Vec<(usize, usize, usize)> {
        let g = Grams::new(patterns);
        let mut v = Vec::new();
        g.filter(data, range.clone(), range, &mut |p, s, e| v.push((p, s, e)));
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_what_the_automaton_finds_in_the_pack_examples() {
        let patterns = crate::rules::embedded_keywords().unwrap();
        let finder = KeywordFinder::new(&patterns).unwrap();
        assert!(matches!(finder.inner, Inner::Grams(_)));
        let mut text: Vec<u8> = Vec::new();
        for (_, spec) in crate::rules::embedded_specs().unwrap() {
            for e in spec.examples {
                // Upper-cased too: the search ignores ASCII case.
                text.extend_from_slice(e.text.as_bytes());
                text.push(b'\n');
                text.extend_from_slice(e.text.to_ascii_uppercase().as_bytes());
                text.push(b' ');
            }
        }
        let all = reference(&patterns, &text, 0..text.len());
        assert!(all.len() > 1000, "the examples hold many keywords");
        assert_eq!(found(&finder, &text, 0..text.len()), all);
        assert_eq!(found_scalar(&patterns, &text, 0..text.len()), all);
        // Ranges cutting through keywords.
        for (a, b) in [(1, text.len() - 1), (7, 40), (1000, 1035), (333, 3333)] {
            assert_eq!(
                found(&finder, &text, a..b),
                reference(&patterns, &text, a..b)
            );
        }
    }

    #[test]
    fn keywords_at_every_offset_and_range_edge() {
        let patterns: Vec<String> = ["key", "sk-", "token", "openai_api_key"]
            .map(String::from)
            .to_vec();
        let finder = KeywordFinder::new(&patterns).unwrap();
        for kw in ["KEY", "sk-", "Token", "OPENAI_API_KEY"] {
            // Every offset in and around the 32-byte blocks of the AVX2 path
            // and its scalar tail; ranges starting and ending on the keyword.
            for at in 0..80 {
                let mut data = vec![b'.'; 100];
                data[at..at + kw.len()].copy_from_slice(kw.as_bytes());
                let all = reference(&patterns, &data, 0..data.len());
                assert_eq!(
                    all.len(),
                    1 + usize::from(kw == "OPENAI_API_KEY"),
                    "{kw} at {at}"
                );
                for range in [
                    0..data.len(),
                    at..at + kw.len(),
                    at..data.len(),
                    0..at + kw.len(),
                ] {
                    assert_eq!(
                        found(&finder, &data, range.clone()),
                        reference(&patterns, &data, range.clone())
                    );
                    assert_eq!(
                        found_scalar(&patterns, &data, range.clone()),
                        reference(&patterns, &data, range)
                    );
                }
                // One byte short on either side: not wholly in the range.
                assert_eq!(
                    found(&finder, &data, at + 1..data.len())
                        .iter()
                        .filter(|m| m.1 == at)
                        .count(),
                    0
                );
                assert_eq!(
                    found(&finder, &data, 0..at + kw.len() - 1)
                        .iter()
                        .filter(|m| m.1 == at)
                        .count(),
                    0
                );
            }
        }
    }

    #[test]
    fn short_keywords_use_the_automaton() {
        let patterns = vec!["ab".to_string(), "abcd".to_string()];
        let finder = KeywordFinder::new(&patterns).unwrap();
        assert!(matches!(finder.inner, Inner::Automaton(_)));
        assert_eq!(
            found(&finder, b"xABcd ab", 0..8),
            vec![(0, 1, 3), (0, 6, 8), (1, 1, 5)]
        );
    }

    #[test]
    fn lower4_and_lower8_lowercase_ascii_letters_only() {
        for b in 0..=255u8 {
            let l = b.to_ascii_lowercase();
            let x = u32::from_le_bytes([b, b'Q', b, b'@']);
            assert_eq!(
                lower4(x),
                u32::from_le_bytes([l, b'q', l, b'@']),
                "byte {b:#x}"
            );
            let x = u64::from_le_bytes([b'[', b, b'Z', b, b'A', 0x80, b, b'`']);
            let want = u64::from_le_bytes([b'[', l, b'z', l, b'a', 0x80, l, b'`']);
            assert_eq!(lower8(x), want, "byte {b:#x}");
        }
    }

    fn keyword() -> impl Strategy<Value = String> {
        // A small alphabet so keywords overlap and share grams.
        proptest::string::string_regex("[abAB_-]{3,9}").unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_same_occurrences_as_the_automaton(
            mut patterns in proptest::collection::vec(keyword(), 1..12),
            data in proptest::collection::vec(prop_oneof![
                Just(b'a'), Just(b'A'), Just(b'b'), Just(b'B'), Just(b'_'), Just(b'-'), Just(0xC1u8), Just(b'\n')
            ], 0..300),
            cut in (0usize..300, 0usize..300),
        ) {
            for p in &mut patterns { p.make_ascii_lowercase(); }
            patterns.sort();
            patterns.dedup();
            let finder = KeywordFinder::new(&patterns).unwrap();
            let range = cut.0.min(data.len())..cut.1.max(cut.0).min(data.len());
            prop_assert_eq!(found(&finder, &data, range.clone()), reference(&patterns, &data, range.clone()));
            prop_assert_eq!(found_scalar(&patterns, &data, range.clone()), reference(&patterns, &data, range));
        }
    }
}
