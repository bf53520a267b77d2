//! leakhound: finds leaked secrets in files, Git history, container images
//! and log streams.
//!
//! The library face: a `RuleSet` (rules as data), a `Scanner` (the engine),
//! `Blob`/`Origin` (what is scanned and where it came from), `Finding` (the
//! JSON contract), sources, the pipeline and reporters. See
//! `docs/architecture.md` for the picture.

pub mod allow;
pub mod blob;
pub mod config;
pub mod decode;
pub mod engine;
pub mod finding;
pub mod metrics;
pub mod notice;
pub mod pipeline;
pub mod platform;
pub mod report;
pub mod rules;
pub mod settings;
pub mod source;

pub use blob::{Blob, Origin};
pub use engine::{EngineOptions, Scanner};
pub use finding::Finding;
pub use notice::{Notice, NoticeKind};
pub use rules::{Rule, RuleSet};
pub use settings::{Overrides, Settings};
