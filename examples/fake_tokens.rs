//! Prints fake, format-valid tokens for rule examples and test fixtures: the
//! checksums and structures the validators check are right, the random parts
//! come from a seeded generator and belong to no account.
//!
//!     cargo run --example fake_tokens -- KIND [COUNT] [SEED]
//!
//! KIND: ghp_ gho_ ghu_ ghs_ ghr_ (GitHub), npm, grafana, glpat-routable,
//! glrt-routable (GitLab), pypi, testpypi,
//! jwt, pem-ec (an EC PRIVATE KEY block), pem-ec-base64 (its base64, as in a
//! kubeconfig's client-key-data).

use leakhound::rules::validate::{base62_crc32, base64_encode, gitlab_crc, grafana_checksum};

/// xorshift64*: reproducible for a given seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn macaroon(rng: &mut Rng, location: &[u8]) -> Vec<u8> {
    let id = rng.pick(b"0123456789abcdef", 32);
    let mut m = vec![2, 1, location.len() as u8];
    m.extend_from_slice(location);
    m.extend([2, id.len() as u8]);
    m.extend(id.as_bytes());
    m.push(0);
    let caveat = br#"{"version": 1, "permissions": "user"}"#;
    m.extend([2, caveat.len() as u8]);
    m.extend(caveat);
    m.extend([0, 0, 6, 32]);
    m.extend(rng.bytes(32));
    m
}

fn pem_ec(rng: &mut Rng) -> String {
    // SEC 1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING d, [0] prime256v1 }.
    let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend(rng.bytes(32));
    der.extend([
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    let body = base64_encode(&der, false);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn to_base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn one(kind: &str, rng: &mut Rng) -> Option<String> {
    Some(match kind {
        "ghp_" | "gho_" | "ghu_" | "ghs_" | "ghr_" => {
            let random = rng.pick(ALNUM, 30);
            format!("{kind}{random}{}", base62_crc32(random.as_bytes()))
        }
        "npm" => {
            let random = rng.pick(ALNUM, 30);
            format!("npm_{random}{}", base62_crc32(random.as_bytes()))
        }
        "grafana" => {
            let key = format!("glsa_{}", rng.pick(ALNUM, 32));
            let sum = grafana_checksum(key.as_bytes());
            format!("{key}_{sum}")
        }
        "glpat-routable" | "glrt-routable" => {
            // GitLab's routable format: random bytes, a routing payload and
            // its length, base64url; version; base64 length; base36 CRC32.
            let payload = format!("o:{}\nu:{}", rng.next() % 5000, rng.next() % 90000);
            let mut raw = rng.bytes(16);
            raw.extend(payload.as_bytes());
            raw.push(payload.len() as u8);
            let b64 = base64_encode(&raw, true);
            let len = format!("{:0>2}", to_base36(b64.len() as u64));
            let prefix = kind.trim_end_matches("-routable");
            let encoded = format!("{prefix}-{b64}.01.{len}");
            let crc = gitlab_crc(encoded.as_bytes());
            format!("{encoded}{crc}")
        }
        "pypi" => format!("pypi-{}", base64_encode(&macaroon(rng, b"pypi.org"), true)),
        "testpypi" => format!(
            "pypi-{}",
            base64_encode(&macaroon(rng, b"test.pypi.org"), true)
        ),
        "jwt" => {
            let header = base64_encode(br#"{"alg":"HS256","typ":"JWT"}"#, true);
            let claims = format!(
                r#"{{"sub":"{}","iss":"https://auth.acme-corp.io/","iat":1795600386}}"#,
                rng.pick(b"0123456789abcdef", 16)
            );
            let payload = base64_encode(claims.as_bytes(), true);
            let sig = base64_encode(&rng.bytes(32), true);
            format!("{header}.{payload}.{sig}")
        }
        "pem-ec" => pem_ec(rng),
        "pem-ec-base64" => base64_encode(pem_ec(rng).as_bytes(), false),
        _ => return None,
    })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(kind) = args.first() else {
        eprintln!("usage: fake_tokens KIND [COUNT] [SEED]");
        return std::process::ExitCode::from(2);
    };
    let count: usize = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(1);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut rng = Rng(seed | 1);
    for _ in 0..count {
        match one(kind, &mut rng) {
            Some(t) => println!("{t}"),
            None => {
                eprintln!("unknown kind {kind:?}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
