//! One settings builder for every subcommand: the default rule pack, rules
//! from the config file and from the caller, an imported gitleaks config,
//! disabled rules, allowlists, and engine options, each value taken from
//! the caller when it gives one, else from the config file, else the
//! default. The binary turns its command line into `Overrides`; nothing
//! here knows a flag.

use std::path::{Path, PathBuf};

use crate::allow::{AllowError, Allowlist, Policy};
use crate::config::{self, ConfigError};
use crate::decode::Limits;
use crate::engine::{EngineOptions, Scanner};
use crate::rules::{self, Confidence, RuleError, RuleSet};
use sha2::{Digest, Sha256};

/// Largest file read when neither the caller nor the config file says.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 << 20;

/// What the caller decided; `None` (or `false`) leaves the decision to the
/// config file or the default.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Read no config file at all.
    pub no_config: bool,
    /// This config file instead of `.leakhound.toml` in the scan root.
    pub config: Option<PathBuf>,
    /// Rule files or directories added to the pack.
    pub rules: Vec<PathBuf>,
    /// A gitleaks config to import (over the config file's).
    pub gitleaks_config: Option<PathBuf>,
    pub min_confidence: Option<Confidence>,
    pub max_file_size: Option<u64>,
    /// Decode nothing (whatever the config file says).
    pub no_decode: bool,
    pub decode: Limits,
    pub show_secrets: bool,
}

/// What a scan runs with.
pub struct Settings {
    /// Rules, engine options and allowlists.
    pub scanner: Scanner,
    pub max_file_size: u64,
    /// The confidence findings must reach to be reported.
    pub min_confidence: Confidence,
    /// Things worth telling the user (a file and what about it), such as
    /// gitleaks features that were not imported.
    pub warnings: Vec<(PathBuf, String)>,
    /// `[registries."host:port"]` tables of the config file (how to reach
    /// each registry; they change no result).
    pub registries: std::collections::BTreeMap<String, config::RegistryConfig>,
    /// Hex SHA-256 of everything that changes what a scan of the same bytes
    /// reports: leakhound's version, every rule (pack and user rules, as
    /// loaded), allowlists, decoding, confidence, file size limit and
    /// `--show-secrets`. Caches of scan results (`registry --cache`) are
    /// valid only under the same key.
    pub results_key: String,
}

/// Why the settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Allow(#[from] AllowError),
    #[error("cannot read gitleaks config {}: {error}", path.display())]
    Gitleaks {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{file}: disabled_rules names `{id}`, which is not a rule (see `leakhound rules list`)"
    )]
    UnknownDisabledRule { file: String, id: String },
    #[error("at most {max} decoding steps are followed, not {depth}")]
    DecodeDepth { depth: usize, max: usize },
}

/// The config file for a scan rooted at `root`: the caller's, or
/// `.leakhound.toml` in the root (a directory, or a file's directory).
fn find_config(o: &Overrides, root: Option<&Path>) -> Result<Option<config::Loaded>, ConfigError> {
    if o.no_config {
        return Ok(None);
    }
    if let Some(p) = &o.config {
        return Ok(Some(config::load(p)?));
    }
    let Some(root) = root else { return Ok(None) };
    let dir = if root.is_dir() {
        root
    } else {
        match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    Ok(match config::discover(dir) {
        Some(p) => Some(config::load(&p)?),
        None => None,
    })
}

/// Builds the settings of a scan rooted at `root` (where the config file is
/// looked for, and what allowlist paths are relative to).
pub fn build(o: &Overrides, root: Option<&Path>) -> Result<Settings, SettingsError> {
    let loaded = find_config(o, root)?;
    let cfg = loaded.as_ref().map(|l| &l.config);
    let mut warnings = Vec::new();
    let mut specs = rules::pack_specs()?;
    let mut user = Vec::new();
    let mut rule_paths: Vec<PathBuf> = Vec::new();
    if let Some(l) = &loaded {
        rule_paths.extend(l.config.rules.iter().map(|p| l.resolve(p)));
    }
    rule_paths.extend(o.rules.iter().cloned());
    for p in &rule_paths {
        user.extend(rules::load_path(p)?);
    }
    let mut allowlists = Vec::new();
    let mut key = Sha256::new();
    key.update(env!("CARGO_PKG_VERSION").as_bytes());
    let gitleaks = match (&o.gitleaks_config, &loaded) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(l)) => l.config.gitleaks_config.as_ref().map(|p| l.resolve(p)),
        _ => None,
    };
    if let Some(p) = gitleaks {
        let text = std::fs::read_to_string(&p).map_err(|error| SettingsError::Gitleaks {
            path: p.clone(),
            error,
        })?;
        key.update(b"\0gitleaks\0");
        key.update(text.as_bytes());
        let imported = rules::gitleaks::import(&p.display().to_string(), &text)?;
        for u in &imported.unsupported {
            warnings.push((p.clone(), u.to_string()));
        }
        user.extend(imported.rules);
        allowlists.extend(imported.allowlists);
    }
    if !user.is_empty() {
        RuleSet::new(user.clone(), true)?;
        specs.extend(user);
    }
    if let Some(c) = cfg {
        for id in &c.disabled_rules {
            if !specs.iter().any(|(_, s)| &s.id == id) {
                return Err(SettingsError::UnknownDisabledRule {
                    file: loaded
                        .as_ref()
                        .map(|l| l.path.display().to_string())
                        .unwrap_or_default(),
                    id: id.clone(),
                });
            }
        }
        specs.retain(|(_, s)| !c.disabled_rules.contains(&s.id));
    }
    if let Some(l) = &loaded {
        let name = l.path.display().to_string();
        key.update(format!("\0allowlists\0{:?}", l.config.allowlist).as_bytes());
        for (i, a) in l.config.allowlist.iter().enumerate() {
            allowlists.push(Allowlist::new(a, &format!(" #{} in {name}", i + 1))?);
        }
    }
    let min_confidence = o
        .min_confidence
        .or(cfg.and_then(|c| c.min_confidence))
        .unwrap_or(Confidence::Medium);
    let max_file_size = match o.max_file_size {
        Some(m) => m,
        None => match &loaded {
            Some(l) => l.max_file_size()?.unwrap_or(DEFAULT_MAX_FILE_SIZE),
            None => DEFAULT_MAX_FILE_SIZE,
        },
    };
    let base = root.map(|r| {
        if r.is_dir() {
            r.to_path_buf()
        } else {
            r.parent().map(Path::to_path_buf).unwrap_or_default()
        }
    });
    let policy = Policy {
        allowlists,
        base,
        ignore_inline_markers: cfg.and_then(|c| c.ignore_inline_markers).unwrap_or(false),
    };
    let decoding = !o.no_decode && cfg.and_then(|c| c.decoders).unwrap_or(true);
    if o.decode.max_depth > crate::decode::MAX_DEPTH {
        return Err(SettingsError::DecodeDepth {
            depth: o.decode.max_depth,
            max: crate::decode::MAX_DEPTH,
        });
    }
    let decode = Limits {
        max_depth: if decoding { o.decode.max_depth } else { 0 },
        ..o.decode
    };
    let options = EngineOptions {
        show_secrets: o.show_secrets,
        min_confidence,
        decode,
    };
    // Rule specs and options are plain data: their Debug text is stable.
    for (file, spec) in &specs {
        key.update(format!("\0rule\0{file}\0{spec:?}").as_bytes());
    }
    key.update(
        format!(
            "\0options\0{options:?}\0{max_file_size}\0{:?}\0{}",
            policy.base, policy.ignore_inline_markers
        )
        .as_bytes(),
    );
    let results_key = crate::source::image::hex(&key.finalize());
    let scanner = Scanner::new(RuleSet::new(specs, false)?, options).with_policy(policy);
    let registries = loaded
        .as_ref()
        .map(|l| l.config.registries.clone())
        .unwrap_or_default();
    Ok(Settings {
        scanner,
        max_file_size,
        min_confidence,
        warnings,
        results_key,
        registries,
    })
}
