//! What changed between two versions of a file, as a span of the new one:
//! where a scan that only looks for what a change added must look
//! (`Scanner::scan_changed`).

use std::ops::Range;

/// The span of `new` that differs from `old`: from the start of the first
/// line that differs to the end of the last, empty where lines were only
/// removed (what was joined there is new too). Before and after it, `new`
/// is `old`'s beginning and end.
///
/// One span rather than the hunks of a line diff: on the history of
/// git/git a histogram diff (`imara-diff`) of every changed file cost more
/// than the keyword pass it saved, as the far-reaching rules' keywords are
/// searched 16 KiB around a change anyway (see `RuleSet::near`).
pub fn changed_span(old: &[u8], new: &[u8]) -> Range<usize> {
    let mut start = prefix_len(old, new);
    start = memchr::memrchr(b'\n', &new[..start]).map_or(0, |i| i + 1);
    let tail = suffix_len(&old[start..], &new[start..]);
    let mut end = new.len() - tail;
    if end > start && new[end - 1] != b'\n' {
        // On to the end of the changed line.
        end = memchr::memchr(b'\n', &new[end..]).map_or(new.len(), |i| end + i + 1);
    }
    start..end
}

/// Blocks compared at a time (a `memcmp`) before the first that differs is
/// looked at byte by byte.
const COMPARE_BLOCK: usize = 256;

fn prefix_len(a: &[u8], b: &[u8]) -> usize {
    let (mut ca, mut cb) = (a.chunks_exact(COMPARE_BLOCK), b.chunks_exact(COMPARE_BLOCK));
    let mut same = 0;
    while let (Some(x), Some(y)) = (ca.next(), cb.next())
        && x == y
    {
        same += COMPARE_BLOCK;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

fn suffix_len(a: &[u8], b: &[u8]) -> usize {
    let (mut ca, mut cb) = (
        a.rchunks_exact(COMPARE_BLOCK),
        b.rchunks_exact(COMPARE_BLOCK),
    );
    let mut same = 0;
    while let (Some(x), Some(y)) = (ca.next(), cb.next())
        && x == y
    {
        same += COMPARE_BLOCK;
    }
    same + a[..a.len() - same]
        .iter()
        .rev()
        .zip(b[..b.len() - same].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}
