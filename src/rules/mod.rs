//! Rules: the file model, loading (embedded pack and user files), compilation
//! and validation. The examples self-test runs rules, so it lives with the
//! engine (`engine::selftest`).

mod compile;
pub mod gitleaks;
mod keywords;
mod load;
mod model;
pub mod validate;

pub use compile::{Far, MAX_WINDOW, Near, Rule, RuleId, RuleSet};
pub use keywords::KeywordFinder;
pub use load::{
    embedded_keywords, embedded_specs, load_path, pack_examples, pack_specs, parse_rule_file,
};
pub use model::{Confidence, Example, KeywordScope, RuleContext, RuleFile, RuleSpec, Severity};
pub use validate::{Validator, Verdict};

/// Why a rule file or rule could not be used. Every variant names the file
/// (and the rule id where there is one) so the user knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{file}: cannot read rule file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: invalid TOML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: rule `{rule_id}`: {reason}")]
    Invalid {
        file: String,
        rule_id: String,
        reason: String,
    },
}
