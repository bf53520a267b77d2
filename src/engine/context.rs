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
/// in `VAPID_PUBLIC_KEY=`), not the modifiers before it (`public static
/// final String`).
fn assigned_key(before: &[u8]) -> &[u8] {
    let mut end = before.len();
    while end > 0
        && matches!(
            before[end - 1],
            b'"' | b'\'' | b' ' | b'\t' | b':' | b'=' | b'>' | b']'
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
/// more. Generated tokens mix case or digits into every part.
fn is_identifier(secret: &[u8]) -> bool {
    let parts: Vec<&[u8]> = secret.split(|&b| b == b'_' || b == b'-').collect();
    parts.len() >= 3
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
mod tests {
    use super::*;

    /// Judges the first occurrence of `secret` in `line`.
    fn j(line: &str, secret: &str, generic: bool) -> Judgement {
        let start = line.find(secret).expect("secret in line");
        judge(line.as_bytes(), start, start + secret.len(), generic)
    }

    #[test]
    fn environment_lookups_name_a_variable_not_a_secret() {
        for (line, name) in [
            (
                r#"API_TOKEN = os.getenv("PROD_API_TOKEN_2024")"#,
                "PROD_API_TOKEN_2024",
            ),
            (
                r#"secret = os.environ["SESSION_SECRET_V2"]"#,
                "SESSION_SECRET_V2",
            ),
            (r#"token = os.environ.get('GH_TOKEN_9')"#, "GH_TOKEN_9"),
            (
                r#"const key = process.env["STRIPE_KEY_LIVE_1"];"#,
                "STRIPE_KEY_LIVE_1",
            ),
            (
                r#"String pw = System.getenv("DB_PASSWORD_2");"#,
                "DB_PASSWORD_2",
            ),
            (
                r#"config.api_token = ENV.fetch("API_TOKEN_3")"#,
                "API_TOKEN_3",
            ),
            (r#"let t = std::env::var("TOKEN_V4")?;"#, "TOKEN_V4"),
            (
                r#"api_token: "{{ lookup('env', 'API_TOKEN_5') }}""#,
                "API_TOKEN_5",
            ),
        ] {
            assert_eq!(j(line, name, false), Judgement::Drop, "{line}");
        }
        // A default value is a literal, and may be a real secret.
        let line = r#"token = os.getenv("GH_TOKEN", "Zq8vT2mLw9pKr4Xy7Bn3")"#;
        assert_eq!(j(line, "Zq8vT2mLw9pKr4Xy7Bn3", true), Judgement::Keep);
    }

    #[test]
    fn digests_in_lockfiles_and_manifests_are_not_secrets() {
        for (line, value) in [
            (
                r#"      "integrity": "sha512-Zq8vT2mLw9pKr4Xy7Bn3Ab9cD0eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ==","#,
                "Zq8vT2mLw9pKr4Xy7Bn3Ab9cD0eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ==",
            ),
            (
                r#"checksum = "9c05f34adcb19eb5ad3d0ff4c754c7e15f77641575b867616c19e34f77c8fe67""#,
                "9c05f34adcb19eb5ad3d0ff4c754c7e15f77641575b867616c19e34f77c8fe67",
            ),
            (
                "github.com/golang-jwt/jwt/v5 v5.2.1 h1:OuVbFODueb089Lh128TAcimifWaLhJwVflnrgM17wHk=",
                "OuVbFODueb089Lh128TAcimifWaLhJwVflnrgM17wHk=",
            ),
            (
                "image: registry.acme-corp.io/api@sha256:4f8a1c2d9e7b6a5f3c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f",
                "4f8a1c2d9e7b6a5f3c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f",
            ),
            (
                r#"    token_hash: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9""#,
                "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            ),
            (
                r#""narHash": "sha256-Zq8vT2mLw9pKr4Xy7Bn3Ab9cD0eF1gH2iJ3kL4mN5o=","#,
                "Zq8vT2mLw9pKr4Xy7Bn3Ab9cD0eF1gH2iJ3kL4mN5o=",
            ),
            (
                "deploy_git_ref: 3f786850e387550fdab836ed7e6dc881de23001b",
                "3f786850e387550fdab836ed7e6dc881de23001b",
            ),
        ] {
            assert_eq!(j(line, value, true), Judgement::Drop, "{line}");
        }
        // The same shape under a secret's name stays.
        let line = r#"secret_key_base = "9c05f34adcb19eb5ad3d0ff4c754c7e15f77641575b867616c19e34f77c8fe67""#;
        let v = "9c05f34adcb19eb5ad3d0ff4c754c7e15f77641575b867616c19e34f77c8fe67";
        assert_eq!(j(line, v, true), Judgement::Keep);
        // Provider tokens are never judged by digest words.
        let line = r#"commit_status_token: "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""#;
        assert_eq!(
            j(line, "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", false),
            Judgement::Keep
        );
    }

    #[test]
    fn keys_that_name_an_id_url_or_file_are_not_secrets() {
        let v = "Zq8vT2mLw9pKr4Xy7Bn3";
        for line in [
            format!(r#"  api_key_id: "{v}""#),
            format!(r#"tokenUrl = "{v}""#),
            format!(r#"password_file: "{v}""#),
            format!(r#"{{"secret_name": "{v}"}}"#),
            format!(r#"$config['token-type'] = '{v}';"#),
        ] {
            assert_eq!(j(&line, v, true), Judgement::Drop, "{line}");
        }
        for line in [
            format!(r#"secret_id         = "{v}""#),
            format!(r#"client_secret: "{v}""#),
            format!(r#"apiKey: "{v}""#),
            format!(r#"access_token = "{v}""#),
        ] {
            assert_eq!(j(&line, v, true), Judgement::Keep, "{line}");
        }
    }

    #[test]
    fn credentials_for_documentation_hosts_are_examples() {
        for line in [
            "u, _ := url.Parse(\"https://admin:Sup3rS3cret@example.com/path\")",
            "DATABASE_URL=postgres://app:Sup3rS3cret@db.example.org:5432/app",
            "amqp://guest:Sup3rS3cret@broker.test:5672/",
        ] {
            assert_eq!(j(line, "Sup3rS3cret", false), Judgement::Drop, "{line}");
        }
        let line = "postgres://app:Sup3rS3cret@db.examples-corp.com:5432/app";
        assert_eq!(j(line, "Sup3rS3cret", false), Judgement::Keep);
    }

    #[test]
    fn public_keys_site_keys_and_publishable_keys_are_not_secrets() {
        let v = "Zq8vT2mLw9pKr4Xy7Bn3Ab9cD0eF1gH";
        for line in [
            format!("VAPID_PUBLIC_KEY={v}"),
            format!(r#"{{"recaptchaSiteKey": "{v}"}}"#),
            format!(r#"publishable_key: "{v}""#),
        ] {
            assert_eq!(j(&line, v, true), Judgement::Drop, "{line}");
        }
        assert_eq!(
            j(&format!("VAPID_PRIVATE_KEY={v}"), v, true),
            Judgement::Keep
        );
    }

    #[test]
    fn uuids_are_downgraded_unless_the_key_names_a_credential() {
        let u = "123e4567-e89b-12d3-a456-426614174000";
        for line in [
            format!(r#"secret_scope: "{u}""#),
            format!(r#"{{"tokenOwner": "{u}"}}"#),
        ] {
            assert_eq!(j(&line, u, true), Judgement::Downgrade, "{line}");
        }
        for line in [
            format!(r#"SNYK_TOKEN: "{u}""#),
            format!(r#"api_key = "{u}""#),
            format!(r#"{{"clientSecret": "{u}"}}"#),
        ] {
            assert_eq!(j(&line, u, true), Judgement::Keep, "{line}");
        }
        // Provider rules that expect a UUID are not judged by it.
        let line = format!(r#"tenant: "{u}""#);
        assert_eq!(j(&line, u, false), Judgement::Keep);
    }

    #[test]
    fn snake_and_kebab_case_names_are_not_secrets() {
        for v in [
            "company_secret_storage_backend_v2_impl",
            "acme-token-service-prod-2",
        ] {
            let line = format!("SECRET_STORAGE_CLASS={v}");
            assert_eq!(j(&line, v, true), Judgement::Drop, "{v}");
        }
        for v in [
            "squ_4f9c2a7e1b8d3f6a0c5e9b2d7f1a4c8e3b6d9f2a",
            "Xk7p_Q2vN_9mLw_4RtY",
        ] {
            let line = format!("token={v}");
            assert_eq!(j(&line, v, true), Judgement::Keep, "{v}");
        }
    }

    #[test]
    fn test_and_sample_values_are_dropped_for_generic_rules() {
        for v in [
            "test-token-123456",
            "my_test_secret_9",
            "sample-Key-2024x",
            "FakePassw0rd!",
        ] {
            let line = format!(r#"password = "{v}""#);
            assert_eq!(j(&line, v, true), Judgement::Drop, "{v}");
        }
        // "latest" is not a test marker.
        let line = r#"password = "Latest#2024xQ""#;
        assert_eq!(j(line, "Latest#2024xQ", true), Judgement::Keep);
    }

    #[test]
    fn base64_images_fonts_and_public_keys_are_skipped() {
        let payload = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABAKIAxyzAKIAQ2X7VB9FJ3K4LMN0PQRS";
        let secret = "AKIAQ2X7VB9FJ3K4LMN0";
        for line in [
            format!(r#"background: url("data:image/png;base64,{payload}");"#),
            format!(r#"src: url(data:font/woff2;base64,{payload}) format("woff2");"#),
            format!("ssh-rsa {payload} ops@bastion"),
            format!("-----BEGIN CERTIFICATE-----\nMIIB\n{payload}\n-----END CERTIFICATE-----"),
            format!("-----BEGIN PUBLIC KEY-----\n{payload}\n-----END PUBLIC KEY-----"),
        ] {
            assert_eq!(j(&line, secret, false), Judgement::Drop, "{line}");
        }
        // Inside a private key's body (quoted line by line, as in C test
        // code, so no private-key rule matches) a token-shaped run is noise.
        let line = format!("\"-----BEGIN PRIVATE KEY-----\\n\"\n\"{payload}\\n\"\n");
        assert_eq!(j(&line, secret, false), Judgement::Drop, "{line}");
        // The same bytes on their own, or after a block, are kept.
        let line = format!("aws_key = {secret}");
        assert_eq!(j(&line, secret, false), Judgement::Keep);
        let line =
            format!("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nkey: {secret}");
        assert_eq!(j(&line, secret, false), Judgement::Keep);
    }

    #[test]
    fn generic_matches_on_minified_lines_are_downgraded() {
        let mut line = "!function(e){".to_string();
        for i in 0..80 {
            line.push_str(&format!("var a{i}=function(t){{return t.id}};"));
        }
        line.push_str(r#"var c={secret:"8syzlthYfw3otrZTyLUoToltrDkLNF46"};}(window);"#);
        assert_eq!(
            j(&line, "8syzlthYfw3otrZTyLUoToltrDkLNF46", true),
            Judgement::Downgrade
        );
        let short = r#"var c={secret:"8syzlthYfw3otrZTyLUoToltrDkLNF46"};"#;
        assert_eq!(
            j(short, "8syzlthYfw3otrZTyLUoToltrDkLNF46", true),
            Judgement::Keep
        );
    }

    proptest::proptest! {
        /// Any span of any bytes gets an answer, never a panic.
        #[test]
        fn judging_arbitrary_bytes_never_panics(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..400),
            a in proptest::prelude::any::<proptest::sample::Index>(),
            b in proptest::prelude::any::<proptest::sample::Index>(),
            generic in proptest::prelude::any::<bool>(),
        ) {
            let (x, y) = (a.index(data.len()), b.index(data.len()));
            let (start, end) = (x.min(y), x.max(y) + 1);
            let _ = judge(&data, start, end.min(data.len()), generic);
        }
    }
}
