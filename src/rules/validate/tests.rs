//! Validator tests: each format against values computed independently
//! (Python's zlib.crc32 for the CRC32 schemes) and against broken copies.

use super::*;

/// Flips one character of `s` at `i` to another of the same class.
fn flip(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = match b[i] {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => b[i] + 1,
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        other => other,
    };
    String::from_utf8(b).unwrap()
}

#[test]
fn base62_crc32_matches_an_independent_computation() {
    // zlib.crc32(b"R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs") == 88138923 == "05xoxX" in base62.
    assert_eq!(base62_crc32(b"R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs"), "05xoxX");
}

#[test]
fn github_tokens_with_their_checksum_pass_and_any_change_fails() {
    let random = "R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs";
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let token = format!("{prefix}{random}05xoxX");
        assert_eq!(
            Validator::GithubCrc32.check(token.as_bytes()),
            Verdict::Valid
        );
        for i in [4, 20, 34, 39] {
            let bad = flip(&token, i);
            assert_eq!(
                Validator::GithubCrc32.check(bad.as_bytes()),
                Verdict::Invalid,
                "{bad}"
            );
        }
    }
    // Longer tokens (GitHub reserves up to 255 characters) that do not carry
    // the checksum are doubtful, not certainly fake.
    let long = format!("ghs_{random}{random}05xoxX");
    assert_eq!(
        Validator::GithubCrc32.check(long.as_bytes()),
        Verdict::Doubtful
    );
    assert_eq!(Validator::GithubCrc32.check(b"ghp_abc"), Verdict::Invalid);
}

#[test]
fn npm_tokens_use_the_same_checksum() {
    let token = "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";
    assert_eq!(Validator::NpmCrc32.check(token.as_bytes()), Verdict::Valid);
    let bad = flip(token, 10);
    assert_eq!(Validator::NpmCrc32.check(bad.as_bytes()), Verdict::Invalid);
}

#[test]
fn grafana_checksum_is_little_endian_hex_of_crc32() {
    // zlib.crc32(b"glsa_abcdefghijklmnopqrstuvwxyzABCDEF").to_bytes(4, "little").hex()
    let token = "glsa_abcdefghijklmnopqrstuvwxyzABCDEF_ec61ef3f";
    assert_eq!(
        Validator::GrafanaCrc32.check(token.as_bytes()),
        Verdict::Valid
    );
    assert_eq!(
        Validator::GrafanaCrc32.check(token.to_uppercase().replace("GLSA", "glsa").as_bytes()),
        Verdict::Invalid
    );
    assert_eq!(
        Validator::GrafanaCrc32.check(flip(token, 10).as_bytes()),
        Verdict::Invalid
    );
}

#[test]
fn slack_tokens_with_odd_structure_are_doubtful() {
    let ok = "xoxb-7255571726437-3957903447132-1rZLZ8a7syCYdzvColiggH3w";
    assert_eq!(Validator::Slack.check(ok.as_bytes()), Verdict::Valid);
    for odd in [
        "xoxb-0123456789-3957903447132-1rZLZ8a7syCYdzvColiggH3w",
        "xoxb-7255571726437-3957903447132-abcdefghijklmnopqrstuvwx",
    ] {
        assert_eq!(
            Validator::Slack.check(odd.as_bytes()),
            Verdict::Doubtful,
            "{odd}"
        );
    }
}

/// A PyPI-shaped macaroon: location, identifier, one caveat, signature.
fn macaroon(location: &[u8], sig_len: usize) -> Vec<u8> {
    let mut m = vec![2, 1, location.len() as u8];
    m.extend_from_slice(location);
    m.extend([2, 4]);
    m.extend(b"id-1");
    m.push(0);
    let caveat = br#"{"version": 1, "permissions": "user"}"#;
    m.extend([2, caveat.len() as u8]);
    m.extend(caveat);
    m.extend([0, 0, 6, sig_len as u8]);
    m.extend(std::iter::repeat_n(0x5a, sig_len));
    m
}

#[test]
fn pypi_tokens_must_be_macaroons_from_pypi() {
    let good = format!("pypi-{}", base64_encode(&macaroon(b"pypi.org", 32), true));
    assert!(good.starts_with("pypi-AgEIcHlwaS5vcmc"), "{good}");
    assert_eq!(
        Validator::PypiMacaroon.check(good.as_bytes()),
        Verdict::Valid
    );
    let test = format!(
        "pypi-{}",
        base64_encode(&macaroon(b"test.pypi.org", 32), true)
    );
    assert_eq!(
        Validator::PypiMacaroon.check(test.as_bytes()),
        Verdict::Valid
    );
    for bad in [
        format!("pypi-{}", base64_encode(&macaroon(b"evil.org", 32), true)),
        format!("pypi-{}", base64_encode(&macaroon(b"pypi.org", 16), true)),
        good[..good.len() - 8].to_string(),
        format!("{good}AAAA"),
        "pypi-AgEIcHlwaS5vcmc...".to_string(),
    ] {
        assert_eq!(
            Validator::PypiMacaroon.check(bad.as_bytes()),
            Verdict::Invalid,
            "{bad}"
        );
    }
}

#[test]
fn jwts_need_a_json_header_with_alg() {
    let enc = |s: &str| base64_encode(s.as_bytes(), true);
    let good = format!(
        "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
        enc(r#"{"alg":"HS256","typ":"JWT"}"#),
        enc(r#"{"sub":"1"}"#)
    );
    assert_eq!(Validator::Jwt.check(good.as_bytes()), Verdict::Valid);
    let no_alg = format!("{}.{}.sig", enc(r#"{"typ":"JWT"}"#), enc(r#"{"sub":"1"}"#));
    assert_eq!(Validator::Jwt.check(no_alg.as_bytes()), Verdict::Invalid);
    let not_json = format!("{}.{}.sig", enc(r#"{"alg":"HS256""#), enc(r#"{"sub":"1"}"#));
    assert_eq!(Validator::Jwt.check(not_json.as_bytes()), Verdict::Invalid);
    let k8s = base64_encode(good.as_bytes(), false);
    assert_eq!(Validator::Base64Jwt.check(k8s.as_bytes()), Verdict::Valid);
}

#[test]
fn der_sequences_need_an_exact_length() {
    assert!(is_der_sequence(&[0x30, 0x03, 2, 1, 0]));
    assert!(!is_der_sequence(&[0x30, 0x04, 2, 1, 0]));
    let mut long = vec![0x30, 0x82, 0x01, 0x00];
    long.extend(std::iter::repeat_n(0, 256));
    assert!(is_der_sequence(&long));
    assert!(!is_der_sequence(&[0x31, 0x03, 2, 1, 0]));
}

#[test]
fn pem_bodies_must_decode_to_der_even_when_escaped() {
    let body = base64_encode(&[0x30, 0x03, 2, 1, 0], false);
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
    assert_eq!(Validator::PemDer.check(pem.as_bytes()), Verdict::Valid);
    let commented = pem.replace('\n', "\n// ");
    assert_eq!(
        Validator::PemDer.check(commented.as_bytes()),
        Verdict::Valid
    );
    let escaped = pem.replace('\n', "\\n");
    assert_eq!(Validator::PemDer.check(escaped.as_bytes()), Verdict::Valid);
    let truncated =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        Validator::PemDer.check(truncated.as_bytes()),
        Verdict::Invalid
    );
    let not_der = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
        base64_encode(b"this is not a key at all", false)
    );
    assert_eq!(
        Validator::PemDer.check(not_der.as_bytes()),
        Verdict::Invalid
    );
    let encrypted = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{}\n-----END RSA PRIVATE KEY-----",
        base64_encode(&[7u8; 32], false)
    );
    assert_eq!(
        Validator::PemDer.check(encrypted.as_bytes()),
        Verdict::Valid
    );
    let kubeconfig = base64_encode(pem.as_bytes(), false);
    assert_eq!(
        Validator::Base64Pem.check(kubeconfig.as_bytes()),
        Verdict::Valid
    );
}

#[test]
fn base64_round_trips_and_rejects_junk() {
    for data in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10\x80"] {
        for url in [false, true] {
            assert_eq!(
                base64_decode(base64_encode(data, url).as_bytes()).as_deref(),
                Some(data)
            );
        }
    }
    assert_eq!(base64_decode(b"ab=c"), None);
    assert_eq!(base64_decode(b"a"), None);
    assert_eq!(base64_decode(b"ab.c"), None);
}

#[test]
fn pgp_armour_crc24_matches_gpg() {
    // `gpg --enarmor` of the bytes "leakhound" ends its armour with =PkiR.
    assert_eq!(crc24(b"leakhound"), 0x3e4891);
    let armour = |sum: &str| {
        format!(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: t\n\nbGVha2hvdW5k\n{sum}\n-----END PGP PRIVATE KEY BLOCK-----"
        )
    };
    assert_eq!(
        Validator::PgpArmor.check(armour("=PkiR").as_bytes()),
        Verdict::Valid
    );
    assert_eq!(
        Validator::PgpArmor.check(armour("=PkiS").as_bytes()),
        Verdict::Invalid
    );
}

#[test]
fn base64_json_tokens_must_decode_to_an_object() {
    let body = base64_encode(
        br#"{"o":"1","n":"stack-1-read","k":"abc","m":{"r":"eu"}}"#,
        false,
    );
    assert_eq!(
        Validator::Base64Json.check(format!("glc_{body}").as_bytes()),
        Verdict::Valid
    );
    // Sentry: the payload, then `_` and a signature.
    let sentry = format!("sntrys_{body}_c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS10b2tlbi0xMjM0NTY3");
    assert_eq!(
        Validator::Base64Json.check(sentry.as_bytes()),
        Verdict::Valid
    );
    let truncated = format!("glc_{}", &body[..body.len() - 9]);
    assert_eq!(
        Validator::Base64Json.check(truncated.as_bytes()),
        Verdict::Invalid
    );
    let not_json = format!(
        "glc_eyJ{}",
        base64_encode(b"not json at all, just bytes", false)
    );
    assert_eq!(
        Validator::Base64Json.check(not_json.as_bytes()),
        Verdict::Invalid
    );
}

proptest::proptest! {
    /// CRC32 catches every single-character change: a valid token with any
    /// one character replaced always fails.
    #[test]
    fn any_single_character_change_breaks_a_github_checksum(
        random in "[0-9A-Za-z]{30}",
        at in 0usize..36,
        with in proptest::sample::select(BASE62.to_vec()),
    ) {
        let token = format!("ghp_{random}{}", base62_crc32(random.as_bytes()));
        proptest::prop_assert_eq!(Validator::GithubCrc32.check(token.as_bytes()), Verdict::Valid);
        let mut bad = token.into_bytes();
        proptest::prop_assume!(bad[4 + at] != with);
        bad[4 + at] = with;
        proptest::prop_assert_eq!(Validator::GithubCrc32.check(&bad), Verdict::Invalid);
    }
}

/// Vectors computed outside the crate, with Python's `zlib.crc32` and a
/// base62 / base36 / little-endian hex written there (most significant
/// digit first, zero-padded to 6 / 7 digits), e.g.
/// `enc(zlib.crc32(b"glpat-….01.0y"), "0123456789abcdefghijklmnopqrstuvwxyz", 7)`.
/// A validator whose CRC, alphabet, width or byte order drifts rejects them.
#[test]
fn checksums_match_vectors_computed_outside_the_crate() {
    // (random part, zlib.crc32, base62 of it)
    for (random, crc, b62) in [
        ("R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs", 88_138_923u32, "05xoxX"),
        ("zYxWvUtSrQpOnMlKjIhGfEdCbA9876", 1_405_453_992, "1X78mm"),
        ("lEaKhOuNdTeStVeCtOr0123456789Q", 2_420_093_679, "2dmSv1"),
    ] {
        assert_eq!(crc32fast::hash(random.as_bytes()), crc, "{random}");
        assert_eq!(base62_crc32(random.as_bytes()), b62, "{random}");
        for (v, prefix) in [
            (Validator::GithubCrc32, "ghp_"),
            (Validator::GithubCrc32, "gho_"),
            (Validator::NpmCrc32, "npm_"),
        ] {
            let token = format!("{prefix}{random}{b62}");
            assert_eq!(v.check(token.as_bytes()), Verdict::Valid, "{token}");
            assert_eq!(v.check(flip(&token, 39).as_bytes()), Verdict::Invalid);
        }
    }
    // GitLab routable: base36 (lower case) of the CRC32 of all before it.
    for (encoded, crc, b36) in [
        (
            "glpat-AAAAAAAAAAAAAAAAAAAAAG86MQp1OjJzCA.01.0y",
            4_077_686_346u32,
            "1vfqyx6",
        ),
        (
            "glpat-bGVha2hvdW5kLXRlc3QtdmVjdG9yAQ.01.0z",
            3_041_626_864,
            "1eawmb4",
        ),
    ] {
        assert_eq!(crc32fast::hash(encoded.as_bytes()), crc);
        assert_eq!(gitlab_crc(encoded.as_bytes()), b36);
        let token = format!("{encoded}{b36}");
        assert_eq!(
            Validator::GitlabRoutable.check(token.as_bytes()),
            Verdict::Valid,
            "{token}"
        );
    }
    // Grafana: hex of the little-endian bytes of zlib.crc32(b"glsa_…").
    let token = "glsa_ZZZZyyyyXXXXwwww0000111122223333_7b0f5ef5";
    assert_eq!(
        Validator::GrafanaCrc32.check(token.as_bytes()),
        Verdict::Valid
    );
    // CRC-24/OpenPGP's catalogue check value (RFC 4880 §6.1 parameters):
    // crc24(b"123456789") == 0x21CF02.
    assert_eq!(crc24(b"123456789"), 0x21_CF02);
}

#[test]
fn gitlab_routable_tokens_carry_a_base36_crc32() {
    // The checksum from Python (see above), not from gitlab_crc.
    let token = "glpat-AAAAAAAAAAAAAAAAAAAAAG86MQp1OjJzCA.01.0y1vfqyx6";
    assert_eq!(
        Validator::GitlabRoutable.check(token.as_bytes()),
        Verdict::Valid
    );
    assert_eq!(
        Validator::GitlabRoutable.check(flip(token, 12).as_bytes()),
        Verdict::Invalid
    );
    assert_eq!(
        Validator::GitlabRoutable.check(b"glpat-_fSNUmkyL4kIFamuYg29g9vJ6Fv.01.9agphe29f"),
        Verdict::Invalid
    );
    // The older format has no checksum to check.
    assert_eq!(
        Validator::GitlabRoutable.check(b"glpat-VWjpGRkSaxpqVr-aa3uS"),
        Verdict::Valid
    );
}

proptest::proptest! {
    /// Validators see arbitrary matched bytes (a regex can match inside
    /// binary data): they answer, never panic.
    #[test]
    fn validators_never_panic(
        prefix in proptest::sample::select(vec![
            &b"ghp_"[..], b"npm_", b"glsa_", b"glpat-", b"xoxb-", b"pypi-", b"eyJ",
            b"-----BEGIN PRIVATE KEY-----\n", b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", b"",
        ]),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let mut secret = prefix.to_vec();
        secret.extend(body);
        for v in [
            Validator::GithubCrc32, Validator::NpmCrc32, Validator::GrafanaCrc32,
            Validator::GitlabRoutable, Validator::Slack, Validator::PypiMacaroon, Validator::Jwt,
            Validator::Base64Jwt, Validator::PemDer, Validator::Base64Pem, Validator::OpensshKey,
            Validator::PgpArmor, Validator::Base64Json,
        ] {
            let _ = v.check(&secret);
        }
    }
}

#[test]
fn openssh_keys_must_decode_to_the_openssh_key_v1_magic() {
    // The magic and layout of PROTOCOL.key (OpenSSH): "openssh-key-v1\0",
    // then cipher "none", kdf "none", ... as ssh-keygen writes them.
    let mut body = b"openssh-key-v1\0".to_vec();
    body.extend([0, 0, 0, 4]);
    body.extend(b"none");
    body.extend([0, 0, 0, 4]);
    body.extend(b"none");
    let pem = |b: &[u8]| {
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
            base64_encode(b, false)
        )
    };
    assert_eq!(
        Validator::OpensshKey.check(pem(&body).as_bytes()),
        Verdict::Valid
    );
    body[7] = b'X';
    assert_eq!(
        Validator::OpensshKey.check(pem(&body).as_bytes()),
        Verdict::Invalid
    );
}
