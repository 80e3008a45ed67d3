use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Duration;

use reqwest::Url;

use super::check::*;
use super::connection::Auth;
use super::env::*;
use super::*;
use crate::env::*;
use crate::log::redact_url;
use crate::target::{PushMethod, TargetKind};
use crate::transport::TlsConfig;
use crate::InitError;

fn env(vars: &[(&str, &str)]) -> Result<PushgatewayBuilder, InitError> {
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    PushgatewayBuilder::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn label_names() {
    for ok in ["instance", "_x", "a1_B"] {
        assert_eq!(check_label_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "a-b", "1a", "__a", "a b", "ä"] {
        assert!(check_label_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn label_conflicts_are_errors() {
    let g = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let err = check_labels(&g(&[("instance", "a"), ("instance", "b")]), &[]).unwrap_err();
    assert!(matches!(err, InitError::DuplicateLabel { ref name, .. } if name == "instance"));
    let err = check_labels(&g(&[("instance", "a")]), &g(&[("instance", "b")])).unwrap_err();
    assert!(
        err.to_string()
            .contains("both a global and a grouping label"),
        "{err}"
    );
    let err = check_labels(&g(&[("job", "a")]), &[]).unwrap_err();
    assert!(err.to_string().contains(".job()"), "{err}");
    let err = check_labels(&[], &g(&[("a-b", "x")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid global label name \"a-b\": a label name may hold only ASCII letters, digits and underscores"
    );
}

#[test]
fn endpoints() {
    let Endpoint { url, auth, group } =
        parse_endpoint("http://127.0.0.1:9091", TargetKind::Pushgateway).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:9091/");
    assert!(auth.is_none() && group.is_none());
    // No scheme: http, as client_golang and the prometheus crate take it.
    for (raw, kind) in [
        ("127.0.0.1:9091/", TargetKind::Pushgateway),
        ("gateway:9091/", TargetKind::Pushgateway),
        ("localhost:9091/prefix", TargetKind::Pushgateway),
        ("mimir:9009/api/v1/push", TargetKind::RemoteWrite),
    ] {
        let url = parse_endpoint(raw, kind).unwrap().url;
        assert_eq!(url.as_str(), format!("http://{raw}"), "{raw}");
    }
    let Endpoint { url, auth, .. } = parse_endpoint(
        "https://u:p%40ss@gw.example/prefix",
        TargetKind::Pushgateway,
    )
    .unwrap();
    assert_eq!(url.as_str(), "https://gw.example/prefix");
    match auth {
        Some(Auth::Basic { username, password }) => {
            assert_eq!(username, "u");
            assert_eq!(password.0, "p@ss");
        }
        other => panic!("{other:?}"),
    }
    for (bad, why) in [
        ("ftp://gw", "scheme"),
        ("http://", "empty host"),
        ("http://gw/?a=b", "query"),
        ("not a url", "international domain name"),
        ("gateway:9091:9092", "invalid port"),
        ("http://[::1", "invalid IPv6"),
        (
            "http://gw/metrics/job/a/instance",
            "followed by <label>/<value> pairs",
        ),
        ("http://gw/metrics/job/", "must be /metrics/job/<job>"),
        (
            "http://gw/metrics/job@base64/",
            "must be /metrics/job/<job>",
        ),
        ("http://gw/metrics/job@base64/=", "empty job"),
        ("http://gw/metrics/job/a/x@base64/!!", "the value of x"),
        ("http://gw/metrics/job/a/x@base64/_w", "not valid UTF-8"),
    ] {
        let err = parse_endpoint(bad, TargetKind::Pushgateway).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn group_paths_in_pushgateway_urls() {
    let parse = |raw| parse_endpoint(raw, TargetKind::Pushgateway).unwrap();
    let e = parse("http://gw:9091/metrics/job/ingester");
    assert_eq!(e.url.as_str(), "http://gw:9091/");
    assert_eq!(
        e.group,
        Some(UrlGroup {
            job: "ingester".into(),
            grouping: vec![]
        })
    );
    // A prefix before the group path is the endpoint's; values decoded as the gateway
    // decodes them; a trailing slash is allowed.
    let e = parse(
        "https://u:p@gw/push/metrics/job@base64/YS9i/instance/h%201/path@base64/L3Zhci9sb2c=/",
    );
    assert_eq!(e.url.as_str(), "https://gw/push");
    assert_eq!(
        e.group,
        Some(UrlGroup {
            job: "a/b".into(),
            grouping: vec![
                ("instance".into(), "h 1".into()),
                ("path".into(), "/var/log".into())
            ]
        })
    );
    // Remote-write URLs are taken as they are.
    let e = parse_endpoint("http://vm/metrics/job/x", TargetKind::RemoteWrite).unwrap();
    assert_eq!(e.url.as_str(), "http://vm/metrics/job/x");
    assert!(e.group.is_none());
}

#[test]
fn the_group_path_gives_job_and_grouping_where_code_sets_none() {
    let b = PushgatewayBuilder::new("http://gw:9091/metrics/job/from-url/instance/h1")
        .grouping_label("zone", "eu");
    let (job, grouping) = b.identity().unwrap();
    assert_eq!(job, "from-url");
    assert_eq!(
        grouping,
        [
            ("zone".to_owned(), "eu".to_owned()),
            ("instance".to_owned(), "h1".to_owned())
        ]
    );
    // The same values twice are no conflict.
    let b = PushgatewayBuilder::new("http://gw:9091/metrics/job/a/instance/h1")
        .job("a")
        .grouping_label("instance", "h1");
    assert_eq!(b.identity().unwrap().0, "a");
    let err = PushgatewayBuilder::new("http://gw:9091/metrics/job/from-url")
        .job("ingester")
        .install()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Pushgateway URL \"http://gw:9091/metrics/job/from-url\": its group path \
         names the job \"from-url\", and the job is \"ingester\" (set by init's argument, \
         .job() or another URL): give one job, or drop /metrics/job/... from the URL"
    );
    let err = PushgatewayBuilder::new("http://gw:9091/metrics/job/a/instance/h1")
        .grouping_label("instance", "h2")
        .install()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("sets instance=\"h1\", and instance=\"h2\" is set too"),
        "{err}"
    );
    // Two gateways naming two jobs.
    let err = env(&[(PUSHGATEWAY_URL, "gw1/metrics/job/a,gw2/metrics/job/b")])
        .unwrap()
        .install()
        .unwrap_err();
    assert!(err.to_string().contains("names the job \"b\""), "{err}");
    // A grouping label that is not a label name is refused as any other.
    let err = PushgatewayBuilder::new("http://gw/metrics/job/a/1x/v")
        .install()
        .unwrap_err();
    assert!(matches!(err, InitError::InvalidLabelName { .. }), "{err}");
}

#[test]
fn the_default_gateway_only_without_any_target() {
    let b = env(&[]).unwrap();
    assert!(b.targets.is_empty());
    let b = env(&[])
        .unwrap()
        .remote_write("http://mimir:9009/api/v1/push");
    assert_eq!(
        b.targets,
        [Target::remote_write("http://mimir:9009/api/v1/push")]
    );
    let b = env(&[]).unwrap().textfile("/tmp");
    assert_eq!(b.targets, [Target::textfile("/tmp")]);
    // A listener alone: only scraped.
    let b = env(&[(PUSHGATEWAY_LISTEN, "127.0.0.1:0")]).unwrap();
    assert!(b.targets.is_empty());
    assert_eq!(b.listen, Some(("127.0.0.1:0".into(), PUSHGATEWAY_LISTEN)));
}

#[test]
fn headers_from_the_environment() {
    let b = env(&[(
        PUSHGATEWAY_HEADERS,
        "X-Scope-OrgID=team-a, Authorization=Bearer%20abc%2Cdef ,X-Empty=",
    )])
    .unwrap();
    let headers: Vec<(&str, &str)> = b
        .settings
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.0.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("X-Scope-OrgID", "team-a"),
            ("Authorization", "Bearer abc,def"),
            ("X-Empty", "")
        ]
    );
    assert!(!format!("{b:?}").contains("team-a"), "{b:?}");
    for bad in ["X-A=1,secret-token", "=x", "X-A=%FF"] {
        let err = env(&[(PUSHGATEWAY_HEADERS, bad)]).unwrap_err().to_string();
        assert!(err.contains("PUSHGATEWAY_HEADERS"), "{err}");
        assert!(!err.contains("secret") && !err.contains("%FF"), "{err}");
    }
    let err = env(&[(PUSHGATEWAY_HEADERS, "Bad Name=1")])
        .unwrap()
        .job("j")
        .install()
        .unwrap_err();
    assert!(matches!(err, InitError::InvalidHeader { .. }), "{err}");
}

#[test]
fn the_host_name_as_a_grouping_label() {
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    assert!(!host.is_empty());
    let b = env(&[(PUSHGATEWAY_HOSTNAME_LABEL, "instance")])
        .unwrap()
        .job("j");
    assert_eq!(
        b.identity().unwrap().1,
        [("instance".to_owned(), host.clone())]
    );
    // An explicit label of the same name wins.
    let b = PushgatewayBuilder::new(DEFAULT_ENDPOINT)
        .job("j")
        .hostname_grouping_label("instance")
        .grouping_label("instance", "mine");
    assert_eq!(
        b.identity().unwrap().1,
        [("instance".to_owned(), "mine".to_owned())]
    );
    let err = env(&[(PUSHGATEWAY_HOSTNAME_LABEL, "host-name")]).unwrap_err();
    assert!(
        err.to_string().contains("PUSHGATEWAY_HOSTNAME_LABEL"),
        "{err}"
    );
}

#[test]
fn targets_from_the_environment() {
    let b = env(&[(PUSHGATEWAY_URL, "http://a:9091, http://b:9091")]).unwrap();
    assert_eq!(
        b.targets,
        [
            Target::pushgateway("http://a:9091"),
            Target::pushgateway("http://b:9091")
        ]
    );
    // Another target alone replaces the default gateway.
    let b = env(&[(
        PUSHGATEWAY_REMOTE_WRITE_URL,
        "http://mimir:9009/api/v1/push",
    )])
    .unwrap();
    assert_eq!(
        b.targets,
        [Target::remote_write("http://mimir:9009/api/v1/push")]
    );
    let b = env(&[
        (PUSHGATEWAY_TEXTFILE_DIR, "/var/lib/node_exporter"),
        (PUSHGATEWAY_URL, "http://gw:9091"),
        (
            PUSHGATEWAY_REMOTE_WRITE_URL,
            "http://vm:8428/api/v1/write?extra_label=dc=eu",
        ),
    ])
    .unwrap();
    assert_eq!(
        b.targets,
        [
            Target::pushgateway("http://gw:9091"),
            Target::remote_write("http://vm:8428/api/v1/write?extra_label=dc=eu"),
            Target::textfile("/var/lib/node_exporter"),
        ]
    );
    let err = env(&[(
        PUSHGATEWAY_REMOTE_WRITE_URL,
        "http://ok:1/w,ftp://mimir:9009",
    )])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"http://ok:1/w,ftp://mimir:9009\" in environment variable \
         PUSHGATEWAY_REMOTE_WRITE_URL: the scheme must be http or https, not \"ftp\""
    );
    let err = env(&[(PUSHGATEWAY_URL, "http://gw:9091?x=1")]).unwrap_err();
    assert!(err.to_string().contains("query string"), "{err}");
}

#[test]
fn target_settings_are_checked_at_install() {
    let err = PushgatewayBuilder::with_targets([Target::remote_write("mimir:x/api/v1/push")])
        .job("j")
        .install()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid remote write URL \"mimir:x/api/v1/push\": invalid port number"
    );
    let err = PushgatewayBuilder::with_targets([Target::textfile("/tmp")])
        .spool_dir("/tmp/spool")
        .job("j")
        .install()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a Pushgateway or a remote-write receiver, and neither is a target"),
        "{err}"
    );
    let err = PushgatewayBuilder::with_targets([Target::textfile("")])
        .job("j")
        .install()
        .unwrap_err();
    assert!(err.to_string().contains("textfile"), "{err}");
}

#[test]
fn redaction() {
    assert_eq!(redact_url("http://u:secret@h:1/p"), "http://u:***@h:1/p");
    assert_eq!(redact_url("http://u@h"), "http://u@h");
    assert_eq!(redact_url("http://h/p@x"), "http://h/p@x");
    assert_eq!(redact_url("nonsense"), "nonsense");
    let b = PushgatewayBuilder::new("http://u:hunter2@h")
        .basic_auth("u", "hunter3")
        .header("X-Token", "hunter4");
    let debug = format!("{b:?}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let b = PushgatewayBuilder::new("http://h").bearer_token("hunter5");
    assert!(!format!("{b:?}").contains("hunter5"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("15s", false), Ok(Duration::from_secs(15)));
    assert_eq!(
        parse_duration("500ms", false),
        Ok(Duration::from_millis(500))
    );
    assert_eq!(parse_duration("1m 30s", false), Ok(Duration::from_secs(90)));
    assert_eq!(
        parse_duration("2.5", false),
        Ok(Duration::from_millis(2500))
    );
    assert_eq!(parse_duration("off", true), Ok(Duration::ZERO));
    assert!(parse_duration("off", false).is_err());
    assert!(parse_duration("-1", false).is_err());
    assert!(parse_duration("NaN", false).is_err());
    assert!(parse_duration("5 parsecs", false).is_err());
}

#[test]
fn environment() {
    let b = env(&[]).unwrap();
    // No target: the default gateway, chosen at install.
    assert!(b.targets.is_empty());
    assert!(b.enabled);
    let b = env(&[
        (PUSHGATEWAY_URL, "https://gw.example:9091"),
        (PUSHGATEWAY_INTERVAL, "off"),
        (PUSHGATEWAY_SHUTDOWN_TIMEOUT, "2s"),
        (PUSHGATEWAY_GROUPING, "instance=run-1, region = eu"),
        (PUSHGATEWAY_DISABLED, "true"),
        (PUSHGATEWAY_USERNAME, "u"),
        (PUSHGATEWAY_PASSWORD, "p"),
    ])
    .unwrap();
    assert_eq!(b.targets, [Target::pushgateway("https://gw.example:9091")]);
    assert_eq!(b.interval, Duration::ZERO);
    assert_eq!(b.shutdown_timeout, Duration::from_secs(2));
    assert_eq!(
        b.grouping,
        vec![
            ("instance".to_owned(), "run-1".to_owned()),
            ("region".to_owned(), "eu".to_owned())
        ]
    );
    assert!(!b.enabled);
    assert!(matches!(b.settings.auth, Some(Auth::Basic { .. })));
}

#[test]
fn bad_environment_names_variable_and_value() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(PUSHGATEWAY_URL, "gateway:99999")], "PUSHGATEWAY_URL"),
        (
            &[(PUSHGATEWAY_INTERVAL, "5 parsecs")],
            "\"5 parsecs\" in environment variable PUSHGATEWAY_INTERVAL",
        ),
        (
            &[(PUSHGATEWAY_SHUTDOWN_TIMEOUT, "0")],
            "PUSHGATEWAY_SHUTDOWN_TIMEOUT",
        ),
        (
            &[(PUSHGATEWAY_PUSH_TIMEOUT, "soon")],
            "\"soon\" in environment variable PUSHGATEWAY_PUSH_TIMEOUT",
        ),
        (&[(PUSHGATEWAY_GROUPING, "instance")], "PUSHGATEWAY_GROUPING"),
        (&[(PUSHGATEWAY_GROUPING, "a-b=1")], "PUSHGATEWAY_GROUPING"),
        (&[(PUSHGATEWAY_DISABLED, "maybe")], "PUSHGATEWAY_DISABLED"),
        (
            &[(PUSHGATEWAY_LISTEN, "9100")],
            "\"9100\" in environment variable PUSHGATEWAY_LISTEN: expected host:port",
        ),
        (&[(PUSHGATEWAY_PASSWORD, "hunter2")], "PUSHGATEWAY_PASSWORD"),
        (
            &[(PUSHGATEWAY_CA_FILE, "/nonexistent/ca.pem")],
            "\"/nonexistent/ca.pem\" in environment variable PUSHGATEWAY_CA_FILE: cannot read the file",
        ),
        (
            &[(PUSHGATEWAY_CLIENT_KEY_FILE, "/k.pem")],
            "PUSHGATEWAY_CLIENT_KEY_FILE: a client key needs its certificate in PUSHGATEWAY_CLIENT_CERT_FILE",
        ),
    ];
    for (vars, expected) in cases {
        let err = env(vars).unwrap_err().to_string();
        assert!(err.contains(expected), "{vars:?}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let err = env(&[(PUSHGATEWAY_URL, "http://u:hunter2@/x")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn ci_labels_from_github_and_gitlab() {
    let lookup = |vars: &[(&str, &str)]| {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    };
    let github = lookup(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "acme/ingest"),
        ("GITHUB_WORKFLOW", "nightly"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_SHA", "0123abc"),
    ]);
    let pairs = |v: Vec<(String, String)>| -> Vec<String> {
        v.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    assert_eq!(
        pairs(ci_labels(&github, CiLabels::Stable)),
        [
            "ci_repository=acme/ingest",
            "ci_workflow=nightly",
            "ci_ref=main"
        ]
    );
    assert_eq!(
        pairs(ci_labels(&github, CiLabels::WithCommit))
            .last()
            .unwrap(),
        "ci_commit=0123abc"
    );
    let gitlab = lookup(&[
        ("GITLAB_CI", "true"),
        ("CI_PROJECT_PATH", "acme/ingest"),
        ("CI_JOB_NAME", "load"),
        ("CI_COMMIT_REF_NAME", ""),
    ]);
    assert_eq!(
        pairs(ci_labels(&gitlab, CiLabels::Stable)),
        ["ci_repository=acme/ingest", "ci_workflow=load"]
    );
    assert!(ci_labels(lookup(&[("CI", "true")]), CiLabels::WithCommit).is_empty());
    let err = env(&[(PUSHGATEWAY_CI_LABELS, "sometimes")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("PUSHGATEWAY_CI_LABELS"), "{err}");
}

#[test]
fn insecure_configurations_are_named() {
    let url = |u: &str| Url::parse(u).unwrap();
    let plain = TlsConfig::default();
    let w = insecure_warning(&url("http://gw.example:9091/metrics/job/j"), true, &plain);
    assert!(w.unwrap().contains("credentials are sent over plain http"));
    for (u, creds) in [
        ("http://gw.example:9091", false),
        ("https://gw.example:9091", true),
        ("http://127.0.0.1:9091", true),
        ("http://[::1]:9091", true),
        ("http://localhost:9091", true),
    ] {
        assert_eq!(insecure_warning(&url(u), creds, &plain), None, "{u}");
    }
    let danger = TlsConfig {
        accept_invalid_certs: true,
        ..TlsConfig::default()
    };
    let w = insecure_warning(&url("https://gw.example"), false, &danger).unwrap();
    assert!(w.contains("danger_accept_invalid_certs"), "{w}");
}

#[test]
fn bad_settings_are_init_errors() {
    let b = || PushgatewayBuilder::new("http://127.0.0.1:9091").job("j");
    let cases: Vec<(PushgatewayBuilder, &str)> = vec![
        (PushgatewayBuilder::new("http://127.0.0.1:9091"), "job name"),
        (b().job(""), "job name"),
        (b().grouping_label("__x", "1"), "reserved"),
        (b().shutdown_timeout(Duration::ZERO), "shutdown_timeout"),
        (b().push_timeout(Duration::ZERO), "push_timeout"),
        (b().header("bad header", "x"), "HTTP header"),
        (b().header("x-a", "line\nbreak"), "not allowed"),
        (b().buckets(&[]), "bucket"),
        (b().buckets(&[1.0, 0.5]), "increasing"),
        (b().buckets(&[1.0, f64::INFINITY]), "finite"),
        (b().basic_auth("a:b", "c"), "':'"),
        (b().spool_dir(""), "spool_dir"),
        (b().spool_dir("/tmp/x").spool_limits(0, 1), "spool_limits"),
        (
            b().ca_certificate("not a certificate"),
            "invalid TLS CA certificate",
        ),
        (
            b().ca_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "invalid TLS CA certificate",
        ),
        (
            b().client_identity(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "no key",
            ),
            "invalid TLS client key",
        ),
        (
            PushgatewayBuilder::new("localhost:9091:1").job("j"),
            "invalid port",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.install().unwrap_err().to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const VARS: [&str; 15] = [
        PUSHGATEWAY_URL,
        PUSHGATEWAY_USERNAME,
        PUSHGATEWAY_PASSWORD,
        PUSHGATEWAY_BEARER_TOKEN,
        PUSHGATEWAY_INTERVAL,
        PUSHGATEWAY_PUSH_TIMEOUT,
        PUSHGATEWAY_SHUTDOWN_TIMEOUT,
        PUSHGATEWAY_GROUPING,
        PUSHGATEWAY_DISABLED,
        PUSHGATEWAY_SELF_METRICS,
        PUSHGATEWAY_CI_LABELS,
        PUSHGATEWAY_SPOOL_DIR,
        PUSHGATEWAY_LISTEN,
        PUSHGATEWAY_CLIENT_CERT_FILE,
        PUSHGATEWAY_CLIENT_KEY_FILE,
    ];

    /// Text that looks like configuration more often than random bytes would.
    fn config_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z0-9:/@.%=,_ -]{0,40}",
            "(http|https|ftp)://[a-z0-9:@.%/\\[\\]]{0,30}",
            "[0-9]{1,20}(ns|us|ms|s|m|h|d| parsecs)?",
        ]
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in config_text()) {
            let _ = parse_endpoint(&text, TargetKind::Pushgateway);
            let _ = parse_duration(&text, true);
            let _ = parse_duration(&text, false);
            let _ = parse_bool(&text);
            let _ = parse_grouping(&text);
            let _ = redact_url(&text);
        }

        #[test]
        fn any_environment_gives_a_builder_or_an_error_naming_the_variable(
            values in proptest::collection::vec(proptest::option::of(config_text()), VARS.len())
        ) {
            let vars: Vec<(&str, &str)> = VARS
                .iter()
                .zip(&values)
                .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
                .collect();
            match env(&vars) {
                Ok(builder) => {
                    // Whatever the environment held, install's checks do not panic either.
                    let _ = builder.job("j").tls_config();
                }
                Err(InitError::InvalidEnv { var, .. }) => {
                    prop_assert!(VARS.contains(&var));
                }
                Err(other) => prop_assert!(false, "not InvalidEnv: {other}"),
            }
        }

        #[test]
        fn secrets_never_show_in_errors(secret in "[a-zA-Z0-9]{12,20}") {
            for url in [
                format!("http://user:{secret}@host:bad-port"),
                format!("user:{secret}@host:bad-port"),
            ] {
                let err = env(&[(PUSHGATEWAY_URL, &url)]).unwrap_err().to_string();
                prop_assert!(!err.contains(&secret), "{err}");
                let target = format!("{:?}", Target::pushgateway(url.clone()));
                prop_assert!(!target.contains(&secret), "{target}");
            }
            // Every URL of a list, not only the first.
            let list = format!("http://a:{secret}@gw1:9091,http://b:{secret}@gw2:bad");
            let err = env(&[(PUSHGATEWAY_URL, &list)]).unwrap_err().to_string();
            prop_assert!(!err.contains(&secret), "{err}");
            // An error at install (a job the URL's group path contradicts) too.
            let url = format!("user:{secret}@host:1/metrics/job/a");
            let err = PushgatewayBuilder::new(url).job("b").install().unwrap_err().to_string();
            prop_assert!(!err.contains(&secret), "{err}");
            let err = env(&[(PUSHGATEWAY_PASSWORD, &secret)]).unwrap_err().to_string();
            prop_assert!(!err.contains(&secret), "{err}");
        }
    }
}

#[test]
fn durations_out_of_range_are_refused_naming_the_range() {
    for (var, value, expected) in [
        (
            PUSHGATEWAY_SHUTDOWN_TIMEOUT,
            "1e19",
            "out of range: between 10ms and 1h",
        ),
        (
            PUSHGATEWAY_SHUTDOWN_TIMEOUT,
            "300000000000y",
            "PUSHGATEWAY_SHUTDOWN_TIMEOUT",
        ),
        (
            PUSHGATEWAY_PUSH_TIMEOUT,
            "2h",
            "out of range: between 10ms and 1h",
        ),
        (
            PUSHGATEWAY_INTERVAL,
            "1ns",
            "1ns is out of range: between 10ms and 1day, or 0 (off)",
        ),
        (
            PUSHGATEWAY_INTERVAL,
            "1us",
            "between 10ms and 1day, or 0 (off)",
        ),
        (
            PUSHGATEWAY_INTERVAL,
            "2days",
            "between 10ms and 1day, or 0 (off)",
        ),
    ] {
        let err = env(&[(var, value)]).unwrap_err().to_string();
        assert!(
            err.contains(var) && err.contains(expected),
            "{var}={value}: {err}"
        );
    }
    assert_eq!(
        env(&[(PUSHGATEWAY_INTERVAL, "off")]).unwrap().interval,
        Duration::ZERO
    );
    assert_eq!(
        env(&[(PUSHGATEWAY_SHUTDOWN_TIMEOUT, "1h")])
            .unwrap()
            .shutdown_timeout,
        Duration::from_secs(3600)
    );
    // The same bounds for the builder's setters, at install.
    for (builder, setting) in [
        (
            PushgatewayBuilder::new(DEFAULT_ENDPOINT).interval(Duration::from_nanos(1)),
            "interval",
        ),
        (
            PushgatewayBuilder::new(DEFAULT_ENDPOINT).shutdown_timeout(Duration::MAX),
            "shutdown_timeout",
        ),
        (
            PushgatewayBuilder::new(DEFAULT_ENDPOINT).push_timeout(Duration::from_secs(u64::MAX)),
            "push_timeout",
        ),
    ] {
        let err = builder.job("j").install().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid setting {setting}: "))
                && err.contains("out of range"),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn files_named_by_the_environment_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = dir.path().join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let fifo_path = fifo.to_str().unwrap().to_owned();
    let big_path = big.to_str().unwrap().to_owned();
    // In a thread, so that a read that blocks fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let errors: Vec<String> = [
            (PUSHGATEWAY_CA_FILE, fifo_path.as_str()),
            (PUSHGATEWAY_CA_FILE, "/dev/zero"),
            (PUSHGATEWAY_CA_FILE, big_path.as_str()),
        ]
        .iter()
        .map(|(var, value)| env(&[(var, value)]).unwrap_err().to_string())
        .collect();
        let _ = tx.send(errors);
    });
    let errors = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading the environment's files must not block");
    assert!(
        errors[0].contains("PUSHGATEWAY_CA_FILE: not a regular file"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("PUSHGATEWAY_CA_FILE: not a regular file"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("PUSHGATEWAY_CA_FILE: 2097152 bytes, more than the 1 MiB allowed"),
        "{}",
        errors[2]
    );
}

#[test]
fn remote_write_max_samples_from_the_environment_and_its_range() {
    let b = env(&[(PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES, " 5000 ")]).unwrap();
    assert_eq!(b.remote_write_max_samples, 5000);
    assert_eq!(
        env(&[]).unwrap().remote_write_max_samples,
        crate::DEFAULT_REMOTE_WRITE_MAX_SAMPLES
    );
    for bad in ["0", "-1", "1000001", "2k", "1.5"] {
        let err = env(&[(PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES, bad)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid value {bad:?} in environment variable \
                 PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES: must be a whole number from 1 to 1000000"
            )
        );
    }
    for bad in [0, 1_000_001] {
        let err = PushgatewayBuilder::with_targets([Target::remote_write("http://127.0.0.1:1/w")])
            .job("j")
            .remote_write_max_samples(bad)
            .plan()
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(
            text.contains("remote_write_max_samples")
                && text.contains("from 1 to 1000000")
                && text.contains("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES"),
            "{text}"
        );
    }
}

#[test]
fn credential_and_pem_errors_name_their_variable_and_file() {
    let err = env(&[
        (PUSHGATEWAY_USERNAME, "ci:bot"),
        (PUSHGATEWAY_PASSWORD, "pw"),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"ci:bot\" in environment variable PUSHGATEWAY_USERNAME: a user name must not contain ':' (basic auth puts one \
         between the user name and the password)"
    );
    let err = env(&[(PUSHGATEWAY_BEARER_TOKEN, "abc\r\nX-Injected: 1")]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "invalid value \"***\" in environment variable PUSHGATEWAY_BEARER_TOKEN: the token \
             holds"
        ),
        "{text}"
    );
    assert!(!text.contains("abc"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.der");
    std::fs::write(&not_pem, [0x30, 0x82, 0x01, 0x0a]).unwrap();
    let path = not_pem.display().to_string();
    let err = env(&[(PUSHGATEWAY_CA_FILE, &path)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid value {path:?} in environment variable {PUSHGATEWAY_CA_FILE}: no -----BEGIN \
             CERTIFICATE----- block found"
        )
    );
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (key, cert) = (key.display().to_string(), cert.display().to_string());
    let err = env(&[
        (PUSHGATEWAY_CLIENT_CERT_FILE, &cert),
        (PUSHGATEWAY_CLIENT_KEY_FILE, &key),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "invalid value {key:?} in environment variable {PUSHGATEWAY_CLIENT_KEY_FILE}: no PKCS#8"
        )),
        "{text}"
    );
}

#[test]
fn a_targets_own_settings_come_over_the_builders() {
    let b = PushgatewayBuilder::new("http://gw:9091")
        .job("j")
        .basic_auth("all", "pw")
        .header("X-Team", "core")
        .header("X-Keep", "1")
        .allow(["app_*"])
        .deny(["app_debug_*"]);
    let tls = b.tls_config().unwrap();
    let own = Target::remote_write("http://rw:9009/api/v1/push")
        .bearer_token("t0ken")
        .header("X-Team", "team-a")
        .header("X-Scope-OrgID", "team-a")
        .deny(["app_slow_*"]);
    let c = b.connection(&own, &tls).unwrap();
    assert_eq!(c.headers["authorization"], "Bearer t0ken");
    assert_eq!(c.headers["x-team"], "team-a");
    assert_eq!(c.headers["x-keep"], "1");
    assert_eq!(c.headers["x-scope-orgid"], "team-a");
    let view = b.view(&own, &[]).unwrap();
    assert!(view.filter.allows("app_rows_total"));
    assert!(
        !view.filter.allows("app_debug_bytes"),
        "the builder's deny applies"
    );
    assert!(
        !view.filter.allows("app_slow_seconds"),
        "the target's deny adds to it"
    );
    assert!(
        !view.filter.allows("other_total"),
        "the builder's allow applies"
    );
    let own_allow = Target::remote_write("http://rw:9009/api/v1/push").allow(["other_*"]);
    let view = b.view(&own_allow, &[]).unwrap();
    assert!(view.filter.allows("other_total") && !view.filter.allows("app_rows_total"));

    // A target with nothing of its own inherits everything.
    let plain = Target::pushgateway("http://gw2:9091");
    let c = b.connection(&plain, &tls).unwrap();
    assert!(c.headers["authorization"]
        .to_str()
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(c.headers["x-team"], "core");
    // A target's own Authorization header wins over the builder's authentication.
    let own_header = Target::remote_write("http://rw:9009").header("Authorization", "Token abc");
    let c = b.connection(&own_header, &tls).unwrap();
    assert_eq!(c.headers["authorization"], "Token abc");
    assert_eq!(c.headers.get_all("authorization").iter().count(), 1);
    // Credentials in the URL win over the target's own.
    let in_url = Target::pushgateway("http://u:p@gw3:9091").bearer_token("t");
    let c = b.connection(&in_url, &tls).unwrap();
    assert_eq!(c.headers["authorization"], "Basic dTpw");
}

#[test]
fn a_targets_own_settings_are_checked() {
    let b = PushgatewayBuilder::new("http://gw:9091").job("j");
    let grouping = [("instance".to_owned(), "a".to_owned())];
    let err = |t: Target| b.view(&t, &grouping).unwrap_err().to_string();
    assert!(err(Target::pushgateway("http://gw").label("instance", "x"))
        .contains("the gateway would overwrite it"));
    assert!(err(Target::pushgateway("http://gw").label("job", "x"))
        .contains("the gateway would overwrite it"));
    assert!(err(Target::remote_write("http://rw").label("1x", "x")).contains("\"1x\""));
    assert!(err(Target::remote_write("http://rw").label("le", "x")).contains("histogram"));
    assert!(err(Target::remote_write("http://rw").label("outcome", "x")).contains("lifecycle"));
    let global_le = PushgatewayBuilder::new("http://gw")
        .job("j")
        .global_label("le", "1");
    assert!(global_le
        .install()
        .unwrap_err()
        .to_string()
        .contains("`le` is the label of a histogram's buckets"));
    assert!(
        err(Target::remote_write("http://rw").method(PushMethod::Post))
            .contains("a push method is for a Pushgateway target, and this one is remote write")
    );
    assert!(err(Target::textfile("/tmp").allow(["a.b"])).contains("holds '.'"));
    // The same label on a remote-write target is fine: it is a series label there.
    assert!(b
        .view(
            &Target::remote_write("http://rw").label("instance", "x"),
            &grouping
        )
        .is_ok());
    // Secrets never show in Debug.
    let shown = format!(
        "{:?}",
        Target::remote_write("http://rw/?token=abc")
            .bearer_token("s3cret")
            .header("X-Key", "k3y")
            .client_identity("cert", "private-key")
    );
    for secret in ["s3cret", "k3y", "private-key", "abc"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("auth: \"bearer\"") && shown.contains("headers: [\"X-Key\"]"));
}

#[test]
fn allow_and_deny_come_from_the_environment() {
    let b = env(&[
        (PUSHGATEWAY_ALLOW, "app_*, batch_job_*"),
        (PUSHGATEWAY_DENY, "app_debug_*"),
    ])
    .unwrap()
    .job("j");
    let view = b.view(&Target::pushgateway("http://gw"), &[]).unwrap();
    assert!(view.filter.allows("app_rows") && view.filter.allows("batch_job_outcome"));
    assert!(!view.filter.allows("app_debug_x") && !view.filter.allows("other"));
    let err = env(&[(PUSHGATEWAY_DENY, "a,b-c")]).unwrap_err().to_string();
    assert!(
        err.contains("PUSHGATEWAY_DENY") && err.contains("b-c"),
        "{err}"
    );
}

#[test]
fn headers_the_transport_sets_are_refused_naming_the_variable_or_the_setter() {
    let tls = PushgatewayBuilder::new("http://gw:9091")
        .tls_config()
        .unwrap();
    for name in [
        "Content-Length",
        "content-type",
        "CONTENT-ENCODING",
        "Transfer-Encoding",
        "host",
        "Connection",
        "x-prometheus-remote-write-version",
    ] {
        let err = env(&[(PUSHGATEWAY_HEADERS, &format!("X-Ok=1,{name}=secret"))]).unwrap_err();
        assert!(
            matches!(
                err,
                InitError::InvalidEnv {
                    var: PUSHGATEWAY_HEADERS,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("is set by the exporter"), "{text}");
        assert!(!text.contains("secret"), "{text}");

        let b = PushgatewayBuilder::new("http://gw:9091")
            .job("j")
            .header(name, "0");
        let err = b
            .connection(&Target::pushgateway("http://gw:9091"), &tls)
            .err()
            .expect("refused");
        assert!(matches!(err, InitError::InvalidHeader { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("is set by the exporter")
                && text.contains("(given to PushgatewayBuilder::header)"),
            "{text}"
        );

        let b = PushgatewayBuilder::new("http://gw:9091").job("j");
        let own = Target::remote_write("http://rw:9009").header(name, "0");
        let text = b.connection(&own, &tls).err().expect("refused").to_string();
        assert!(text.contains("(given to Target::header)"), "{text}");
    }
    assert_eq!(
        env(&[(PUSHGATEWAY_HEADERS, "Content-Length=0")])
            .unwrap_err()
            .to_string(),
        "invalid value \"Content-Length=***\" in environment variable PUSHGATEWAY_HEADERS: \
         Content-Length is set by the exporter for each request and cannot be given as a \
         custom header (neither can Content-Type, Content-Encoding, Transfer-Encoding, Host, \
         Connection, X-Prometheus-Remote-Write-Version)"
    );
    // Other headers, and the target's own authentication, are still taken.
    let b = PushgatewayBuilder::new("http://gw:9091")
        .job("j")
        .header("X-Content-Length-Hint", "1");
    let c = b
        .connection(
            &Target::pushgateway("http://gw:9091").header("Authorization", "Token t"),
            &tls,
        )
        .unwrap();
    assert_eq!(c.headers["x-content-length-hint"], "1");
}

#[test]
fn every_list_variable_skips_empty_items() {
    // A trailing, leading or doubled comma adds no item, in every list variable.
    let b = env(&[
        (PUSHGATEWAY_URL, "http://a:9091,,http://b:9091,"),
        (PUSHGATEWAY_ALLOW, "a_*,"),
        (PUSHGATEWAY_DENY, ",b_*,,"),
        (PUSHGATEWAY_HEADERS, ",X-A=1,,"),
        (PUSHGATEWAY_GROUPING, "instance=x,,"),
    ])
    .unwrap();
    let urls: Vec<&str> = b.targets.iter().filter_map(|t| t.url()).collect();
    assert_eq!(urls, ["http://a:9091", "http://b:9091"]);
    assert_eq!(b.settings.allow.as_deref(), Some(&["a_*".to_owned()][..]));
    assert_eq!(b.settings.deny, ["b_*"]);
    assert_eq!(b.settings.headers.len(), 1);
    assert_eq!(b.grouping, [("instance".to_owned(), "x".to_owned())]);
    let b = env(&[(PUSHGATEWAY_REMOTE_WRITE_URL, "http://rw:9009/api/v1/write,")]).unwrap();
    assert_eq!(b.targets.len(), 1);
    // A list of no items is as if the variable were unset: it does not allow nothing.
    let b = env(&[(PUSHGATEWAY_ALLOW, ","), (PUSHGATEWAY_DENY, " , ")]).unwrap();
    assert_eq!((b.settings.allow, b.settings.deny.len()), (None, 0));
}

#[test]
fn default_is_the_builder_of_no_target() {
    let default = format!("{:?}", PushgatewayBuilder::default());
    assert_eq!(
        default,
        format!("{:?}", PushgatewayBuilder::with_targets([]))
    );
    assert_eq!(default, format!("{:?}", env(&[]).unwrap()));
    assert!(PushgatewayBuilder::default().targets.is_empty());
}

#[test]
fn the_plan_resolves_the_default_gateway_the_identity_and_the_spool() {
    use super::plan::{Delivery, Plan};
    // No target and no listener: the default gateway, as install pushes to it.
    let plan: Plan = PushgatewayBuilder::default().job("j").plan().unwrap();
    assert_eq!(plan.targets.len(), 1);
    let Delivery::Pushgateway { connection, .. } = &plan.targets[0].delivery else {
        panic!("not a Pushgateway target");
    };
    assert_eq!(connection.endpoint.as_str(), "http://127.0.0.1:9091/");
    assert!(plan.enabled && plan.listen.is_none());
    assert_eq!(plan.timing.interval, Some(DEFAULT_INTERVAL));
    // A listener alone: only scraped, no target.
    let plan = PushgatewayBuilder::default()
        .job("j")
        .listen("127.0.0.1:0")
        .plan()
        .unwrap();
    assert!(plan.targets.is_empty());
    // The job and grouping of a group path; the spool to the first Pushgateway target and
    // the first remote-write target only; interval 0 is off.
    let dir = std::env::temp_dir().join(format!("plan-spool-{}", std::process::id()));
    let plan = PushgatewayBuilder::with_targets([
        Target::textfile("/tmp"),
        Target::pushgateway("http://a:9091/metrics/job/batch/shard/3"),
        Target::pushgateway("http://b:9091"),
        Target::remote_write("http://rw:9009/api/v1/push"),
        Target::remote_write("http://rw2:9009/api/v1/push"),
    ])
    .spool_dir(&dir)
    .interval(Duration::ZERO)
    .plan()
    .unwrap();
    assert_eq!(plan.job, "batch");
    assert_eq!(plan.grouping, vec![("shard".to_owned(), "3".to_owned())]);
    assert_eq!(plan.timing.interval, None);
    let spooled: Vec<bool> = plan
        .targets
        .iter()
        .map(|t| match &t.delivery {
            Delivery::Pushgateway { spool, .. } | Delivery::RemoteWrite { spool, .. } => {
                spool.is_some()
            }
            Delivery::Textfile { .. } => false,
        })
        .collect();
    assert_eq!(spooled, [false, true, false, true, false]);
    let _ = std::fs::remove_dir_all(&dir);
}
