//! What runs the exporter's work: its own threads.

pub(crate) mod thread;
