//! Allowlists: what a team has reviewed and wants silenced, without silencing
//! anything else.
//!
//! One model serves three writers: a rule's own `allow` table in a rule file,
//! `[[allowlist]]` tables in `.leakhound.toml`, and allowlists imported from a
//! gitleaks config. An allowlist matches a finding by its path (globs, or
//! regexes for gitleaks), by regexes over the secret or its line, by
//! stopwords inside the secret, or by the commit that introduced it; a list
//! with several criteria matches when any of them does (`condition = "and"`:
//! when all of the given ones do).
//!
//! Inline markers (`leakhound:allow`, and `gitleaks:allow` and
//! `pragma: allowlist secret` for teams migrating) live here too.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use serde::Deserialize;

/// Comments that silence the line they are on.
pub const INLINE_MARKERS: [&str; 3] = [
    "leakhound:allow",
    "gitleaks:allow",
    "pragma: allowlist secret",
];

/// True if `line` carries an inline allow marker.
pub fn has_inline_marker(line: &[u8]) -> bool {
    INLINE_MARKERS
        .iter()
        .any(|m| memchr::memmem::find(line, m.as_bytes()).is_some())
}

/// What `regexes` are matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The secret (the rule's capture group).
    #[default]
    Secret,
    /// The whole line(s) the secret is on.
    Line,
}

/// How several criteria of one allowlist combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    #[default]
    Or,
    And,
}

/// An allowlist as written in TOML (a rule's `allow`, or `[[allowlist]]` in
/// `.leakhound.toml`). Documented in docs/configuration.md.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSpec {
    /// Why this is allowed (shown by `--verbose`).
    #[serde(default)]
    pub description: Option<String>,
    /// Rule ids this list applies to; empty: every rule. Not allowed inside
    /// a rule's own `allow`.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Path globs (`fixtures/**`, `*.lock`; a glob without `/` matches the
    /// file name at any depth), relative to the scan root.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Regexes matched (unanchored) against the `target`.
    #[serde(default)]
    pub regexes: Vec<String>,
    #[serde(default)]
    pub target: Target,
    /// Words that, inside the secret (case-insensitive), mark it harmless.
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// Commit ids (full or abbreviated) whose findings are allowed.
    #[serde(default)]
    pub commits: Vec<String>,
    #[serde(default)]
    pub condition: Condition,
}

/// Why an allowlist could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AllowError {
    #[error("allowlist{context}: invalid path glob `{glob}`: {reason}")]
    Glob {
        context: String,
        glob: String,
        reason: String,
    },
    #[error("allowlist{context}: invalid regex `{regex}`: {reason}")]
    Regex {
        context: String,
        regex: String,
        reason: String,
    },
    #[error("allowlist{context}: {reason}")]
    Invalid { context: String, reason: String },
}

/// What an allowlist looks at.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub rule_id: &'a str,
    /// The finding's path relative to the scan root (see `Policy::relative`).
    pub path: Option<&'a str>,
    pub secret: &'a [u8],
    pub line: &'a [u8],
    pub commit: Option<&'a str>,
}

/// A compiled allowlist.
#[derive(Debug)]
pub struct Allowlist {
    pub description: Option<String>,
    rules: Vec<String>,
    globs: Option<GlobSet>,
    path_regexes: Vec<Regex>,
    regexes: Vec<Regex>,
    target: Target,
    stopwords: Vec<String>,
    commits: Vec<String>,
    condition: Condition,
}

fn compile_regex(context: &str, pattern: &str) -> Result<Regex, AllowError> {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(pattern)
        .map_err(|e| AllowError::Regex {
            context: context.to_string(),
            regex: pattern.to_string(),
            reason: e.to_string(),
        })
}

/// A gitignore-like glob: no `/` matches at any depth, a leading `/`
/// anchors at the root, a trailing `/` means everything below.
fn glob_for(pattern: &str) -> String {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    let mut g = if let Some(rooted) = p.strip_prefix('/') {
        rooted.to_string()
    } else if !p.trim_end_matches('/').contains('/') {
        format!("**/{p}")
    } else {
        p.to_string()
    };
    if g.ends_with('/') {
        g.push_str("**");
    }
    g
}

impl Allowlist {
    /// Compiles a spec; `context` names where it came from in errors (e.g.
    /// ` in .leakhound.toml #2`).
    pub fn new(spec: &AllowSpec, context: &str) -> Result<Allowlist, AllowError> {
        Allowlist::build(spec, &[], context)
    }

    /// Like `new`, with path regexes besides the globs (gitleaks `paths`
    /// are regexes).
    pub fn build(
        spec: &AllowSpec,
        path_regexes: &[String],
        context: &str,
    ) -> Result<Allowlist, AllowError> {
        let mut globs = None;
        if !spec.paths.is_empty() {
            let mut b = GlobSetBuilder::new();
            for p in &spec.paths {
                let glob: Glob = GlobBuilder::new(&glob_for(p))
                    .literal_separator(true)
                    .build()
                    .map_err(|e| AllowError::Glob {
                        context: context.to_string(),
                        glob: p.clone(),
                        reason: e.kind().to_string(),
                    })?;
                b.add(glob);
            }
            globs = Some(b.build().map_err(|e| AllowError::Glob {
                context: context.to_string(),
                glob: spec.paths.join(", "),
                reason: e.to_string(),
            })?);
        }
        let regexes = spec
            .regexes
            .iter()
            .map(|r| compile_regex(context, r))
            .collect::<Result<Vec<_>, _>>()?;
        let list = Allowlist {
            description: spec.description.clone(),
            rules: spec.rules.clone(),
            globs,
            path_regexes: path_regexes
                .iter()
                .map(|r| compile_regex(context, r))
                .collect::<Result<Vec<_>, _>>()?,
            regexes,
            target: spec.target,
            stopwords: spec.stopwords.iter().map(|s| s.to_lowercase()).collect(),
            commits: spec.commits.iter().map(|c| c.to_lowercase()).collect(),
            condition: spec.condition,
        };
        if list.is_empty() {
            return Err(AllowError::Invalid {
                context: context.to_string(),
                reason: "it has no paths, regexes, stopwords or commits, so it would match \
                         nothing (or, with condition = \"and\", everything)"
                    .into(),
            });
        }
        Ok(list)
    }

    /// Restricts the list to these rule ids.
    pub fn for_rules(mut self, ids: Vec<String>) -> Self {
        self.rules = ids;
        self
    }

    fn is_empty(&self) -> bool {
        self.globs.is_none()
            && self.path_regexes.is_empty()
            && self.regexes.is_empty()
            && self.stopwords.is_empty()
            && self.commits.is_empty()
    }

    /// True if the list concerns findings of `rule_id`.
    pub fn applies_to(&self, rule_id: &str) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r == rule_id)
    }

    /// True if the list allows this finding (`applies_to` is checked too).
    pub fn allows(&self, s: &Subject<'_>) -> bool {
        if !self.applies_to(s.rule_id) {
            return false;
        }
        // Each criterion that is given: Some(matched).
        let mut checks: [Option<bool>; 4] = [None; 4];
        if self.globs.is_some() || !self.path_regexes.is_empty() {
            checks[0] = Some(s.path.is_some_and(|p| {
                self.globs.as_ref().is_some_and(|g| g.is_match(p))
                    || self.path_regexes.iter().any(|r| r.is_match(p))
            }));
        }
        if !self.regexes.is_empty() {
            let hay = match self.target {
                Target::Secret => s.secret,
                Target::Line => s.line,
            };
            checks[1] = Some(self.regexes.iter().any(|r| r.is_match(hay)));
        }
        if !self.stopwords.is_empty() {
            let secret = String::from_utf8_lossy(s.secret).to_lowercase();
            checks[2] = Some(self.stopwords.iter().any(|w| secret.contains(w.as_str())));
        }
        if !self.commits.is_empty() {
            checks[3] = Some(s.commit.is_some_and(|c| {
                let c = c.to_lowercase();
                self.commits.iter().any(|a| c.starts_with(a.as_str()))
            }));
        }
        let mut given = checks.iter().flatten();
        match self.condition {
            Condition::Or => given.any(|&m| m),
            Condition::And => given.all(|&m| m),
        }
    }
}

/// Everything that can silence a finding: allowlists and whether inline
/// markers are honoured, plus the base directory path globs are relative to.
#[derive(Debug, Default)]
pub struct Policy {
    pub allowlists: Vec<Allowlist>,
    /// Directory that path globs are relative to (where the config file
    /// lives, or the scan root); paths outside it are matched as given.
    pub base: Option<std::path::PathBuf>,
    /// Ignore inline markers (an audit that must see everything).
    pub ignore_inline_markers: bool,
}

/// Why a finding was not reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppressed {
    Inline,
    Allowlist,
    /// The rule's `path` does not cover the file (not counted as silenced).
    OutOfScope,
}

impl Policy {
    /// A finding's path as allowlists see it: relative to `base` when it lies
    /// under it, without a leading `./`.
    pub fn relative<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        use std::path::Path;
        let p = Path::new(path);
        if let Some(base) = &self.base
            && let Ok(rel) = p.strip_prefix(base)
            && !rel.as_os_str().is_empty()
        {
            return rel.to_string_lossy().into_owned().into();
        }
        path.strip_prefix("./").unwrap_or(path).into()
    }

    /// Why `s` is not reported, if it is not.
    pub fn check(&self, s: &Subject<'_>) -> Option<Suppressed> {
        let rel = s.path.map(|p| self.relative(p));
        self.check_relative(&Subject {
            path: rel.as_deref(),
            ..*s
        })
    }

    /// `check` for a subject whose path is already `relative`.
    pub fn check_relative(&self, s: &Subject<'_>) -> Option<Suppressed> {
        if !self.ignore_inline_markers && has_inline_marker(s.line) {
            return Some(Suppressed::Inline);
        }
        self.allowlists
            .iter()
            .any(|a| a.allows(s))
            .then_some(Suppressed::Allowlist)
    }

    /// True if every finding in `path` would be allowed whatever its rule
    /// (a global list matching on path alone): lets sources skip reading it.
    pub fn skips_path(&self, path: &str) -> bool {
        let rel = self.relative(path);
        self.allowlists.iter().any(|a| {
            a.rules.is_empty()
                && a.regexes.is_empty()
                && a.stopwords.is_empty()
                && a.commits.is_empty()
                && (a.globs.as_ref().is_some_and(|g| g.is_match(rel.as_ref()))
                    || a.path_regexes.iter().any(|r| r.is_match(rel.as_bytes())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(path: Option<&'a str>, secret: &'a [u8], line: &'a [u8]) -> Subject<'a> {
        Subject {
            rule_id: "github-pat",
            path,
            secret,
            line,
            commit: None,
        }
    }

    fn list(toml_text: &str) -> Allowlist {
        let spec: AllowSpec = toml::from_str(toml_text).expect("spec parses");
        Allowlist::new(&spec, "").expect("spec compiles")
    }

    #[test]
    fn globs_without_a_slash_match_at_any_depth_and_others_from_the_root() {
        let a = list(r#"paths = ["*.lock", "fixtures/**", "/docs/"]"#);
        let ok = |p: &str| a.allows(&subject(Some(p), b"s", b""));
        assert!(ok("Cargo.lock"));
        assert!(ok("vendor/x/yarn.lock"));
        assert!(ok("fixtures/a/b.txt"));
        assert!(ok("docs/guide.md"));
        assert!(!ok("src/fixtures/a.txt"));
        assert!(!ok("src/main.rs"));
    }

    #[test]
    fn regexes_match_the_secret_or_the_line_as_asked() {
        let secret = list(r#"regexes = ["EXAMPLE$"]"#);
        assert!(secret.allows(&subject(None, b"AKIAIOSFODNN7EXAMPLE", b"key = x")));
        assert!(!secret.allows(&subject(None, b"AKIAIOSFODNN7REALKEY", b"EXAMPLE"))); // leakhound:allow
        let line = list(
            r#"regexes = ["^\\s*#"]
target = "line""#,
        );
        assert!(line.allows(&subject(None, b"x", b"  # token = x")));
        assert!(!line.allows(&subject(None, b"x", b"token = x")));
    }

    #[test]
    fn stopwords_are_case_insensitive_substrings_of_the_secret() {
        let a = list(r#"stopwords = ["Dummy"]"#);
        assert!(a.allows(&subject(None, b"ghp_DUMMYxxxx", b"")));
        assert!(!a.allows(&subject(None, b"ghp_realvalue", b"dummy on the line")));
    }

    #[test]
    fn and_condition_needs_every_given_criterion() {
        let a = list(
            r#"paths = ["tests/**"]
stopwords = ["fake"]
condition = "and""#,
        );
        assert!(a.allows(&subject(Some("tests/a.rs"), b"fake-1", b"")));
        assert!(!a.allows(&subject(Some("tests/a.rs"), b"real-1", b"")));
        assert!(!a.allows(&subject(Some("src/a.rs"), b"fake-1", b"")));
    }

    #[test]
    fn lists_apply_only_to_their_rules() {
        let a = list(
            r#"rules = ["aws-access-key-id"]
stopwords = ["x"]"#,
        );
        assert!(!a.allows(&subject(None, b"x", b"")));
    }

    #[test]
    fn an_empty_list_is_refused() {
        let spec: AllowSpec = toml::from_str(r#"description = "nothing""#).unwrap();
        assert!(Allowlist::new(&spec, "").is_err());
    }

    #[test]
    fn inline_markers_of_leakhound_gitleaks_and_detect_secrets_are_honoured() {
        let p = Policy::default();
        for line in [
            &b"token = x # leakhound:allow"[..],
            b"token = x // gitleaks:allow",
            b"token = x  # pragma: allowlist secret",
        ] {
            assert_eq!(
                p.check(&subject(None, b"x", line)),
                Some(Suppressed::Inline)
            );
        }
        assert_eq!(p.check(&subject(None, b"x", b"token = x")), None);
        let strict = Policy {
            ignore_inline_markers: true,
            ..Policy::default()
        };
        assert_eq!(
            strict.check(&subject(None, b"x", b"x # leakhound:allow")),
            None
        );
    }

    #[test]
    fn paths_are_made_relative_to_the_base() {
        let p = Policy {
            allowlists: vec![list(r#"paths = ["fixtures/**"]"#)],
            base: Some("repo".into()),
            ignore_inline_markers: false,
        };
        assert!(
            p.check(&subject(Some("repo/fixtures/a"), b"x", b""))
                .is_some()
        );
        assert!(p.check(&subject(Some("./fixtures/a"), b"x", b"")).is_some());
        assert!(
            p.check(&subject(Some("other/fixtures/a"), b"x", b""))
                .is_none()
        );
        assert!(p.skips_path("repo/fixtures/a"));
    }
}
