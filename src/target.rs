//! What a target is and how it is pushed to: its [`TargetKind`] and the [`PushMethod`] of a
//! Pushgateway push.

/// The kind of a [`Target`](crate::Target); displayed as `Pushgateway`, `remote write` or `textfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetKind {
    /// A Prometheus Pushgateway.
    Pushgateway,
    /// A Prometheus remote-write receiver.
    RemoteWrite,
    /// node_exporter's textfile collector directory.
    Textfile,
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetKind::Pushgateway => "Pushgateway",
            TargetKind::RemoteWrite => "remote write",
            TargetKind::Textfile => "textfile",
        })
    }
}

/// The HTTP method of a push.
///
/// Source: the Pushgateway README, "PUT method" and "POST method".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PushMethod {
    /// Replace every metric of the group (the default). Metrics recorded by an earlier run but
    /// not by this one disappear from the gateway.
    #[default]
    Put,
    /// Replace only the metric families present in the body; other families of the group stay.
    Post,
}

impl PushMethod {
    pub(crate) fn http(self) -> reqwest::Method {
        match self {
            PushMethod::Put => reqwest::Method::PUT,
            PushMethod::Post => reqwest::Method::POST,
        }
    }
}

/// What a push's body is, as a spooled record says: the text or protobuf exposition format
/// of a Pushgateway push (each gzipped or not), or remote-write requests (snappy, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text { gzip: bool },
    Protobuf { gzip: bool },
    RemoteWrite,
}

impl Format {
    /// The Pushgateway format of a push: protobuf or text, gzipped or not.
    pub(crate) fn pushgateway(protobuf: bool, gzip: bool) -> Self {
        match protobuf {
            true => Format::Protobuf { gzip },
            false => Format::Text { gzip },
        }
    }

    pub(crate) fn is_gzip(self) -> bool {
        matches!(
            self,
            Format::Text { gzip: true } | Format::Protobuf { gzip: true }
        )
    }

    pub(crate) fn is_protobuf(self) -> bool {
        matches!(self, Format::Protobuf { .. })
    }

    pub(crate) fn is_remote_write(self) -> bool {
        self == Format::RemoteWrite
    }
}
