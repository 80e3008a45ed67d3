//! The protocols' encodings, below the targets that send them.

pub(crate) mod remote_write;
