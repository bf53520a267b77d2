//! Finding runs of base64, base64url and hex characters fast: the generic
//! decoders' trigger, run over every byte of every file, so it is written
//! for speed (a 64-byte bit mask per step, SSE2 on x86_64) and kept apart
//! from the decoding itself (`encodings.rs`).

use super::encodings::MIN_BASE64;

// Byte classes of the run scanner, one lookup per byte: a run is a
// maximal sequence of bytes with a non-zero class.
pub(super) const LOWER: u8 = 1;
pub(super) const UPPER: u8 = 2;
pub(super) const DIGIT: u8 = 4;
pub(super) const STD_SYM: u8 = 8;
pub(super) const URL_SYM: u8 = 16;
pub(super) const NON_HEX: u8 = 32;

pub(super) static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let hex = if c.is_ascii_hexdigit() { 0 } else { NON_HEX };
        t[b] = if c.is_ascii_lowercase() {
            LOWER | hex
        } else if c.is_ascii_uppercase() {
            UPPER | hex
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'+' || c == b'/' {
            STD_SYM | NON_HEX
        } else if c == b'-' || c == b'_' {
            URL_SYM | NON_HEX
        } else {
            0
        };
        b += 1;
    }
    t
};

/// True for bytes of the standard base64 alphabet (hex included): what
/// `block_mask` computes 64 bytes at a time.
///
/// `-` and `_` (base64url) are left out of the search itself: a run is
/// found by 16 standard characters in a row and then extended over them.
/// Otherwise every long snake_case identifier in source code would be a
/// run to look at (a third of the Linux kernel's drivers/ bytes are).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
#[inline(always)]
fn is_run_byte(b: u8) -> bool {
    let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    alpha | digit | (b == b'+') | (b == b'/')
}

#[inline(always)]
fn is_any_run_byte(b: u8) -> bool {
    CLASS[b as usize] != 0
}

/// `CLASS[b]` computed with compares, so folding it over a run vectorises.
#[inline(always)]
fn class_of(b: u8) -> u8 {
    let lower = b.wrapping_sub(b'a') < 26;
    let upper = b.wrapping_sub(b'A') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    let std_sym = (b == b'+') | (b == b'/');
    let url_sym = (b == b'-') | (b == b'_');
    let hex_letter = (b | 0x20).wrapping_sub(b'a') < 6;
    let non_hex = (lower | upper) & !hex_letter | std_sym | url_sym;
    [
        (lower, LOWER),
        (upper, UPPER),
        (digit, DIGIT),
        (std_sym, STD_SYM),
        (url_sym, URL_SYM),
        (non_hex, NON_HEX),
    ]
    .iter()
    .fold(0, |acc, &(set, bit)| acc | (set as u8 * bit))
}

/// Bit `k` set iff `data[off + k]` is a run byte (zero past the end).
#[inline]
fn run_mask(data: &[u8], off: usize) -> u64 {
    match data.get(off..off + 64) {
        Some(block) => block_mask(block),
        None => {
            let mut block = [0u8; 64];
            let rest = data.get(off..).unwrap_or_default();
            block[..rest.len()].copy_from_slice(rest);
            block_mask(&block)
        }
    }
}

/// The run-byte mask of 64 bytes with SSE2 (part of every x86_64 CPU):
/// four 16-byte compares and movemasks instead of 64 lookups.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_mask(block: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    // Unsigned `x - lo < len` as a signed compare: shift by 0x80.
    #[inline(always)]
    unsafe fn in_range(x: __m128i, lo: u8, len: u8) -> __m128i {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            let shifted = _mm_add_epi8(x, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
            _mm_cmplt_epi8(shifted, _mm_set1_epi8(0x80u8.wrapping_add(len) as i8))
        }
    }
    let mut m = 0u64;
    for (j, chunk) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86_64 baseline, and `chunk` is 16
        // readable bytes for the unaligned load.
        let bits = unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let alpha = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', 26);
            let digit = in_range(v, b'0', 10);
            let plus = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'+' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'/' as i8));
            let any = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_or_si128(plus, slash));
            _mm_movemask_epi8(any)
        };
        m |= (bits as u16 as u64) << (16 * j);
    }
    m
}

/// The run-byte mask of 64 bytes: one 0/1 byte per input byte, then eight
/// bytes at a time packed into eight bits by a multiply (the 0/1 bytes
/// land on distinct bits of the top byte, so nothing carries).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_mask(block: &[u8]) -> u64 {
    let mut flags = [0u8; 64];
    for (f, &b) in flags.iter_mut().zip(block) {
        *f = is_run_byte(b) as u8;
    }
    let mut m = 0u64;
    for (j, chunk) in flags.chunks_exact(8).enumerate() {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        let v = u64::from_le_bytes(eight);
        m |= (v.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
    }
    m
}

/// Maximal runs of base64/base64url/hex bytes at least `MIN_BASE64` long,
/// with the union of their byte classes: `(start, end, classes)`.
///
/// Works on 64-byte blocks: a bit mask of run bytes per block (branch-free),
/// then `m & m >> 1 & ...` leaves the bits where 16 run bytes in a row
/// start. Plain text has few such places, so it costs one pass of compares.
/// A base64url run needs 16 standard characters in a row to be found.
pub(super) fn long_runs(data: &[u8], mut each: impl FnMut(usize, usize, u8)) {
    let n = data.len();
    // Everything before `done` belongs to a run already reported (or is a
    // non-run byte).
    let mut done = 0;
    let mut off = 0;
    let mut cur = run_mask(data, 0);
    while off < n {
        let next = run_mask(data, off + 64);
        let w = (next as u128) << 64 | cur as u128;
        let mut s = w & (w >> 1);
        s &= s >> 2;
        s &= s >> 4;
        s &= s >> 8;
        let mut starts = s as u64;
        while starts != 0 {
            // Every byte of a long run starts 16 run bytes: skip those of
            // the run just reported.
            if done >= off + 64 {
                break;
            }
            if done > off {
                starts &= u64::MAX << (done - off);
                if starts == 0 {
                    break;
                }
            }
            let p = off + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            let mut start = p;
            while start > done && is_any_run_byte(data[start - 1]) {
                start -= 1;
            }
            // The run's end, 64 bytes at a time, then over `-` and `_`.
            let mut end = p + MIN_BASE64;
            loop {
                let more = (!run_mask(data, end)).trailing_zeros() as usize;
                end = (end + more).min(n);
                if more < 64 || end == n {
                    break;
                }
            }
            while end < n && is_any_run_byte(data[end]) {
                end += 1;
            }
            let classes = data[start..end].iter().fold(0, |acc, &b| acc | class_of(b));
            each(start, end, classes);
            done = end;
        }
        cur = next;
        off += 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_masks_agree_with_the_byte_test() {
        let block: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for off in (0..block.len() - 64).step_by(7) {
            let want = (0..64).fold(0u64, |m, k| m | (is_run_byte(block[off + k]) as u64) << k);
            assert_eq!(block_mask(&block[off..off + 64]), want, "at {off}");
        }
    }

    #[test]
    fn byte_classes_agree_with_the_table() {
        for b in 0..=255u8 {
            assert_eq!(class_of(b), CLASS[b as usize], "byte {b}");
            let std = CLASS[b as usize] != 0 && b != b'-' && b != b'_';
            assert_eq!(is_run_byte(b), std, "byte {b}");
        }
    }
}
