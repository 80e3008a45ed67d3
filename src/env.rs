//! The names of the environment variables read by
//! [`PushgatewayBuilder::from_env`](crate::PushgatewayBuilder::from_env) (and so by
//! [`init`](crate::init), [`try_init`](crate::try_init) and [`replay`](crate::replay)).
//!
//! Each constant is named as its variable and holds that name, so that
//! `std::env::set_var(env::PUSHGATEWAY_URL, …)` and a search for the variable both find it.
//! An unset variable, or one whose value is empty or only blanks, keeps the default; values
//! are trimmed. A value that does not parse is an
//! [`InitError::InvalidEnv`](crate::InitError::InvalidEnv) naming the variable and the value
//! (secrets shown as `***`). Settings made in code after `from_env()` come on top of those of
//! the environment, as the [`PushgatewayBuilder`](crate::PushgatewayBuilder) setters say
//! (`interval` replaces, `add_target` and `header` add).
//!
//! Value types: a **list** is comma-separated, blanks around an item trimmed and empty items
//! skipped (`a,,b` is `a,b`; `,` is as if unset); a **duration** is `15s`, `500ms`, `1m 30s`
//! (humantime) or a number of seconds (`2.5`); a **boolean** is `1`, `true`, `yes`, `on` or
//! `0`, `false`, `no`, `off` (any case); a **file** is the path of a regular file of at most
//! 1 MiB, read at `from_env()`.
//!
//! | variable | value | default | builder setting |
//! |---|---|---|---|
//! | [`PUSHGATEWAY_URL`] | list of Pushgateway URLs | `http://127.0.0.1:9091` when no target is set | [`new`](crate::PushgatewayBuilder::new), [`Target::pushgateway`](crate::Target::pushgateway) |
//! | [`PUSHGATEWAY_REMOTE_WRITE_URL`] | list of remote-write URLs | none | [`remote_write`](crate::PushgatewayBuilder::remote_write) |
//! | [`PUSHGATEWAY_TEXTFILE_DIR`] | directory | none | [`textfile`](crate::PushgatewayBuilder::textfile) |
//! | [`PUSHGATEWAY_GROUPING`] | list of `name=value` | none | [`grouping_label`](crate::PushgatewayBuilder::grouping_label) |
//! | [`PUSHGATEWAY_HOSTNAME_LABEL`] | label name | none | [`hostname_grouping_label`](crate::PushgatewayBuilder::hostname_grouping_label) |
//! | [`PUSHGATEWAY_CI_LABELS`] | boolean, or `commit` | off | [`ci_grouping_labels`](crate::PushgatewayBuilder::ci_grouping_labels) |
//! | [`PUSHGATEWAY_INTERVAL`] | duration, or `0`/`off` | 15 s | [`interval`](crate::PushgatewayBuilder::interval) |
//! | [`PUSHGATEWAY_PUSH_TIMEOUT`] | duration | 10 s | [`push_timeout`](crate::PushgatewayBuilder::push_timeout) |
//! | [`PUSHGATEWAY_SHUTDOWN_TIMEOUT`] | duration | 5 s | [`shutdown_timeout`](crate::PushgatewayBuilder::shutdown_timeout) |
//! | [`PUSHGATEWAY_USERNAME`] | text, no `:` | none | [`basic_auth`](crate::PushgatewayBuilder::basic_auth) |
//! | [`PUSHGATEWAY_PASSWORD`] | text (secret) | empty | [`basic_auth`](crate::PushgatewayBuilder::basic_auth) |
//! | [`PUSHGATEWAY_BEARER_TOKEN`] | text (secret) | none | [`bearer_token`](crate::PushgatewayBuilder::bearer_token) |
//! | [`PUSHGATEWAY_HEADERS`] | list of `name=value` (secret values) | none | [`header`](crate::PushgatewayBuilder::header) |
//! | [`PUSHGATEWAY_CA_FILE`] | file (PEM) | built-in roots only | [`ca_certificate`](crate::PushgatewayBuilder::ca_certificate) |
//! | [`PUSHGATEWAY_CLIENT_CERT_FILE`] | file (PEM) | none | [`client_identity`](crate::PushgatewayBuilder::client_identity) |
//! | [`PUSHGATEWAY_CLIENT_KEY_FILE`] | file (PEM) | none | [`client_identity`](crate::PushgatewayBuilder::client_identity) |
//! | [`PUSHGATEWAY_FORMAT`] | `protobuf` or `text` | `protobuf` | [`exposition_format`](crate::PushgatewayBuilder::exposition_format) |
//! | [`PUSHGATEWAY_HISTOGRAMS`] | `classic`, `native` or `both` | `classic` | [`histograms`](crate::PushgatewayBuilder::histograms) |
//! | [`PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES`] | whole number, 1 to 1,000,000 | 2,000 | [`remote_write_max_samples`](crate::PushgatewayBuilder::remote_write_max_samples) |
//! | [`PUSHGATEWAY_ALLOW`] | list of metric-name patterns | every metric | [`allow`](crate::PushgatewayBuilder::allow) |
//! | [`PUSHGATEWAY_DENY`] | list of metric-name patterns | none | [`deny`](crate::PushgatewayBuilder::deny) |
//! | [`PUSHGATEWAY_SELF_METRICS`] | boolean | on | [`self_metrics`](crate::PushgatewayBuilder::self_metrics) |
//! | [`PUSHGATEWAY_SPOOL_DIR`] | directory | none: no spool | [`spool_dir`](crate::PushgatewayBuilder::spool_dir) |
//! | [`PUSHGATEWAY_LISTEN`] | `ip:port` | none: not scraped | [`listen`](crate::PushgatewayBuilder::listen) |
//! | [`PUSHGATEWAY_DISABLED`] | boolean | off (pushing on) | [`enabled`](crate::PushgatewayBuilder::enabled) (inverted) |
//!
//! ```no_run
//! use metrics_exporter_pushgateway::env;
//!
//! // For a test that must not push: set before from_env() / init() reads it.
//! std::env::set_var(env::PUSHGATEWAY_DISABLED, "1");
//! let _guard = metrics_exporter_pushgateway::init("unit-test");
//! ```

// Targets.

/// The Pushgateway to push to, as a URL (`http://gw:9091`; no scheme means `http://`;
/// credentials in it are basic auth; a `/metrics/job/<job>{/<label>/<value>}` group path
/// gives the job and grouping labels), or a list of them, each pushed to on its own thread.
///
/// Default: `http://127.0.0.1:9091` ([`DEFAULT_ENDPOINT`](crate::DEFAULT_ENDPOINT)) when
/// neither this, [`PUSHGATEWAY_REMOTE_WRITE_URL`], [`PUSHGATEWAY_TEXTFILE_DIR`], a target in
/// code nor a [`PUSHGATEWAY_LISTEN`] address is set.
pub const PUSHGATEWAY_URL: &str = "PUSHGATEWAY_URL";

/// A Prometheus remote-write receiver to push to, as a URL
/// (`http://mimir:9009/api/v1/push`; a query string is kept), or a list of them. With this or
/// [`PUSHGATEWAY_TEXTFILE_DIR`] set and [`PUSHGATEWAY_URL`] unset, no Pushgateway is pushed
/// to. Needs the `remote-write` feature. Default: none.
pub const PUSHGATEWAY_REMOTE_WRITE_URL: &str = "PUSHGATEWAY_REMOTE_WRITE_URL";

/// node_exporter's textfile collector directory, a path: each push writes `<job>.prom` in it
/// (atomically). Default: none.
pub const PUSHGATEWAY_TEXTFILE_DIR: &str = "PUSHGATEWAY_TEXTFILE_DIR";

// The group.

/// Grouping labels, a list of `name=value` (`instance=shard-3,region=eu`): label names as
/// Prometheus's, not `job`, each once; values any text. Default: none.
pub const PUSHGATEWAY_GROUPING: &str = "PUSHGATEWAY_GROUPING";

/// The name of a grouping label whose value is this host's name (e.g. `instance`), read at
/// install ([`PushgatewayBuilder::hostname_grouping_label`](crate::PushgatewayBuilder::hostname_grouping_label)).
/// Default: none.
pub const PUSHGATEWAY_HOSTNAME_LABEL: &str = "PUSHGATEWAY_HOSTNAME_LABEL";

/// A boolean, or `commit`: on adds grouping labels from a CI environment (GitHub Actions,
/// GitLab CI: repository, workflow, ref), `commit` adds the commit too
/// ([`PushgatewayBuilder::ci_grouping_labels`](crate::PushgatewayBuilder::ci_grouping_labels)).
/// Default: off.
pub const PUSHGATEWAY_CI_LABELS: &str = "PUSHGATEWAY_CI_LABELS";

// Timing.

/// Time between interval pushes, a duration from 10 ms to 24 h; `0` or `off` turns interval
/// pushes off. Default: 15 s ([`DEFAULT_INTERVAL`](crate::DEFAULT_INTERVAL)).
pub const PUSHGATEWAY_INTERVAL: &str = "PUSHGATEWAY_INTERVAL";

/// Time budget of a push that is not the final one, retries included, a duration from 10 ms
/// to 1 h. Default: 10 s ([`DEFAULT_PUSH_TIMEOUT`](crate::DEFAULT_PUSH_TIMEOUT)).
pub const PUSHGATEWAY_PUSH_TIMEOUT: &str = "PUSHGATEWAY_PUSH_TIMEOUT";

/// Time budget of the final push, retries included, a duration from 10 ms to 1 h. Default:
/// 5 s ([`DEFAULT_SHUTDOWN_TIMEOUT`](crate::DEFAULT_SHUTDOWN_TIMEOUT)).
pub const PUSHGATEWAY_SHUTDOWN_TIMEOUT: &str = "PUSHGATEWAY_SHUTDOWN_TIMEOUT";

// Credentials and TLS.

/// User name for HTTP basic auth, text without `:`; needs [`PUSHGATEWAY_PASSWORD`] or goes
/// with an empty password. Default: none.
pub const PUSHGATEWAY_USERNAME: &str = "PUSHGATEWAY_USERNAME";

/// Password for HTTP basic auth, text (a secret: never shown); needs
/// [`PUSHGATEWAY_USERNAME`]. Default: none.
pub const PUSHGATEWAY_PASSWORD: &str = "PUSHGATEWAY_PASSWORD";

/// Bearer token, sent as `Authorization: Bearer <token>`: text valid in an HTTP header (a
/// secret: never shown). Default: none.
pub const PUSHGATEWAY_BEARER_TOKEN: &str = "PUSHGATEWAY_BEARER_TOKEN";

/// HTTP headers sent with every request, a list of `name=value` (the
/// `OTEL_EXPORTER_OTLP_HEADERS` convention; values may be percent-encoded, e.g. `%2C` for a
/// comma). Values are secrets; headers the transport sets (`Content-Type`, `Host`, …) are
/// refused. Default: none.
pub const PUSHGATEWAY_HEADERS: &str = "PUSHGATEWAY_HEADERS";

/// A file of PEM CA certificates to trust, in addition to the built-in roots, for a gateway
/// with a private CA. Needs the `tls` feature. Default: the built-in roots only.
pub const PUSHGATEWAY_CA_FILE: &str = "PUSHGATEWAY_CA_FILE";

/// A file of the PEM client certificate (chain) for mutual TLS; needs
/// [`PUSHGATEWAY_CLIENT_KEY_FILE`]. Needs the `tls` feature. Default: none.
pub const PUSHGATEWAY_CLIENT_CERT_FILE: &str = "PUSHGATEWAY_CLIENT_CERT_FILE";

/// A file of the PEM private key of the client certificate; needs
/// [`PUSHGATEWAY_CLIENT_CERT_FILE`]. Default: none.
pub const PUSHGATEWAY_CLIENT_KEY_FILE: &str = "PUSHGATEWAY_CLIENT_KEY_FILE";

// What is pushed, and how.

/// The body format of pushes to a Pushgateway: `protobuf` or `text` (any case)
/// ([`ExpositionFormat`](crate::ExpositionFormat)). Default: `protobuf`.
pub const PUSHGATEWAY_FORMAT: &str = "PUSHGATEWAY_FORMAT";

/// The form of every histogram: `classic`, `native` or `both` (any case)
/// ([`HistogramForm`](crate::HistogramForm)). Default: `classic`.
pub const PUSHGATEWAY_HISTOGRAMS: &str = "PUSHGATEWAY_HISTOGRAMS";

/// The most samples one remote-write request carries (a push with more goes as several
/// requests), a whole number from 1 to 1,000,000. Default: 2,000
/// ([`DEFAULT_REMOTE_WRITE_MAX_SAMPLES`](crate::DEFAULT_REMOTE_WRITE_MAX_SAMPLES)).
pub const PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES: &str = "PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES";

/// Metric-name patterns (`*` for any run of characters), a list: only the metrics they match
/// are pushed ([`PushgatewayBuilder::allow`](crate::PushgatewayBuilder::allow)). Default:
/// every metric.
pub const PUSHGATEWAY_ALLOW: &str = "PUSHGATEWAY_ALLOW";

/// Metric-name patterns, a list: the metrics they match are never pushed
/// ([`PushgatewayBuilder::deny`](crate::PushgatewayBuilder::deny)). Default: none.
pub const PUSHGATEWAY_DENY: &str = "PUSHGATEWAY_DENY";

/// Whether the exporter's own metrics (`pushgateway_exporter_*`) are pushed, a boolean.
/// Default: on.
pub const PUSHGATEWAY_SELF_METRICS: &str = "PUSHGATEWAY_SELF_METRICS";

// Spool, listener, off switch.

/// Directory of the disk spool, a path: pushes that failed for good are kept there until a
/// later process (or [`replay`](crate::replay)) sends them. Default: none, no spool.
pub const PUSHGATEWAY_SPOOL_DIR: &str = "PUSHGATEWAY_SPOOL_DIR";

/// `ip:port` to serve `GET /metrics` on, for Prometheus to scrape
/// ([`PushgatewayBuilder::listen`](crate::PushgatewayBuilder::listen)), e.g. `0.0.0.0:9100`
/// (an IP address: host names are refused, not resolved; port 0 lets the system choose).
/// With no push target configured (neither [`PUSHGATEWAY_URL`],
/// [`PUSHGATEWAY_REMOTE_WRITE_URL`], [`PUSHGATEWAY_TEXTFILE_DIR`] nor a target in code), the
/// process is only scraped. Default: none, not scraped.
pub const PUSHGATEWAY_LISTEN: &str = "PUSHGATEWAY_LISTEN";

/// A boolean: on turns pushing off (the recorder is still installed and `render()` works),
/// for unit tests and local runs. Default: off, pushing on.
pub const PUSHGATEWAY_DISABLED: &str = "PUSHGATEWAY_DISABLED";

#[cfg(test)]
mod tests {
    /// Each constant holds its own name, and has a row in the module's table (and no row
    /// names a constant that is gone).
    #[test]
    fn every_constant_is_its_name_and_in_the_table() {
        let source = include_str!("env.rs");
        let mut consts = Vec::new();
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let (name, value) = rest.split_once(": &str = ").expect(line);
            assert_eq!(value, format!("{name:?};"), "{line}");
            consts.push(name);
        }
        let rows: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! | [`"))
            .map(|l| l.split('`').next().unwrap())
            .collect();
        assert_eq!(rows, consts, "the table lists the constants in their order");
        assert_eq!(consts.len(), 25);
    }
}
