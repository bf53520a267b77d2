//! `.leakhound.toml`: a team's settings for scans of their repository.
//!
//! The file is found in the scan root (or given with `--config`); options on
//! the command line win over it. Unknown keys are errors that name the line,
//! because a misspelt allowlist that silently does nothing is how secrets
//! slip through a gate. `leakhound init` writes `TEMPLATE`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::allow::AllowSpec;
use crate::rules::Confidence;

/// The name looked for in a scan root.
pub const FILE_NAME: &str = ".leakhound.toml";

/// The settings a config file may hold. Documented in docs/configuration.md.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Report only findings of at least this confidence.
    #[serde(default)]
    pub min_confidence: Option<Confidence>,
    /// Skip files and blobs larger than this (`100MiB`, `512K`, bytes).
    #[serde(default)]
    pub max_file_size: Option<String>,
    /// Extra rule files or directories, relative to the config file.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Rule ids not to run.
    #[serde(default)]
    pub disabled_rules: Vec<String>,
    /// Look inside encodings (JSON escapes, base64, ...). Default true.
    #[serde(default)]
    pub decoders: Option<bool>,
    /// A gitleaks/betterleaks config to import, relative to the config file.
    #[serde(default)]
    pub gitleaks_config: Option<PathBuf>,
    /// Ignore `leakhound:allow` and friends (an audit that must see all).
    #[serde(default)]
    pub ignore_inline_markers: Option<bool>,
    /// `[[allowlist]]` tables.
    #[serde(default)]
    pub allowlist: Vec<AllowSpec>,
    /// `[registries."host:port"]` tables: how to reach one registry.
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, RegistryConfig>,
}

/// One `[registries."host:port"]` table. The password is never in the
/// file: `password_env` names the environment variable that holds it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Plain HTTP to this host.
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

/// A config file and the directory its relative paths start from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
}

impl Loaded {
    /// `p` resolved against the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// `max_file_size` parsed.
    pub fn max_file_size(&self) -> Result<Option<u64>, ConfigError> {
        self.config
            .max_file_size
            .as_deref()
            .map(|s| {
                parse_size(s).map_err(|message| ConfigError::Parse {
                    path: self.path.display().to_string(),
                    message: format!("max_file_size: {message}"),
                })
            })
            .transpose()
    }
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(path, &text)
}

/// Parses config text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
    })
}

/// The config file in `root` (a directory), if there is one.
pub fn discover(root: &Path) -> Option<PathBuf> {
    let p = root.join(FILE_NAME);
    p.is_file().then_some(p)
}

/// Parses `100MiB`, `10M`, `512k`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1048576, 512K, 100MiB, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use K, M or G)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

/// What `leakhound init` writes: every setting, commented out, with what it does.
pub const TEMPLATE: &str = r#"# leakhound configuration (https://github.com/leakhound/leakhound, docs/configuration.md).
# Found in the scan root (the directory given to `leakhound scan`, or the
# repository for `leakhound git`), or given with --config. Command-line options win.
# Unknown keys are errors, so a typo never silently disables an allowlist.

# Report only findings of at least this confidence: "low", "medium" (default) or "high".
# min_confidence = "medium"

# Skip (and report) files and Git blobs larger than this.
# max_file_size = "100MiB"

# Extra rule files or directories of *.toml rules (paths relative to this file).
# rules = ["ci/leakhound-rules.toml"]

# Rule ids not to run (`leakhound rules list` shows them).
# disabled_rules = ["generic-secret-assignment-unquoted"]

# Look inside encodings (JSON escapes, base64, Kubernetes Secrets, ...).
# decoders = true

# Import a gitleaks/betterleaks config: its rules and allowlists are added.
# gitleaks_config = ".gitleaks.toml"

# Ignore inline `leakhound:allow` / `gitleaks:allow` / `pragma: allowlist secret`
# markers (for an audit that must see everything).
# ignore_inline_markers = false

# Allowlists: a finding is not reported when any one list matches it. Within a
# list, any criterion matching is enough (condition = "and": all given ones).
# [[allowlist]]
# description = "test fixtures hold fake secrets"
# paths = ["tests/fixtures/**", "*.snap"]   # globs; no '/' matches at any depth
#
# [[allowlist]]
# description = "the documented example key"
# rules = ["aws-access-key-id"]             # only these rules (default: all)
# regexes = ["EXAMPLE$"]                    # matched against the secret ...
# target = "secret"                         # ... or "line"
# stopwords = ["dummy", "sample"]           # case-insensitive, inside the secret
# commits = ["4f2a9c1"]                     # findings introduced by these commits
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_sets_nothing() {
        let l = parse(Path::new("t.toml"), TEMPLATE).expect("template parses");
        assert!(l.config.allowlist.is_empty());
        assert!(l.config.min_confidence.is_none());
    }

    #[test]
    fn the_template_uncommented_is_a_valid_config() {
        let text: String = TEMPLATE
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .filter(|l| {
                let key = l.split(" = ").next().unwrap_or("");
                l.starts_with("[[")
                    || (l.contains(" = ")
                        && !key.is_empty()
                        && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let l = parse(Path::new("t.toml"), &text).expect("uncommented template parses");
        assert_eq!(l.config.allowlist.len(), 2);
        assert_eq!(l.max_file_size().unwrap(), Some(100 << 20));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_line() {
        let err = parse(
            Path::new("c.toml"),
            "min_confidence = \"low\"\n\n[[allowlist]]\npath = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("unknown field `path`"), "{err}");
    }

    #[test]
    fn registry_tables_parse_and_refuse_a_password() {
        let l = parse(
            Path::new("c.toml"),
            "[registries.\"reg.example:5000\"]\nusername = \"ci\"\npassword_env = \"REG_PW\"\n\
             insecure = true\n\n[registries.\"ghcr.io\"]\nusername = \"bot\"\n",
        )
        .unwrap();
        let r = &l.config.registries["reg.example:5000"];
        assert_eq!(r.username.as_deref(), Some("ci"));
        assert_eq!(r.password_env.as_deref(), Some("REG_PW"));
        assert_eq!(r.insecure, Some(true));
        assert_eq!(l.config.registries["ghcr.io"].insecure, None);
        let err = parse(
            Path::new("c.toml"),
            "[registries.\"ghcr.io\"]\npassword = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `password`"), "{err}");
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("7"), Ok(7));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5T").is_err());
    }
}
