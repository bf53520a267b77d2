//! Sources enumerate blobs and nothing else.

pub mod fs;
pub mod stream;
