//! Subcommand handlers: each turns its command line into a source, runs
//! it, and reports. `main.rs` dispatches here.

pub mod cluster;
pub mod git;
pub mod image;
pub mod init;
pub mod logs;
pub mod merge;
pub mod plan;
pub mod pods;
pub mod progress;
pub mod report;
pub mod rules;
pub mod scan;
