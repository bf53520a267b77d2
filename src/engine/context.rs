//! False-positive filters that look at where a match sits, not only at the
//! secret: the bytes before it on its line, the base64 run it is part of,
//! the length of its line. `filters.rs` judges the secret alone.
//!
//! Some filters apply to every rule (a value that is the argument of an
//! environment lookup, a match inside a data URI, a public key or a
//! certificate is never a leaked secret). The rest apply only to rules marked
//! `generic = true` (`password = …`, `api_key: …`), where the name and the
//! value's shape are all the evidence there is.

/// What the context says about a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    Keep,
    Drop,
    /// Keep at low confidence.
    Downgrade,
}

/// Lines longer than this are treated as minified or generated code: a
/// bundle holds thousands of identifiers and hashes on one line, so a generic
/// rule's match there is weak evidence.
pub const MINIFIED_LINE: usize = 1000;

/// How far back a filter looks on the secret's line.
const LOOK_BEHIND: usize = 80;

/// Judges the candidate `data[start..end]` of a rule; `generic` is the
/// rule's `generic` flag.
pub fn judge(data: &[u8], start: usize, end: usize, generic: bool) -> Judgement {
    let secret = &data[start..end];
    let line_start = memchr::memrchr(b'\n', &data[..start]).map_or(0, |i| i + 1);
    let before = &data[start.saturating_sub(LOOK_BEHIND).max(line_start)..start];
    if is_env_lookup_argument(before)
        || in_public_base64(data, start)
        || is_reserved_host_userinfo(&data[end..])
    {
        return Judgement::Drop;
    }
    if !generic {
        return Judgement::Keep;
    }
    let lower_before = before.to_ascii_lowercase();
    if names_a_digest(&lower_before, secret)
        || is_encoded_text(secret)
        || in_sealed_secret(data, start, end)
        || is_test_value(secret)
        || names_no_secret(before)
        || names_public_material(before)
        || is_identifier(secret)
    {
        return Judgement::Drop;
    }
    let line_end = memchr::memchr(b'\n', &data[end..]).map_or(data.len(), |i| end + i);
    // A UUID is an id far more often than a credential, unless the key
    // says it is the credential (`SNYK_TOKEN`, `api_key`: some providers do
    // issue UUID keys).
    let uuid_id = is_uuid(secret)
        && !last_key_word(before).is_some_and(|w| SECRET_WORDS.iter().any(|s| w == s.as_bytes()));
    if uuid_id || line_end - line_start > MINIFIED_LINE {
        return Judgement::Downgrade;
    }
    Judgement::Keep
}

/// Calls whose quoted argument is the *name* of a variable, not a value:
/// `os.getenv("API_TOKEN")`, `process.env["SECRET"]`, `ENV.fetch("KEY")`.
const ENV_LOOKUPS: &[&[u8]] = &[
    b"getenv(",
    b"environ[",
    b"environ.get(",
    b"env(",
    b"env[",
    b"env.fetch(",
    b"getproperty(",
    b"env::var(",
    b"env::var_os(",
    b"lookup('env',",
    b"lookup(\"env\",",
];

fn is_env_lookup_argument(before: &[u8]) -> bool {
    let mut b = before;
    while let [rest @ .., last] = b
        && matches!(last, b'"' | b'\'' | b'`' | b' ')
    {
        b = rest;
    }
    let tail = &b[b.len().saturating_sub(16)..];
    let tail = tail.to_ascii_lowercase();
    ENV_LOOKUPS.iter().any(|w| tail.ends_with(w))
}

/// True if the secret is a URL's password and the host after `@` is
/// reserved for documentation and tests (RFC 2606/6761: `example.com`,
/// `example.org`, `example.net`, `*.example`, `*.test`, `*.invalid`):
/// `http://user:s3cret@example.com` in a library's tests or docs.
fn is_reserved_host_userinfo(after: &[u8]) -> bool {
    let Some(rest) = after.strip_prefix(b"@") else {
        return false;
    };
    let len = rest
        .iter()
        .take(253)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        .count();
    let host = rest[..len].to_ascii_lowercase();
    let host = host.strip_suffix(b".").unwrap_or(&host);
    ["example.com", "example.org", "example.net"]
        .iter()
        .any(|d| host == d.as_bytes() || host.ends_with(format!(".{d}").as_bytes()))
        || [".example", ".test", ".invalid"]
            .iter()
            .any(|t| host.ends_with(t.as_bytes()))
        || host == b"example"
}

/// Words in a key that say its value is a digest, not a secret
/// (`"integrity": "sha512-…"`, `checksum = "…"`, `token_hash`, `narHash`).
const DIGEST_WORDS: &[&str] = &[
    "integrity",
    "checksum",
    "digest",
    "hash",
    "sha1",
    "sha256",
    "sha384",
    "sha512",
    "md5",
    "etag",
    "fingerprint",
    "commit",
    "revision",
];

/// Prefixes a digest value carries itself (SRI, OCI, go.sum).
const DIGEST_PREFIXES: &[&str] = &[
    "sha1-", "sha256-", "sha384-", "sha512-", "sha1:", "sha256:", "sha384:", "sha512:", "md5:",
    "h1:",
];

fn names_a_digest(lower_before: &[u8], secret: &[u8]) -> bool {
    let lower_secret = secret.to_ascii_lowercase();
    if DIGEST_PREFIXES
        .iter()
        .any(|p| lower_secret.starts_with(p.as_bytes()) || lower_before.ends_with(p.as_bytes()))
    {
        return true;
    }
    // Only the key: the text since the last value separator before it.
    let key_start = lower_before
        .iter()
        .rposition(|&b| matches!(b, b',' | b';' | b'{' | b'(' | b'&' | b'?'))
        .map_or(0, |i| i + 1);
    let key = &lower_before[key_start..];
    if DIGEST_WORDS
        .iter()
        .any(|w| memchr::memmem::find(key, w.as_bytes()).is_some())
    {
        return true;
    }
    // A bare 40-hex value next to a Git word is a commit id.
    secret.len() == 40
        && secret.iter().all(u8::is_ascii_hexdigit)
        && [&b"git"[..], b"rev", b"ref", b"sha"]
            .iter()
            .any(|w| memchr::memmem::find(key, w).is_some())
}

/// Key suffixes that name something next to a secret, not the secret:
/// `api_key_id`, `tokenUrl`, `password_file`, `secret_name`, `token_type`.
const NON_SECRET_SUFFIXES: &[&str] = &[
    "id", "ids", "name", "url", "uri", "file", "path", "type", "length", "ttl", "prefix", "header",
    "endpoint", "field", "label", "hint", "format", "version", "policy", "count", "uuid", "guid",
    "ref",
];

/// The key assigned before the value: the identifier before the
/// operator and quotes (`api_key_id` in `  api_key_id: "`, `VAPID_PUBLIC_KEY`
/// in `VAPID_PUBLIC_KEY=`, `SNYK_TOKEN` in Make's `SNYK_TOKEN ?= "`,
/// `key_name` in `strcpy(key_name, "`), not the modifiers before it
/// (`public static final String`).
fn assigned_key(before: &[u8]) -> &[u8] {
    let mut end = before.len();
    while end > 0
        && matches!(
            before[end - 1],
            b'"' | b'\''
                | b' '
                | b'\t'
                | b':'
                | b'='
                | b'>'
                | b']'
                | b'?'
                | b'+'
                | b','
                | b'('
                | b'|'
        )
    {
        end -= 1;
    }
    let mut start = end;
    while start > 0
        && (before[start - 1].is_ascii_alphanumeric()
            || matches!(before[start - 1], b'_' | b'-' | b'.'))
    {
        start -= 1;
    }
    &before[start..end]
}

/// The last word of the assigned key, lowercased: `id` for `api_key_id`,
/// `url` for `tokenUrl`, `token` for `GITHUB_TOKEN`. `None` for Vault's
/// `secret_id`, which is a credential whatever its suffix says.
fn last_key_word(before: &[u8]) -> Option<Vec<u8>> {
    let key = assigned_key(before);
    if key.eq_ignore_ascii_case(b"secret_id") || key.eq_ignore_ascii_case(b"secret-id") {
        return None;
    }
    // The last word: after a separator, or from a camelCase capital.
    let cut = key
        .iter()
        .enumerate()
        .rev()
        .find(|&(i, &b)| {
            matches!(b, b'_' | b'-' | b'.')
                || (b.is_ascii_uppercase() && i > 0 && key[i - 1].is_ascii_lowercase())
        })
        .map_or(0, |(i, &b)| if b.is_ascii_uppercase() { i } else { i + 1 });
    Some(key[cut..].to_ascii_lowercase())
}

/// True if the key's last word names something beside a secret
/// (`NON_SECRET_SUFFIXES`).
fn names_no_secret(before: &[u8]) -> bool {
    last_key_word(before).is_some_and(|w| NON_SECRET_SUFFIXES.iter().any(|s| w == s.as_bytes()))
}

/// Key words for values that are public by design: public keys, reCAPTCHA
/// and Turnstile site keys, Stripe/Paddle publishable keys.
const PUBLIC_WORDS: &[&str] = &[
    "public",
    "publishable",
    "site_key",
    "sitekey",
    "site-key",
    "pubkey",
];

/// True if the key assigned before the value says the value is public.
fn names_public_material(before: &[u8]) -> bool {
    let key = assigned_key(before).to_ascii_lowercase();
    PUBLIC_WORDS
        .iter()
        .any(|w| memchr::memmem::find(&key, w.as_bytes()).is_some())
}

/// Last key words that say the value is the credential itself.
const SECRET_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "pass",
    "apikey",
    "auth",
    "credential",
    "credentials",
];

/// `test-token`, `testing123`, `my_test_secret`, `sample…`, `fake…`, `mock…`.
/// A base64 value that decodes to text: the decoders scan what it decodes
/// to (with its key, in Kubernetes Secrets), so a generic rule reporting
/// the encoded form says the same thing again, less precisely.
fn is_encoded_text(secret: &[u8]) -> bool {
    secret.len() >= 16
        && secret
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
        && crate::decode::encodings::base64_decode(secret)
            .is_ok_and(|d| d.len() >= 8 && crate::decode::encodings::is_mostly_text(&d))
}

/// A SealedSecret holds ciphertext only the cluster's controller can open:
/// its `encryptedData` values look random but leak nothing.
/// Only the bytes within `SEALED_REACH` of the value are searched, so a
/// large file with many generic matches is not searched whole per match; a
/// SealedSecret manifest is a few KiB.
fn in_sealed_secret(data: &[u8], start: usize, end: usize) -> bool {
    const SEALED_REACH: usize = 64 * 1024;
    let near = &data[start.saturating_sub(SEALED_REACH)..(end + SEALED_REACH).min(data.len())];
    [
        &b"kind: SealedSecret"[..],
        b"\"kind\": \"SealedSecret\"",
        b"\"kind\":\"SealedSecret\"",
    ]
    .iter()
    .any(|k| memchr::memmem::find(near, k).is_some())
}

fn is_test_value(secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    if lower.starts_with(b"test") {
        return true;
    }
    [
        &b"_test"[..],
        b"-test",
        b"test_",
        b"test-",
        b"sample",
        b"fake",
        b"mock",
        b"lorem",
        b"foobar",
    ]
    .iter()
    .any(|w| memchr::memmem::find(&lower, w).is_some())
}

/// A snake/kebab-case name (`company_secret_storage_backend_v2`): three or
/// more lowercase parts, at least three of them words of three letters or
/// more. Or an UPPER_SNAKE constant (`SHA256_DIGEST_SIZE`,
/// `P2P_STATE_SCAN`): two or more uppercase parts, two of them words of
/// three letters or more. Generated tokens mix case or digits into every part.
fn is_identifier(secret: &[u8]) -> bool {
    let parts: Vec<&[u8]> = secret.split(|&b| b == b'_' || b == b'-').collect();
    let constant = parts.len() >= 2
        && secret.contains(&b'_')
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
        && parts
            .iter()
            .filter(|p| p.len() >= 3 && p.iter().all(u8::is_ascii_uppercase))
            .count()
            >= 2;
    constant
        || parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts
                .iter()
                .filter(|p| p.len() >= 3 && p.iter().all(u8::is_ascii_lowercase))
                .count()
                >= 3
}

/// `8-4-4-4-12` hex: an id far more often than a credential.
fn is_uuid(secret: &[u8]) -> bool {
    secret.len() == 36
        && secret.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// How far back to follow a base64 run (a data URI can be megabytes; the
/// cost is paid only for candidates).
const MAX_RUN: usize = 1 << 20;

/// Public-key formats whose base64 body follows the algorithm name.
const PUBLIC_KEY_PREFIXES: &[&[u8]] = &[
    b"ssh-rsa ",
    b"ssh-dss ",
    b"ssh-ed25519 ",
    b"ecdsa-sha2-nistp256 ",
    b"ecdsa-sha2-nistp384 ",
    b"ecdsa-sha2-nistp521 ",
    b"sk-ssh-ed25519@openssh.com ",
];

/// True if `start` lies inside base64 that is a data URI's payload, an SSH
/// public key, or the body of a PEM block.
fn in_public_base64(data: &[u8], start: usize) -> bool {
    let floor = start.saturating_sub(MAX_RUN);
    let mut run = start;
    while run > floor && is_base64(data[run - 1]) {
        run -= 1;
    }
    let before = &data[run.saturating_sub(32)..run];
    if before.ends_with(b";base64,") || PUBLIC_KEY_PREFIXES.iter().any(|p| before.ends_with(p)) {
        return true;
    }
    in_pem_body(data, start)
}

/// True if `start` lies inside the body of a PEM block: the last armour line
/// before it is a BEGIN, with no END in between. Inside a certificate or
/// public key nothing is secret; inside a private key the key itself is the
/// finding (its own rule reports it), and a token-shaped run of its base64
/// is noise.
fn in_pem_body(data: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(crate::rules::MAX_WINDOW);
    let Some(dash) = memchr::memmem::rfind(&data[from..start], b"-----BEGIN ") else {
        return false;
    };
    let begin = from + dash;
    memchr::memmem::find(&data[begin..start], b"-----END ").is_none()
}

#[cfg(test)]
mod tests;
