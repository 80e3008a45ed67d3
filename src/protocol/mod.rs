//! The wire formats, each with one owner: the Pushgateway's group path, a series' samples,
//! and the encoders of a snapshot (text, protobuf, remote write).

pub(crate) mod group;
pub(crate) mod protobuf;
pub(crate) mod remote_write;
pub(crate) mod samples;
pub(crate) mod text;
