//! False-positive filters applied to a candidate secret after its regex
//! matched: placeholders, templates and documentation example values.

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
];

/// True if `secret` looks like a placeholder, template or example value.
pub fn is_placeholder(secret: &[u8]) -> bool {
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
    if lower.starts_with(b"your_") || lower.starts_with(b"your-") {
        return true;
    }
    PLACEHOLDER_WORDS
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
}

#[cfg(test)]
mod tests {
    use super::is_placeholder;

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
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p} should be a placeholder");
        }
    }

    #[test]
    fn random_tokens_are_not_placeholders() {
        for s in ["ghp_R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs12", "Zq8vT2mLw9pK"] {
            assert!(!is_placeholder(s.as_bytes()), "{s} is not a placeholder");
        }
    }
}
