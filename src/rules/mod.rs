//! Rules: the file model, loading (embedded pack and user files), compilation
//! and validation. The examples self-test runs rules, so it lives with the
//! engine (`engine::selftest`).

mod compile;
mod load;
mod model;

pub use compile::{MAX_WINDOW, Rule, RuleId, RuleSet};
pub use load::{embedded_specs, load_path, parse_rule_file};
pub use model::{Confidence, Example, RuleContext, RuleFile, RuleSpec, Severity};

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
