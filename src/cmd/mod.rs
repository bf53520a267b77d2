//! Subcommand handlers: each turns its command line into a source, runs
//! it, and reports. `main.rs` dispatches here.

pub mod cluster;
pub mod image;
pub mod logs;
pub mod merge;
