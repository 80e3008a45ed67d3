//! The wire formats, each with one owner: the Pushgateway's group path, a series' samples,
//! and the encoders of a snapshot (text, protobuf).

pub(crate) mod group;
pub(crate) mod protobuf;
pub(crate) mod samples;
pub(crate) mod text;
