//! Compiling rule specs into a `RuleSet`: one keyword finder over every
//! rule, and each rule's regex compiled on first use.
//!
//! Regexes are compiled lazily (a `OnceLock` per rule) because most scans
//! touch few rules: a 10-file scan must not pay for 250 regex compilations.
//! Validation (`RuleSet::new` with `validate = true`) compiles every regex
//! eagerly so user rule files fail fast with file, rule id and reason.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_automata::{PatternID, meta, util::syntax};

use super::keywords::KeywordFinder;
use super::{RuleError, RuleSpec};

/// Largest distance allowed between a proximity rule's keyword and its match.
pub const MAX_PROXIMITY: usize = 1024;

/// Largest window searched on each side of a keyword hit, for regexes whose
/// longest match is unbounded. 16 KiB holds a PEM-armoured 8192-bit RSA key
/// (about 6.5 KB), the longest secret the default pack looks for.
pub const MAX_WINDOW: usize = 16 * 1024;

/// Index of a rule inside its `RuleSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u32);

impl RuleId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A rule ready for matching.
#[derive(Debug)]
pub struct Rule {
    pub spec: RuleSpec,
    /// The file the rule was loaded from (for messages).
    pub file: String,
    /// Lowercased keywords.
    pub keywords: Vec<String>,
    /// How far from a keyword hit a match can reach: the regex's longest
    /// possible match, capped at `MAX_WINDOW`.
    pub window: usize,
    /// Length of the longest keyword (bounds the proximity search).
    pub longest_keyword: usize,
    /// The rule's own allowlist (`allow` in its spec), compiled on first
    /// use unless the set was built with validation.
    allow: OnceLock<Option<crate::allow::Allowlist>>,
    /// `path` compiled: findings only in paths it matches.
    pub path: Option<meta::Regex>,
    regex: OnceLock<CompiledRegex>,
}

#[derive(Debug)]
struct CompiledRegex {
    regex: meta::Regex,
    secret_group: usize,
}

impl Rule {
    /// The compiled regex and the index of the secret's capture group.
    pub fn regex(&self) -> (&meta::Regex, usize) {
        let c = self.regex.get_or_init(|| {
            // Every rule went through `compile_regex` in `RuleSet::new`'s
            // validation of the spec, so this cannot fail.
            compile_regex(&self.spec.regex, self.spec.secret_group)
                .expect("rule regex was validated when the set was built")
        });
        (&c.regex, c.secret_group)
    }

    /// The rule's own allowlist, if its spec has one.
    pub fn allow(&self) -> Option<&crate::allow::Allowlist> {
        self.allow
            .get_or_init(|| {
                // Checked when the set was built (`compile_allow`), or by
                // the pack's tests for the embedded rules.
                compile_allow(&self.spec).expect("rule allow list was validated")
            })
            .as_ref()
    }
}

fn compile_allow(spec: &RuleSpec) -> Result<Option<crate::allow::Allowlist>, String> {
    match &spec.allow {
        None => Ok(None),
        Some(a) if !a.rules.is_empty() => {
            Err("allow.rules is for config files; a rule's own allow applies to it".into())
        }
        Some(a) => Ok(Some(
            crate::allow::Allowlist::new(a, "")
                .map_err(|e| e.to_string())?
                .for_rules(vec![spec.id.clone()]),
        )),
    }
}

fn syntax_config() -> syntax::Config {
    // ASCII semantics on raw bytes: `\w`, `\b`, `(?i)` are ASCII-only, and
    // `.` matches any byte, so invalid UTF-8 never stops a match and the lazy
    // DFA never has to fall back for Unicode word boundaries.
    syntax::Config::new().unicode(false).utf8(false)
}

fn compile_regex(pattern: &str, group: Option<usize>) -> Result<CompiledRegex, String> {
    let regex = meta::Regex::builder()
        .syntax(syntax_config())
        .configure(meta::Config::new().utf8_empty(false))
        .build(pattern)
        .map_err(|e| format!("invalid regex: {e}"))?;
    let info = regex.group_info();
    let groups = info.group_len(PatternID::ZERO);
    let secret_group = if let Some(g) = group {
        if g == 0 || g >= groups {
            return Err(format!(
                "secret_group = {g}, but the regex has {} capture group(s)",
                groups - 1
            ));
        }
        g
    } else if let Some(i) = info.to_index(PatternID::ZERO, "secret") {
        i
    } else {
        match groups {
            2 => 1,
            1 => return Err("regex has no capture group: wrap the secret in (…)".into()),
            n => {
                return Err(format!(
                    "regex has {} capture groups: use one, or name the secret's group (?P<secret>…)",
                    n - 1
                ));
            }
        }
    };
    Ok(CompiledRegex {
        regex,
        secret_group,
    })
}

/// Parses a pattern with the same syntax settings the matcher uses.
fn parse_hir(pattern: &str) -> Result<regex_syntax::hir::Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| format!("invalid regex: {e}"))
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Checks a spec and returns its lowercased keywords and window.
fn check_spec(spec: &RuleSpec, eager: bool) -> Result<(Vec<String>, usize), String> {
    if !is_kebab_case(&spec.id) {
        return Err("id must be kebab-case (a-z, 0-9 and '-')".into());
    }
    if spec.name.trim().is_empty() {
        return Err("name is empty".into());
    }
    if spec.description.trim().is_empty() {
        return Err("description is empty".into());
    }
    if spec.keywords.is_empty() && spec.scope == super::KeywordScope::Match {
        return Err(
            "keywords is empty: every rule needs at least one literal (or scope = \"blob\", \
             which runs the regex over every blob)"
                .into(),
        );
    }
    let mut keywords = Vec::new();
    for k in &spec.keywords {
        if k.is_empty() {
            return Err("keywords contains an empty string".into());
        }
        keywords.push(k.to_ascii_lowercase());
    }
    if let Some(e) = spec.min_entropy
        && !(0.0..=8.0).contains(&e)
    {
        return Err(format!("min_entropy {e} is outside 0..=8 bits per byte"));
    }
    if let Some(p) = spec.proximity {
        if !(1..=MAX_PROXIMITY).contains(&p) {
            return Err(format!(
                "proximity {p} is outside 1..={MAX_PROXIMITY} bytes"
            ));
        }
        if spec.scope == super::KeywordScope::Blob {
            return Err(
                "proximity needs keywords near the match; scope = \"blob\" has none".into(),
            );
        }
    }
    // The embedded pack's regexes were parsed by build.rs and are compiled
    // whole by the tests; others are parsed here.
    let max_len = match spec.prebuilt_max_len {
        Some(m) if !eager => m,
        _ => {
            let hir = parse_hir(&spec.regex)?;
            if spec.secret_group.is_none() {
                check_groups(&hir)?;
            }
            hir.properties().maximum_len()
        }
    };
    let window = max_len.unwrap_or(MAX_WINDOW).min(MAX_WINDOW);
    if eager {
        compile_regex(&spec.regex, spec.secret_group)?;
    }
    Ok((keywords, window))
}

/// Every rule of a scan, compiled once and shared by all threads.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Every rule's keywords; `None` when no rule has one.
    keywords: Option<KeywordFinder>,
    /// For each keyword (pattern id), the rules that use it.
    keyword_rules: Vec<Vec<RuleId>>,
    /// Rules without keywords: tried on every blob.
    always: Vec<RuleId>,
    /// How to search only near a changed part of a blob; built on first
    /// use (`None`: this set cannot be scanned that way).
    near: OnceLock<Option<Near>>,
}

/// Rules whose matches reach at most this far from their keyword are
/// looked for with every keyword close to a change; the few that reach
/// further (multi-line keys, unbounded values) get a keyword finder of
/// their own for the bands beyond.
const NEAR_REACH: usize = 1024;

/// What a scan of a changed part of a blob searches (`RuleSet::near`).
#[derive(Debug)]
pub struct Near {
    /// How far from the change every keyword is searched: the furthest
    /// any near rule's match lies from its keyword (longest match, plus
    /// proximity, plus longest keyword). A keyword further away cannot be
    /// in a match touching the change.
    pub reach: usize,
    /// The far rules' keywords, searched from `reach` out to `far.reach`.
    pub far: Option<Far>,
}

/// The keywords of the rules whose matches reach further than `Near::reach`.
#[derive(Debug)]
pub struct Far {
    pub reach: usize,
    /// The longest of the far rules' keywords.
    pub longest_keyword: usize,
    pub keywords: KeywordFinder,
    /// For each pattern of `keywords`, the far rules using it.
    pub keyword_rules: Vec<Vec<RuleId>>,
}

impl RuleSet {
    /// Builds a set from `(file, spec)` pairs. With `validate`, every regex is
    /// compiled now (use it for user-supplied rules); otherwise regexes are
    /// compiled on first use, and only their syntax and shape are checked.
    pub fn new(specs: Vec<(String, RuleSpec)>, validate: bool) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        let mut seen: HashMap<String, String> = HashMap::new();
        for (file, spec) in specs {
            let invalid = |reason: String| RuleError::Invalid {
                file: file.clone(),
                rule_id: spec.id.clone(),
                reason,
            };
            if let Some(prev) = seen.get(&spec.id) {
                return Err(invalid(format!(
                    "duplicate rule id (first defined in {prev})"
                )));
            }
            let (keywords, window) = check_spec(&spec, validate).map_err(invalid)?;
            let allow = OnceLock::new();
            if validate || spec.prebuilt_max_len.is_none() {
                let _ = allow.set(compile_allow(&spec).map_err(invalid)?);
            }
            let path = match &spec.path {
                None => None,
                Some(p) => Some(
                    meta::Regex::builder()
                        .syntax(syntax_config())
                        .build(p)
                        .map_err(|e| invalid(format!("invalid path regex: {e}")))?,
                ),
            };
            seen.insert(spec.id.clone(), file.clone());
            rules.push(Rule {
                path,
                spec,
                file,
                longest_keyword: keywords.iter().map(String::len).max().unwrap_or(0),
                keywords,
                window,
                allow,
                regex: OnceLock::new(),
            });
        }

        let (patterns, keyword_rules) = keyword_table(&rules, 0..rules.len());
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(
                KeywordFinder::new(&patterns).map_err(|e| RuleError::Invalid {
                    file: "<keywords>".into(),
                    rule_id: "*".into(),
                    reason: format!("cannot build the keyword search: {e}"),
                })?,
            )
        };
        let always = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.keywords.is_empty())
            .map(|(i, _)| RuleId(i as u32))
            .collect();
        Ok(RuleSet {
            rules,
            keywords,
            keyword_rules,
            always,
            near: OnceLock::new(),
        })
    }

    /// The default pack embedded in the binary.
    pub fn embedded() -> Result<RuleSet, RuleError> {
        RuleSet::new(super::pack_specs()?, false)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.index()]
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule's keywords; `None` when no rule has one.
    pub fn keywords(&self) -> Option<&KeywordFinder> {
        self.keywords.as_ref()
    }

    /// Rules without keywords, tried on every blob.
    pub fn always(&self) -> &[RuleId] {
        &self.always
    }

    /// Rules that use the keyword with pattern id `pattern`.
    pub fn rules_for_keyword(&self, pattern: usize) -> &[RuleId] {
        &self.keyword_rules[pattern]
    }

    /// How to scan only near what changed in a blob: every keyword
    /// within the reach of most rules, the far-reaching rules' keywords
    /// beyond. `None` when the set has rules without keywords or of blob
    /// scope (their matches need not lie near a keyword, so such a set is
    /// always scanned whole).
    pub fn near(&self) -> Option<&Near> {
        self.near
            .get_or_init(|| {
                let whole =
                    |r: &Rule| r.keywords.is_empty() || r.spec.scope == super::KeywordScope::Blob;
                if self.keywords.is_none() || self.rules.iter().any(whole) {
                    return None;
                }
                let reach = |r: &Rule| r.window + r.spec.proximity.unwrap_or(0) + r.longest_keyword;
                let (near, far): (Vec<usize>, Vec<usize>) =
                    (0..self.rules.len()).partition(|&i| reach(&self.rules[i]) <= NEAR_REACH);
                let furthest = |ids: &[usize]| ids.iter().map(|&i| reach(&self.rules[i])).max();
                let far = match furthest(&far) {
                    None => None,
                    Some(r) => Some(self.far(&far, r)?),
                };
                Some(Near {
                    reach: furthest(&near).unwrap_or(0),
                    far,
                })
            })
            .as_ref()
    }

    fn far(&self, ids: &[usize], reach: usize) -> Option<Far> {
        let (patterns, keyword_rules) = keyword_table(&self.rules, ids.iter().copied());
        let keywords = KeywordFinder::new(&patterns).ok()?;
        Some(Far {
            reach,
            longest_keyword: patterns.iter().map(|p| p.len()).max().unwrap_or(0),
            keywords,
            keyword_rules,
        })
    }
}

/// The distinct keywords of `rules[ids]` and, for each, the rules using it.
fn keyword_table(
    rules: &[Rule],
    ids: impl IntoIterator<Item = usize>,
) -> (Vec<String>, Vec<Vec<RuleId>>) {
    let mut patterns: Vec<String> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut keyword_rules: Vec<Vec<RuleId>> = Vec::new();
    for i in ids {
        let id = RuleId(i as u32);
        for k in &rules[i].keywords {
            let pid = *index.entry(k).or_insert_with(|| {
                patterns.push(k.clone());
                keyword_rules.push(Vec::new());
                patterns.len() - 1
            });
            if !keyword_rules[pid].contains(&id) {
                keyword_rules[pid].push(id);
            }
        }
    }
    (patterns, keyword_rules)
}

/// Checks the capture-group shape from the parsed syntax tree, without
/// building the regex's automata.
fn check_groups(hir: &regex_syntax::hir::Hir) -> Result<(), String> {
    let mut names = Vec::new();
    collect_group_names(hir, &mut names);
    if names.iter().any(|n| n.as_deref() == Some("secret")) {
        return Ok(());
    }
    match names.len() {
        1 => Ok(()),
        0 => Err("regex has no capture group: wrap the secret in (…)".into()),
        n => Err(format!(
            "regex has {n} capture groups: use one, or name the secret's group (?P<secret>…)"
        )),
    }
}

fn collect_group_names(hir: &regex_syntax::hir::Hir, out: &mut Vec<Option<String>>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            out.push(c.name.as_ref().map(|n| n.to_string()));
            collect_group_names(&c.sub, out);
        }
        HirKind::Concat(hs) | HirKind::Alternation(hs) => {
            for h in hs {
                collect_group_names(h, out);
            }
        }
        HirKind::Repetition(r) => collect_group_names(&r.sub, out),
        _ => {}
    }
}
