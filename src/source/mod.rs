//! Sources enumerate blobs and nothing else.

pub mod fs;
pub mod git;
pub mod image;
pub mod pods;
pub mod stream;
