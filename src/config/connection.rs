//! [`ConnectionSettings`]: what the builder sets for every target (its defaults) and what a
//! [`Target`](super::Target) sets for itself (its overrides), in one shape; the one merge of
//! the two; and the setters both share, written once.

use std::fmt;

use crate::target::PushMethod;

/// A secret that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret<T = String>(pub(crate) T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How requests authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// A client certificate (PEM chain) and its private key (PEM), for mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Secret<Vec<u8>>,
}

/// The settings of a target's requests and of what it is sent. On the builder, the defaults
/// of every target; on a target, its own (empty by default); [`over`](Self::over) merges
/// the two.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnectionSettings {
    pub(crate) auth: Option<Auth>,
    /// Custom headers, values secret; names are checked at install.
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) deny: Vec<String>,
    /// Extra trusted CA certificates, PEM.
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) client_identity: Option<ClientIdentity>,
    pub(crate) method: Option<PushMethod>,
}

impl ConnectionSettings {
    /// These settings (a target's own) over `defaults` (the builder's): an allow list, a
    /// client identity and a method replace the builder's; deny patterns and CA certificates
    /// add to them; a header replaces the builder's of the same name (in any case); the
    /// target's authentication, or else its own `Authorization` header, replaces the
    /// builder's authentication. (Credentials in the URL, over all of these, are taken where
    /// the URL is parsed.)
    pub(crate) fn over(&self, defaults: &ConnectionSettings) -> ConnectionSettings {
        let own_header = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let auth = match &self.auth {
            Some(auth) => Some(auth.clone()),
            None if own_header("authorization") => None,
            None => defaults.auth.clone(),
        };
        ConnectionSettings {
            auth,
            headers: defaults
                .headers
                .iter()
                .filter(|(name, _)| !own_header(name))
                .chain(&self.headers)
                .cloned()
                .collect(),
            allow: self.allow.clone().or_else(|| defaults.allow.clone()),
            deny: defaults.deny.iter().chain(&self.deny).cloned().collect(),
            ca_pem: [&defaults.ca_pem[..], &self.ca_pem].concat(),
            client_identity: self
                .client_identity
                .clone()
                .or_else(|| defaults.client_identity.clone()),
            method: self.method.or(defaults.method),
        }
    }
}

/// What is set, with secrets left out: the kind of authentication, the header names, the
/// patterns, whether there is TLS material, the method.
impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ConnectionSettings");
        match &self.auth {
            Some(Auth::Basic { .. }) => d.field("auth", &"basic"),
            Some(Auth::Bearer(_)) => d.field("auth", &"bearer"),
            None => &mut d,
        };
        if !self.headers.is_empty() {
            let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
            d.field("headers", &names);
        }
        if let Some(allow) = &self.allow {
            d.field("allow", allow);
        }
        if !self.deny.is_empty() {
            d.field("deny", &self.deny);
        }
        if !self.ca_pem.is_empty() {
            d.field("ca_certificates", &true);
        }
        if self.client_identity.is_some() {
            d.field("client_identity", &true);
        }
        if let Some(method) = self.method {
            d.field("method", &method);
        }
        d.finish()
    }
}

/// The setters [`PushgatewayBuilder`](crate::PushgatewayBuilder) and
/// [`Target`](crate::Target) share, as inherent methods of `$ty` (so that each type's
/// documentation lists them), writing its `settings` field: on the builder they set the
/// defaults of every target, on a target its own settings, merged by
/// [`ConnectionSettings::over`].
macro_rules! connection_setters {
    ($ty:ty) => {
        impl $ty {
            /// HTTP basic auth. The password never appears in logs, errors or `Debug` output.
            ///
            /// On the builder, every target's authentication; on a [`Target`](crate::Target),
            /// its own, over the builder's. Credentials in a target's URL
            /// (`https://user:password@host`) win over both.
            pub fn basic_auth(
                mut self,
                username: impl Into<String>,
                password: impl Into<String>,
            ) -> Self {
                self.settings.auth = Some($crate::config::connection::Auth::Basic {
                    username: username.into(),
                    password: $crate::config::connection::Secret(password.into()),
                });
                self
            }

            /// A bearer token, sent as `Authorization: Bearer <token>`. It and
            /// [`basic_auth`](Self::basic_auth) replace each other: the last one set wins.
            /// The token never appears in logs, errors or `Debug` output.
            ///
            /// On the builder, every target's authentication; on a [`Target`](crate::Target),
            /// its own, over the builder's. Credentials in a target's URL win over both.
            pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
                self.settings.auth = Some($crate::config::connection::Auth::Bearer(
                    $crate::config::connection::Secret(token.into()),
                ));
                self
            }

            /// Adds an HTTP header to every request (e.g. `X-Scope-OrgID` for a Grafana
            /// Mimir or Cortex tenant, or a tenant header for a proxy). Values are treated as
            /// secrets: never logged or shown by `Debug`. A header the exporter sets itself
            /// (`Content-Length`, `Content-Type`, `Content-Encoding`, `Transfer-Encoding`,
            /// `Host`, `Connection`, `X-Prometheus-Remote-Write-Version`) is an
            /// [`InitError::InvalidHeader`](crate::InitError::InvalidHeader) at install.
            ///
            /// On the builder, a header of every target; on a [`Target`](crate::Target), of
            /// that target, over a builder header of the same name (in any case). A target's
            /// own `Authorization` header is its authentication, over the builder's.
            pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
                self.settings.headers.push((
                    name.into(),
                    $crate::config::connection::Secret(value.into()),
                ));
                self
            }

            /// Only the metrics whose names (as sent) match one of `patterns` (`*` for any
            /// run of characters) are pushed; recording is unaffected. The lifecycle and the
            /// exporter's own metrics are filtered like any other: allow `batch_job_*` to
            /// keep the lifecycle metrics. Patterns are checked at install: metric-name
            /// characters and `*` only.
            ///
            /// On the builder, the list of every target without one of its own (environment:
            /// `PUSHGATEWAY_ALLOW`, comma-separated); on a [`Target`](crate::Target), its
            /// own, replacing the builder's.
            pub fn allow<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
                self.settings.allow = Some(patterns.into_iter().map(Into::into).collect());
                self
            }

            /// The metrics whose names (as sent) match one of `patterns` are never pushed (a
            /// deny wins over an allow).
            ///
            /// On the builder, for every target (environment: `PUSHGATEWAY_DENY`,
            /// comma-separated); on a [`Target`](crate::Target), for that target, on top of
            /// the builder's deny list.
            pub fn deny<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
                self.settings
                    .deny
                    .extend(patterns.into_iter().map(Into::into));
                self
            }

            /// Trusts the CA certificate(s) in `pem` (PEM, one or more `CERTIFICATE` blocks)
            /// for the server's certificate, in addition to the built-in roots: for a server
            /// whose certificate comes from a private CA. May be called several times. Needs
            /// the `tls` feature.
            ///
            /// A certificate that no trusted CA signed fails the push with
            /// [`PushError::Tls`](crate::PushError::Tls); there is no fallback to an
            /// unverified connection.
            ///
            /// On the builder, for every target; on a [`Target`](crate::Target), for that
            /// target, on top of the builder's.
            pub fn ca_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
                self.settings.ca_pem.extend_from_slice(pem.as_ref());
                self.settings.ca_pem.push(b'\n');
                self
            }

            /// The client certificate (chain) and its private key, both PEM, presented for
            /// mutual TLS (a gateway with `client_auth_type: RequireAndVerifyClientCert`).
            /// The key is treated as a secret: never logged or shown by `Debug`. Needs the
            /// `tls` feature.
            ///
            /// On the builder, for every target; on a [`Target`](crate::Target), for that
            /// target, over the builder's.
            pub fn client_identity(
                mut self,
                cert_pem: impl Into<Vec<u8>>,
                key_pem: impl Into<Vec<u8>>,
            ) -> Self {
                self.settings.client_identity = Some($crate::config::connection::ClientIdentity {
                    cert: cert_pem.into(),
                    key: $crate::config::connection::Secret(key_pem.into()),
                });
                self
            }

            /// The HTTP method of pushes to a Pushgateway. Default
            /// [`PushMethod::Put`](crate::PushMethod::Put). With lifecycle metrics on, only a
            /// successful run's final push uses PUT; other pushes are POSTs so that a failed
            /// or killed run keeps the last success timestamp (see
            /// [`lifecycle_metrics`](crate::PushgatewayBuilder::lifecycle_metrics)).
            ///
            /// On the builder, for every Pushgateway target; on a [`Target`](crate::Target),
            /// for that target, over the builder's: an error at install for a target that is
            /// not a Pushgateway.
            pub fn method(mut self, method: $crate::PushMethod) -> Self {
                self.settings.method = Some(method);
                self
            }
        }
    };
}

pub(super) use connection_setters;

#[cfg(test)]
mod tests {
    use crate::{Matcher, PushMethod, PushgatewayBuilder, Target};

    #[test]
    fn a_targets_own_settings_merge_over_the_builders() {
        let builder = PushgatewayBuilder::new("http://gw:9091")
            .basic_auth("u", "p")
            .header("X-A", "1")
            .header("x-b", "2")
            .allow(["a_*"])
            .deny(["d_*"])
            .ca_certificate("CA1")
            .client_identity("c1", "k1")
            .method(PushMethod::Post);
        let defaults = &builder.settings;
        // A target with nothing of its own has the builder's settings.
        assert_eq!(
            &Target::pushgateway("http://gw2").settings.over(defaults),
            defaults
        );
        let merged = Target::pushgateway("http://gw2")
            .header("X-B", "3")
            .header("authorization", "Token t")
            .allow(["b_*"])
            .deny(["e_*"])
            .ca_certificate("CA2")
            .client_identity("c2", "k2")
            .method(PushMethod::Put)
            .settings
            .over(defaults);
        assert_eq!(
            merged.auth, None,
            "its Authorization header replaces the auth"
        );
        let headers: Vec<(&str, &str)> = merged
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.0.as_str()))
            .collect();
        assert_eq!(
            headers,
            [("X-A", "1"), ("X-B", "3"), ("authorization", "Token t")]
        );
        assert_eq!(merged.allow, Some(vec!["b_*".to_owned()]));
        assert_eq!(merged.deny, ["d_*", "e_*"]);
        assert_eq!(merged.ca_pem, b"CA1\nCA2\n");
        assert_eq!(
            merged.client_identity.map(|id| id.cert),
            Some(b"c2".to_vec())
        );
        assert_eq!(merged.method, Some(PushMethod::Put));
        // Its own authentication replaces the builder's.
        let merged = Target::pushgateway("http://gw2")
            .bearer_token("t")
            .settings
            .over(defaults);
        assert!(matches!(merged.auth, Some(super::Auth::Bearer(_))));
    }

    #[test]
    fn debug_shows_every_setting_and_no_secret() {
        let b = PushgatewayBuilder::new("http://u:pw1@gw")
            .basic_auth("u", "pw2")
            .header("X-K", "hv")
            .client_identity("cert", "key-secret")
            .buckets_for_metric(Matcher::Full("m".into()), &[1.0])
            .add_target(Target::remote_write("http://rw").bearer_token("tok3n"));
        let shown = format!("{b:?}");
        for secret in ["pw1", "pw2", "hv", "key-secret", "tok3n"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for set in [
            "auth: \"basic\"",
            "auth: \"bearer\"",
            "headers: [\"X-K\"]",
            "client_identity: true",
            "buckets_for_metric: [(Full(\"m\"), [1.0])]",
        ] {
            assert!(shown.contains(set), "{set} not in {shown}");
        }
    }
}
