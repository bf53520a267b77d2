//! False-positive filters applied to a candidate secret after its regex
//! matched: placeholders, templates and documentation example values.
//! Filters that need the match's surroundings live in `context.rs`.

/// Substrings (lowercase) that mark a value as a placeholder or a documented
/// example rather than a live secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "xxxx",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "redacted",
    "dummy",
    "****",
    "${",
    "{{",
    "%s",
    "...",
    "$(",
    "your_",
    "your-",
];

/// Values that providers publish in their own documentation and that appear
/// in countless tutorials, tests and emulator configurations. Those holding
/// the word EXAMPLE are caught by `PLACEHOLDER_WORDS` already.
const DOCUMENTED_KEYS: &[&str] = &[
    // Stripe's API reference test key and publishable key.
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "pk_test_TYooMQauvdEDq54NiTphI7jx",
    // The well-known Azure Storage emulator (Azurite) account key.
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    // The password of the Kubernetes documentation's Secret example
    // (`password: MWYyZDFlMmU2N2Rm`), copied into countless READMEs.
    "1f2d1e2e67df",
    // jwt.io's sample token signature (HS256, "your-256-bit-secret").
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];

/// Words a value is made of when it names or asks for a secret instead of
/// being one: `REPLACE_ME`, `password`, `TODO`, `your-password-here`,
/// `insert_token_here`, `none`, `null`. A value all of whose words (split at
/// anything but letters and digits) are in this list is a placeholder.
/// Sorted, for the binary search.
const PLACEHOLDER_VOCABULARY: &[&str] = &[
    "a",
    "access",
    "actual",
    "add",
    "an",
    "api",
    "apikey",
    "auth",
    "be",
    "change",
    "changeit",
    "changethis",
    "default",
    "empty",
    "enter",
    "fill",
    "fixme",
    "for",
    "goes",
    "here",
    "hidden",
    "in",
    "insert",
    "key",
    "masked",
    "me",
    "my",
    "new",
    "nil",
    "none",
    "null",
    "omitted",
    "pass",
    "passwd",
    "password",
    "put",
    "pwd",
    "real",
    "removed",
    "replace",
    "replaceme",
    "secret",
    "secure",
    "set",
    "strong",
    "tbd",
    "the",
    "this",
    "to",
    "todo",
    "token",
    "undefined",
    "value",
    "with",
    "your",
    "yourpassword",
];

/// True if every word of `lower` (a lowercase value) is in the placeholder
/// vocabulary. Bounded: a value longer than any such phrase is not one.
fn only_placeholder_words(lower: &[u8]) -> bool {
    if lower.len() > 64 {
        return false;
    }
    let mut words = lower
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some()
        && words.all(|w| {
            PLACEHOLDER_VOCABULARY
                .binary_search_by(|v| v.as_bytes().cmp(w))
                .is_ok()
        })
}

/// True if a value a generic rule matched is not a secret for all its
/// randomness: counted-out filler, or a key its provider marks as meant to
/// be public (`pk_live_…`, `live_pub_…`, `publishable…`). Provider rules
/// know their formats and are not asked.
pub fn not_a_generic_secret(secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    let has = |w: &str| memchr::memmem::find(&lower, w.as_bytes()).is_some();
    lower.starts_with(b"pk_")
        || lower.starts_with(b"pub_")
        || has("_pub_")
        || has("publishable")
        || counted_filler(secret)
}

/// True if most of a value is counted out rather than random: runs of the
/// alphabet and of the digits (`abcdefghijklmnopqrstuvwxyz1234567`,
/// `ABCDEFGHIJ1234567890`, `a1b2c3d4e5f6…`, `AbCdEfGhIj…`), read on its
/// letters and its digits apart so interleaving does not hide them. Half the
/// value's letters and digits in such runs (of 4 or more) is what people
/// type to fill a format; a random token of 16 or more characters comes
/// nowhere near. Short values (passwords) are left to the other filters.
fn counted_filler(secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    let alnum = lower.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    if alnum < 16 {
        return false;
    }
    let letters = run_cover(
        lower.iter().copied().filter(u8::is_ascii_lowercase),
        |a, b| b == a + 1,
    );
    let digits = run_cover(lower.iter().copied().filter(u8::is_ascii_digit), |a, b| {
        b == a + 1 || (a == b'9' && b == b'0')
    });
    (letters + digits) * 2 >= alnum
}

/// Characters in runs of 4 or more where each follows the one before.
fn run_cover(seq: impl Iterator<Item = u8>, follows: impl Fn(u8, u8) -> bool) -> usize {
    let (mut covered, mut run, mut prev) = (0, 0, None);
    for b in seq {
        run = match prev {
            Some(p) if follows(p, b) => run + 1,
            _ => {
                if run >= 4 {
                    covered += run;
                }
                1
            }
        };
        prev = Some(b);
    }
    if run >= 4 {
        covered += run;
    }
    covered
}

/// True if `secret` looks like a placeholder, template or example value.
pub fn is_placeholder(secret: &[u8]) -> bool {
    // A decoded Secret value often ends with the newline `echo` added.
    let secret = secret.trim_ascii();
    if secret.is_empty() {
        return true;
    }
    // One repeated character ("aaaaaaaa", "00000000").
    if secret.iter().all(|&b| b == secret[0]) {
        return true;
    }
    let lower = secret.to_ascii_lowercase();
    if lower.first() == Some(&b'<') && lower.last() == Some(&b'>') {
        return true;
    }
    if DOCUMENTED_KEYS
        .iter()
        .any(|k| memchr::memmem::find(secret, k.as_bytes()).is_some())
    {
        return true;
    }
    PLACEHOLDER_WORDS
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
        || only_placeholder_words(&lower)
}

#[cfg(test)]
mod tests {
    use super::{PLACEHOLDER_VOCABULARY, counted_filler, is_placeholder, not_a_generic_secret};

    #[test]
    fn placeholders_are_recognised() {
        for p in [
            "AKIAIOSFODNN7EXAMPLE",
            "${GITHUB_TOKEN}",
            "{{ .Values.token }}",
            "<your-token>",
            "changeme",
            "xxxxxxxxxxxxxxxx",
            "********",
            "your_api_key_here",
            "aaaaaaaaaaaaaaaa",
            "sk-...",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "$(cat /run/secrets/token)",
            "1f2d1e2e67df",
            "api-key-for-your-account",
            // Words that name or ask for a secret instead of being one.
            "REPLACE_ME",
            "password",
            "password\n",
            "CHANGE_ME",
            "TODO",
            "secret",
            "none",
            "null",
            "<redacted>",
            "*****",
            "your-password-here",
            "replace-with-your-key",
            "INSERT_TOKEN_HERE",
            "put-your-api-key-here",
            "my-secret-password",
            "secret_token",
            " 'changeit' ",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p} should be a placeholder");
        }
    }

    #[test]
    fn counted_filler_is_told_from_random_values() {
        for p in [
            "AIzaSyabcdefghijklmnopqrstuvwxyz1234567", // leakhound:allow
            "ABCDEFGHIJ1234567890ABCDEFGHIJ123456",
            "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
            "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", // leakhound:allow
            "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "live_abc123def456ghi789jkl012mno345pqr",
        ] {
            assert!(counted_filler(p.as_bytes()), "{p} is counted out");
        }
        for s in [
            "abcd1234",
            "Summer2024!12345678",
            "sk_live_51Hx7Qabcd9Zr2Lw8Vt3Np6Ym4Ks1Jd0Fb5Gc", // leakhound:allow
            "0123a9f8e7d6c5b4a39281706f5e4d3c",
            "ghp_R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs12",
        ] {
            assert!(!counted_filler(s.as_bytes()), "{s} is not counted out");
        }
    }

    #[test]
    fn publishable_keys_are_not_generic_secrets() {
        for p in [
            "pk_live_9fK2mQ7xL4vT8wR1",
            "live_pub_0a9f8e7d6c5b4a3928",
            "publishable_9fK2mQ7x",
        ] {
            assert!(not_a_generic_secret(p.as_bytes()), "{p}");
        }
        assert!(!not_a_generic_secret(b"sk_live_9fK2mQ7xL4vT8wR1"));
        assert!(!not_a_generic_secret(b"Xpub7fK2mQ7xL4vT8wR1zz"));
    }

    #[test]
    fn random_tokens_are_not_placeholders() {
        for s in [
            "ghp_R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs12",
            "Zq8vT2mLw9pK",
            // Real passwords that contain placeholder words.
            "P@ssw0rd-9xQ!",
            "password-9xQ7",
            "Password123",
            "admin:password",
            "secret-Kq8vRt2Lm9",
            "mytokenisbetterthanyours",
            "correct-horse-battery-staple",
            // Weak, but a password someone may really use.
            "mypassword",
        ] {
            assert!(!is_placeholder(s.as_bytes()), "{s} is not a placeholder");
        }
    }

    #[test]
    fn the_vocabulary_is_sorted_lowercase_and_unique() {
        let v = PLACEHOLDER_VOCABULARY;
        assert!(v.windows(2).all(|w| w[0] < w[1]), "not sorted or repeated");
        assert!(
            v.iter().all(|w| w
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
            "not lowercase"
        );
    }
}
