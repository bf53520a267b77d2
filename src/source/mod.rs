//! Sources enumerate blobs and nothing else.

pub mod cluster;
pub mod fs;
pub mod git;
pub mod image;
pub mod stream;
