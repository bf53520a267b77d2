//! Context filter tests: realistic lines for each false-positive class,
//! and the same shapes where they must be kept.

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
    let line =
        r#"secret_key_base = "9c05f34adcb19eb5ad3d0ff4c754c7e15f77641575b867616c19e34f77c8fe67""#;
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
        format!(r#"strcpy(key_name, "{v}");"#),
    ] {
        assert_eq!(j(&line, v, true), Judgement::Drop, "{line}");
    }
    for line in [
        format!(r#"secret_id         = "{v}""#),
        format!(r#"client_secret: "{v}""#),
        format!(r#"apiKey: "{v}""#),
        format!(r#"access_token = "{v}""#),
        format!(r#"client.setAuthToken("{v}")"#),
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
        format!(r#"SNYK_TOKEN ?= "{u}""#),
        format!(r#"API_KEY += {u}"#),
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
        "SHA256_DIGEST_SIZE",
        "P2P_STATE_GONEGO_OK",
    ] {
        let line = format!("SECRET_STORAGE_CLASS={v}");
        assert_eq!(j(&line, v, true), Judgement::Drop, "{v}");
    }
    for v in [
        "squ_4f9c2a7e1b8d3f6a0c5e9b2d7f1a4c8e3b6d9f2a",
        "Xk7p_Q2vN_9mLw_4RtY",
        "K7PQ2VN9_MLW4RTY8ZB3",
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
