//! Seeded fake tokens for tests and benches: format-valid, checksum right,
//! belonging to no account (`examples/fake_tokens.rs` is the user-facing
//! generator of the same kind).

#![allow(dead_code)]

use leakhound::rules::validate::base62_crc32;

/// Seeded xorshift generator: the same fakes on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

pub const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A format-valid fake GitHub token (checksum right, random part seeded).
pub fn fake_github(rng: &mut Rng) -> String {
    let random = rng.pick(ALNUM, 30);
    format!("ghp_{random}{}", base62_crc32(random.as_bytes())) // leakhound:allow (generated fake)
}
