//! `Blob` and `Origin`: bytes to scan and where they came from.
//!
//! `Origin` is the only type that knows what a "file" or "stdin" is; the engine
//! and reporters treat every blob alike. Later sources (Git commits, image
//! layers, log streams, decoded content) add variants here.

use std::fmt;

/// Where a blob's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A file on disk, named by the path as the user gave it (relative paths
    /// stay relative so reports are stable across checkouts).
    File { path: String },
    /// Standard input (`-`).
    Stdin,
}

impl Origin {
    /// The path reported for findings in this blob.
    pub fn display_path(&self) -> &str {
        match self {
            Origin::File { path } => path,
            Origin::Stdin => "-",
        }
    }

    /// Identity of the origin used in fingerprints: stable across runs and
    /// independent of offsets, so a finding keeps its fingerprint when lines move.
    pub fn identity(&self) -> String {
        match self {
            Origin::File { path } => format!("file:{path}"),
            Origin::Stdin => "stdin".to_string(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_path())
    }
}

/// Bytes plus their origin.
#[derive(Clone, Debug)]
pub struct Blob {
    pub origin: Origin,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(origin: Origin, data: Vec<u8>) -> Self {
        Blob { origin, data }
    }
}
