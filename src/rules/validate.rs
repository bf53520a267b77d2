//! Checksum and structure validators: small pure functions that tell whether
//! a matched secret has the internal shape its provider gives every real
//! token. A rule names one with `validator = "NAME"`; the engine runs it
//! after the regex matched and the placeholder and entropy filters passed.
//!
//! Each validator answers `Valid`, `Invalid` (the format's checksum or
//! structure is certain and this value breaks it: the match is dropped) or
//! `Doubtful` (the value breaks a property real tokens almost always have, but
//! the provider does not promise it: the finding is kept at low confidence).
//! Which formats are certain is documented in `docs/rules.md`.

use serde::{Deserialize, Serialize};

/// A validator a rule can name in `validator = "…"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validator {
    /// GitHub `gh?_` tokens: 30 base62 characters then the base62 CRC32 of
    /// them in 6 characters (github.blog, 2021-04-05).
    GithubCrc32,
    /// npm `npm_` tokens: the same scheme as GitHub's (github.blog, 2021-09-23).
    NpmCrc32,
    /// Grafana `glsa_` tokens: `_` + hex of the little-endian CRC32 of
    /// `glsa_<32 characters>` (grafana/pkg/components/satokengen).
    GrafanaCrc32,
    /// GitLab routable tokens (`glpat-….01.…`): the last 7 characters are the
    /// base36 CRC32 of everything before them (GitLab's
    /// `Authn::TokenField::Generator::RoutableToken`). Tokens of the older
    /// format, without the `.01.` part, carry no checksum.
    GitlabRoutable,
    /// Slack `xox?-` tokens: numeric team/user ids and a random tail.
    Slack,
    /// PyPI `pypi-` tokens: base64url of a v2 macaroon located at pypi.org
    /// (or test.pypi.org) ending in a 32-byte signature.
    PypiMacaroon,
    /// JWTs: the header base64url-decodes to a JSON object with `alg`, the
    /// payload to JSON.
    Jwt,
    /// Standard base64 of a JWT (Kubernetes Secret `data.token`).
    Base64Jwt,
    /// PEM private keys: the body is base64 of a DER SEQUENCE (or, with
    /// legacy `Proc-Type: 4,ENCRYPTED` headers, of whole cipher blocks).
    PemDer,
    /// Standard base64 of a PEM private key (kubeconfig `client-key-data`).
    Base64Pem,
    /// OpenSSH private keys: the body decodes to `openssh-key-v1\0…`.
    OpensshKey,
    /// Tokens whose body is base64 of a JSON object (Grafana Cloud `glc_`,
    /// 1Password `ops_`, Sentry `sntrys_`, Cloudflare Tunnel, Grafana legacy
    /// keys, `.dockerconfigjson`): the base64 run from the first `eyJ` (the
    /// encoding of `{"`) decodes to a JSON object.
    Base64Json,
    /// OpenPGP armoured private keys: the body decodes, and the armour's
    /// `=XXXX` CRC24 line (RFC 4880 §6.1) matches it when present.
    PgpArmor,
}

/// What a validator says about a matched secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Certainly not a real token of this format: drop the match.
    Invalid,
    /// Unlikely to be real: keep it at low confidence.
    Doubtful,
}

impl Validator {
    pub fn check(self, secret: &[u8]) -> Verdict {
        match self {
            Validator::GithubCrc32 => github_like(secret, 4),
            Validator::NpmCrc32 => github_like(secret, 4),
            Validator::GrafanaCrc32 => grafana(secret),
            Validator::GitlabRoutable => gitlab_routable(secret),
            Validator::Slack => slack(secret),
            Validator::PypiMacaroon => pypi(secret),
            Validator::Jwt => verdict(is_jwt(secret)),
            Validator::Base64Jwt => match base64_decode(secret) {
                Some(jwt) => verdict(is_jwt(jwt.trim_ascii())),
                None => Verdict::Invalid,
            },
            Validator::PemDer => pem_der(secret),
            Validator::Base64Pem => match base64_decode(secret) {
                Some(pem) => pem_der(pem.trim_ascii()),
                None => Verdict::Invalid,
            },
            Validator::OpensshKey => match pem_body(secret) {
                Some(body) if body.data.starts_with(b"openssh-key-v1\0") => Verdict::Valid,
                _ => Verdict::Invalid,
            },
            Validator::PgpArmor => pgp_armor(secret),
            Validator::Base64Json => verdict(has_base64_json(secret)),
        }
    }
}

fn verdict(ok: bool) -> Verdict {
    if ok { Verdict::Valid } else { Verdict::Invalid }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 6-character base62 CRC32 that GitHub and npm append to a token's
/// random part (most significant digit first, padded with `0`).
pub fn base62_crc32(random: &[u8]) -> String {
    let mut n = crc32fast::hash(random) as u64;
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// `prefix` + random + 6-character base62 CRC32 of the random part. The
/// 40-character form is the documented one, so a mismatch there is certain;
/// longer tokens (GitHub reserves up to 255 characters) are only doubtful.
fn github_like(secret: &[u8], prefix: usize) -> Verdict {
    if secret.len() < prefix + 7 {
        return Verdict::Invalid;
    }
    let (random, check) = secret[prefix..].split_at(secret.len() - prefix - 6);
    if base62_crc32(random).as_bytes() == check {
        Verdict::Valid
    } else if secret.len() == 40 {
        Verdict::Invalid
    } else {
        Verdict::Doubtful
    }
}

/// Grafana's checksum: hex of the CRC32 of `glsa_<secret>` in little-endian
/// byte order.
pub fn grafana_checksum(key: &[u8]) -> String {
    crc32fast::hash(key)
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn grafana(secret: &[u8]) -> Verdict {
    let Some(cut) = secret.iter().rposition(|&b| b == b'_') else {
        return Verdict::Invalid;
    };
    let sum = secret[cut + 1..].to_ascii_lowercase();
    verdict(grafana_checksum(&secret[..cut]).as_bytes() == sum.as_slice())
}

/// The 7-character base36 CRC32 GitLab appends to a routable token.
pub fn gitlab_crc(encoded: &[u8]) -> String {
    const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(encoded);
    let mut out = [b'0'; 7];
    for slot in out.iter_mut().rev() {
        *slot = BASE36[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| b as char).collect()
}

/// `prefix + base64url(payload) + "." + version(2) + "." + length(2) + crc(7)`.
fn gitlab_routable(secret: &[u8]) -> Verdict {
    let Some(dot) = secret.iter().rposition(|&b| b == b'.') else {
        return Verdict::Valid;
    };
    if secret.len() - dot - 1 != 9 {
        return Verdict::Invalid;
    }
    let (encoded, crc) = secret.split_at(secret.len() - 7);
    verdict(gitlab_crc(encoded).as_bytes() == crc)
}

/// Slack tokens have no checksum; their ids are decimal without a leading
/// zero and the random tail mixes letters and digits. Breaking that is
/// doubtful (a hand-written sample), not certain.
fn slack(secret: &[u8]) -> Verdict {
    let mut parts = secret.split(|&b| b == b'-').skip(1).peekable();
    let mut tail: &[u8] = b"";
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            tail = p;
        } else if p.iter().all(u8::is_ascii_digit) && p.len() > 1 && p[0] == b'0' {
            return Verdict::Doubtful;
        }
    }
    let digits = tail.iter().any(u8::is_ascii_digit);
    let letters = tail.iter().any(u8::is_ascii_alphabetic);
    if digits && letters {
        Verdict::Valid
    } else {
        Verdict::Doubtful
    }
}

/// Reads a macaroon v2 field: `(type, data)`, type 0 (end of section) has no data.
fn macaroon_field<'a>(data: &'a [u8], at: &mut usize) -> Option<(u64, &'a [u8])> {
    let kind = varint(data, at)?;
    if kind == 0 {
        return Some((0, &[]));
    }
    let len = usize::try_from(varint(data, at)?).ok()?;
    let end = at.checked_add(len)?;
    let field = data.get(*at..end)?;
    *at = end;
    Some((kind, field))
}

fn varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// PyPI tokens are `pypi-` + base64url(macaroon v2): version 2, a location
/// field `pypi.org` (or `test.pypi.org`), an identifier, caveat sections, an
/// empty section, then a 32-byte signature and nothing more.
fn pypi(secret: &[u8]) -> Verdict {
    let Some(body) = secret.strip_prefix(b"pypi-") else {
        return Verdict::Invalid;
    };
    let Some(m) = base64_decode(body) else {
        return Verdict::Invalid;
    };
    verdict(is_pypi_macaroon(&m))
}

fn is_pypi_macaroon(m: &[u8]) -> bool {
    if m.first() != Some(&2) {
        return false;
    }
    let mut at = 1;
    match macaroon_field(m, &mut at) {
        Some((1, b"pypi.org" | b"test.pypi.org")) => {}
        _ => return false,
    }
    // The rest of the header section, then caveat sections; an empty section
    // ends them (macaroon v2 binary format).
    let mut section_len = 1;
    loop {
        match macaroon_field(m, &mut at) {
            Some((0, _)) if section_len == 0 => break,
            Some((0, _)) => section_len = 0,
            Some((1..=4, _)) => section_len += 1,
            _ => return false,
        }
    }
    matches!(macaroon_field(m, &mut at), Some((6, sig)) if sig.len() == 32) && at == m.len()
}

/// `header.payload.signature`, header a JSON object with a string `alg`,
/// payload JSON.
fn is_jwt(secret: &[u8]) -> bool {
    let mut parts = secret.split(|&b| b == b'.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        return false;
    };
    let json = |part: &[u8]| {
        base64_decode(part).and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
    };
    let header_ok = json(h).is_some_and(|v| v.get("alg").is_some_and(|a| a.is_string()));
    header_ok && json(p).is_some_and(|v| v.is_object())
}

/// The run from the first `eyJ` to the end, or to the last `_` (Sentry puts
/// a signature after it), decodes to a JSON object.
fn has_base64_json(secret: &[u8]) -> bool {
    let Some(at) = memchr::memmem::find(secret, b"eyJ") else {
        return false;
    };
    let body = &secret[at..];
    let is_object = |b: &[u8]| {
        base64_decode(b)
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
            .is_some_and(|v| v.is_object())
    };
    is_object(body)
        || body
            .iter()
            .rposition(|&b| b == b'_')
            .is_some_and(|cut| is_object(&body[..cut]))
}

/// A PEM block's decoded body and whether its headers declared legacy
/// encryption.
struct PemBody {
    data: Vec<u8>,
    encrypted: bool,
    /// The armour checksum line (`=XXXX`), decoded, when there is one.
    crc24: Option<Vec<u8>>,
}

/// Decodes the body between the BEGIN and END lines. Lines are separated by
/// newlines or by JSON/YAML-escaped `\n`; `Name: value` header lines are
/// skipped. `None` when there is no body or it is not base64.
fn pem_body(block: &[u8]) -> Option<PemBody> {
    let begin = memchr::memmem::find(block, b"-----BEGIN ")?;
    let after = begin + 11 + memchr::memmem::find(&block[begin + 11..], b"-----")? + 5;
    let end = after + memchr::memmem::find(&block[after..], b"-----END ")?;
    let body = &block[after..end];
    // Split into lines at newlines and escaped `\n`/`\r`.
    let mut raw_lines: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && matches!(body.get(i + 1), Some(b'n' | b'r')) {
            raw_lines.push(Vec::new());
            i += 2;
            continue;
        }
        if b == b'\n' || b == b'\r' {
            raw_lines.push(Vec::new());
        } else if let Some(l) = raw_lines.last_mut() {
            l.push(b);
        }
        i += 1;
    }
    // Drop whitespace, and a `//` comment marker before the base64 (a key
    // commented out in C, Go, Rust or JavaScript source).
    let lines: Vec<Vec<u8>> = raw_lines
        .iter()
        .map(|l| {
            let mut words = l
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .peekable();
            if words
                .peek()
                .is_some_and(|w| w.len() >= 2 && w.iter().all(|&b| b == b'/'))
            {
                words.next();
            }
            words.flatten().copied().collect()
        })
        .collect();
    let mut b64 = Vec::new();
    let mut encrypted = false;
    let mut crc24 = None;
    for line in lines.iter().filter(|l| !l.is_empty()) {
        if memchr::memchr(b':', line).is_some() {
            encrypted |= line.starts_with(b"Proc-Type:") && line.ends_with(b"ENCRYPTED");
            continue;
        }
        if line.len() == 5 && line[0] == b'=' {
            crc24 = Some(base64_decode(&line[1..])?);
            continue;
        }
        b64.extend_from_slice(line);
    }
    if b64.is_empty() {
        return None;
    }
    Some(PemBody {
        data: base64_decode(&b64)?,
        encrypted,
        crc24,
    })
}

fn pem_der(secret: &[u8]) -> Verdict {
    match pem_body(secret) {
        // Legacy encrypted PEM: the body is cipher text in whole blocks.
        Some(b) if b.encrypted => verdict(!b.data.is_empty() && b.data.len() % 8 == 0),
        Some(b) => verdict(is_der_sequence(&b.data)),
        None => Verdict::Invalid,
    }
}

/// True if `der` is exactly one DER SEQUENCE (tag 0x30, definite length).
pub fn is_der_sequence(der: &[u8]) -> bool {
    if der.len() < 2 || der[0] != 0x30 {
        return false;
    }
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81..=0x84 => {
            let k = (der[1] & 0x7f) as usize;
            let Some(bytes) = der.get(2..2 + k) else {
                return false;
            };
            (
                bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize),
                2 + k,
            )
        }
        _ => return false,
    };
    header + len == der.len()
}

/// CRC24 of OpenPGP ASCII armour (RFC 4880 §6.1).
pub fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xB7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= 0x186_4CFB;
            }
        }
    }
    crc & 0xFF_FFFF
}

fn pgp_armor(secret: &[u8]) -> Verdict {
    match pem_body(secret) {
        Some(PemBody {
            data,
            crc24: Some(sum),
            ..
        }) => {
            let want = crc24(&data).to_be_bytes();
            verdict(sum.as_slice() == &want[1..])
        }
        Some(_) => Verdict::Valid,
        None => Verdict::Invalid,
    }
}

/// Decodes standard or URL-safe base64, padded or not. `None` on any other
/// byte or an impossible length.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = match text.iter().position(|&b| b == b'=') {
        Some(p) if text[p..].iter().all(|&b| b == b'=') && text.len() - p <= 2 => &text[..p],
        Some(_) => return None,
        None => text,
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in text {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Standard base64 with padding (for building fixtures and examples).
pub fn base64_encode(data: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url_safe {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
