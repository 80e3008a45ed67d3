//! Grouping-key encoding, read back from a real Pushgateway.

mod common;

use common::*;

#[test]
fn awkward_job_and_grouping_values_round_trip() {
    let gw = Pushgateway::start();
    let labels = [
        ("empty", ""),
        ("slash", "a/b"),
        ("dot", "."),
        ("dots", ".."),
        ("space", "a b"),
        ("plus", "a+b"),
        ("percent", "100%"),
        ("unicode", "zürich ☃"),
        ("plain", "run-42_x"),
    ];
    let job = "my job/1";
    let mut args = Vec::new();
    for (k, v) in labels {
        args.push(k);
        args.push(v);
    }
    let (out, _) = run_job(
        false,
        "shutdown",
        job,
        &args,
        &[("PUSHGATEWAY_URL", &gw.url)],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok Some(200)\n",
        "{}",
        stderr(&out)
    );
    let mut expected = vec![("job", job)];
    expected.extend(labels);
    let group = gw
        .group(&expected)
        .unwrap_or_else(|| panic!("no group {expected:?} in {:#?}", gw.groups()));
    assert_eq!(group.value("records_total", &[]), 500.0);
    // The grouping labels are on every sample, exactly.
    for sample in group.samples("queue_depth") {
        for (k, v) in &expected {
            assert_eq!(sample["labels"][*k], *v, "{sample}");
        }
    }
}

#[test]
fn histograms_are_prometheus_histograms_with_the_default_buckets() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(false, "main", "histo", &[], &[("PUSHGATEWAY_URL", &gw.url)]);
    assert!(out.status.success());
    let (_, _, buckets) = gw.job("histo").histogram("record_seconds");
    let bounds: Vec<&str> = buckets.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        bounds,
        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    );
}

#[test]
fn without_lifecycle_metrics_the_group_holds_only_the_jobs_own() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "main",
        "plain",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url), ("TEST_NO_LIFECYCLE", "1")],
    );
    assert!(out.status.success());
    let group = gw.job("plain");
    assert_eq!(group.value("records_total", &[]), 500.0);
    for name in ["batch_job_outcome", "batch_job_start_time_seconds"] {
        assert!(!group.has(name), "{name}");
    }
}

#[test]
fn any_grouping_value_round_trips_through_the_real_gateway() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let gw = Pushgateway::start();
    // Each case is a job process and a read-back; a few dozen cover the space well with these
    // strategies (any Unicode but NUL, which a process argument cannot hold, and the
    // characters URLs treat specially).
    let mut runner = TestRunner::new(Config::with_cases(32));
    let strategy = (
        "[^\0]{1,10}",
        prop_oneof!["[^\0]{0,16}", "[./%+ ?#@=&;a-z]{0,8}"],
    );
    runner
        .run(&strategy, |(job, value)| {
            let (out, _) = run_job(
                false,
                "shutdown",
                &job,
                &["instance", &value],
                &[("PUSHGATEWAY_URL", &gw.url)],
            );
            prop_assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "ok Some(200)\n",
                "{}",
                stderr(&out)
            );
            let group = gw.group(&[("job", &job), ("instance", &value)]);
            prop_assert!(group.is_some(), "{job:?}/{value:?} not found");
            prop_assert_eq!(group.unwrap().value("records_total", &[]), 500.0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn gzip_bodies_are_accepted_by_the_real_gateway() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "shutdown",
        "gzipped",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url), ("TEST_GZIP", "1")],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok Some(200)\n",
        "{}",
        stderr(&out)
    );
    assert_job_values(&gw.job("gzipped"), "success", 0);
}

#[test]
fn protobuf_bodies_the_default_are_read_back_exactly_as_text_ones() {
    let gw = Pushgateway::start();
    for (job, gzip) in [("protobuf", false), ("protobuf-gzip", true)] {
        let mut env = vec![("PUSHGATEWAY_URL", gw.url.as_str())];
        if gzip {
            env.push(("TEST_GZIP", "1"));
        }
        let (out, _) = run_job(false, "shutdown", job, &[], &env);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ok Some(200)\n",
            "{}",
            stderr(&out)
        );
        let group = gw.job(job);
        assert_job_values(&group, "success", 0);
        assert_eq!(group.metric_type("records_total"), "COUNTER");
        assert_eq!(group.metric_type("queue_depth"), "GAUGE");
        assert_eq!(
            group.value(
                "pushgateway_exporter_pushes_total",
                &[("result", "success")]
            ),
            0.0
        );
    }
    // The same job in both formats gives the same group, sample for sample.
    let (out, _) = run_job(
        false,
        "shutdown",
        "as-text",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url), ("PUSHGATEWAY_FORMAT", "text")],
    );
    assert!(out.status.success());
    // Every family with its type, and each sample's labels (less the job, which differs) and
    // value; times and durations differ from run to run, so their values are left out.
    let varies = |name: &str| {
        name.ends_with("time_seconds")
            || name.contains("duration")
            || name.ends_with("_bytes_total")
    };
    let shape = |g: Group| {
        let mut families: Vec<(String, String, Vec<String>)> =
            g.0.as_object()
                .unwrap()
                .iter()
                .filter(|(_, f)| f.is_object() && f.get("type").is_some())
                .map(|(name, f)| {
                    let mut samples: Vec<String> = f["metrics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| {
                            let mut m = m.clone();
                            m["labels"].as_object_mut().unwrap().remove("job");
                            if varies(name) {
                                m.as_object_mut().unwrap().remove("value");
                            }
                            m.to_string()
                        })
                        .collect();
                    samples.sort();
                    (name.clone(), f["type"].to_string(), samples)
                })
                .collect();
        families.sort();
        families
    };
    let (text, protobuf) = (shape(gw.job("as-text")), shape(gw.job("protobuf")));
    assert_eq!(protobuf, text);
}

#[test]
fn interval_pushes_reuse_one_connection() {
    use common::proxy::{Fault, Proxy};

    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Pass);
    let (out, _) = run_job(
        false,
        "run",
        "reused",
        &[],
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_INTERVAL", "50ms"),
            ("TEST_RUN_MS", "600"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_job_values(&gw.job("reused"), "success", 0);
    // About a dozen interval pushes and the final push, over one connection.
    assert!(proxy.requests() >= 5, "{} requests", proxy.requests());
    assert_eq!(proxy.connections(), 1);
    println!(
        "{} requests over {} connection",
        proxy.requests(),
        proxy.connections()
    );
}

#[test]
fn the_exporters_own_metrics_are_pushed_and_can_be_turned_off() {
    let gw = Pushgateway::start();
    let env = |job_self_metrics: Option<&'static str>| {
        let mut env = vec![
            ("PUSHGATEWAY_URL", gw.url.clone()),
            ("PUSHGATEWAY_INTERVAL", "50ms".into()),
            ("TEST_RUN_MS", "400".into()),
        ];
        if let Some(v) = job_self_metrics {
            env.push(("PUSHGATEWAY_SELF_METRICS", v.into()));
        }
        env
    };
    let run = |job: &str, env: Vec<(&str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (out, _) = run_job(false, "run", job, &[], &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run("observed", env(None));
    let group = gw.job("observed");
    assert_job_values(&group, "success", 0);
    // Each target's metrics carry its endpoint.
    let target = format!("{}/", gw.url);
    let t = ("target", target.as_str());
    // The interval pushes before the final one, all successful.
    let ok = group.value(
        "pushgateway_exporter_pushes_total",
        &[t, ("result", "success")],
    );
    assert!((3.0..=9.0).contains(&ok), "{ok} successful pushes");
    assert_eq!(
        group.value(
            "pushgateway_exporter_pushes_total",
            &[t, ("result", "failure")]
        ),
        0.0
    );
    let sent = group.value("pushgateway_exporter_sent_bytes_total", &[t]);
    assert!(sent > ok * 500.0, "{sent} bytes in {ok} pushes");
    let duration = group.value("pushgateway_exporter_push_duration_seconds", &[t]);
    assert!(duration > 0.0 && duration < 1.0, "{duration}");
    let last = group.value("pushgateway_exporter_last_success_time_seconds", &[t]);
    let started = group.value("batch_job_start_time_seconds", &[]);
    assert!(
        last > started && last < started + 5.0,
        "{last} vs {started}"
    );

    run("quiet", env(Some("0")));
    let group = gw.job("quiet");
    assert_job_values(&group, "success", 0);
    let own: Vec<&String> = group
        .0
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("pushgateway_exporter_"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
}

#[test]
fn ci_grouping_labels_come_from_the_ci_environment() {
    let gw = Pushgateway::start();
    let run = |job: &str, ci_labels: &str| {
        let mut cmd = job_command(
            false,
            "main",
            job,
            &[
                ("PUSHGATEWAY_URL", &gw.url),
                ("PUSHGATEWAY_CI_LABELS", ci_labels),
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REPOSITORY", "acme/ingest"),
                ("GITHUB_WORKFLOW", "nightly load"),
                ("GITHUB_REF_NAME", "main"),
                ("GITHUB_SHA", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
            ],
        );
        cmd.env_remove("GITLAB_CI");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run("in-ci", "1");
    let stable = [
        ("job", "in-ci"),
        ("ci_repository", "acme/ingest"),
        ("ci_workflow", "nightly load"),
        ("ci_ref", "main"),
    ];
    assert_job_values(
        &gw.group(&stable)
            .expect("grouped by repository, workflow and ref"),
        "success",
        0,
    );
    run("per-commit", "commit");
    let mut with_commit = stable.to_vec();
    with_commit[0] = ("job", "per-commit");
    with_commit.push(("ci_commit", "9fceb02d0ae598e95dc970b74767f19372d61af8"));
    assert!(gw.group(&with_commit).is_some(), "{:#?}", gw.groups());
}

/// Series the gateway refuses a whole body for are left out with one warning each; the body is
/// accepted and every other value arrives exactly, in both exposition formats, on interval
/// pushes and on the final push.
#[test]
fn series_the_gateway_would_refuse_are_left_out_and_everything_else_arrives() {
    let gw = Pushgateway::start();
    for format in ["text", "protobuf"] {
        let job = format!("bad-series-{format}");
        let (out, _) = run_job(
            false,
            "bad-series",
            &job,
            &[],
            &[
                ("PUSHGATEWAY_URL", &gw.url),
                ("PUSHGATEWAY_FORMAT", format),
                ("PUSHGATEWAY_INTERVAL", "50ms"),
            ],
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("failed"), "{err}");
        let group = gw.job(&job);
        assert!(group.last_push_successful(), "{err}");
        assert_job_values(&group, "success", 0);
        // The good series beside the bad ones, and the one kept of each clash.
        assert_eq!(group.value("tasks_total", &[("kind", "c")]), 4.0);
        assert_eq!(group.samples("tasks_total").len(), 1, "{:#}", group.0);
        assert_eq!(group.metric_type("workers"), "COUNTER");
        assert_eq!(group.value("workers", &[]), 6.0);
        assert_eq!(group.value("rows_read", &[("table", "t")]), 9.0);
        assert_eq!(group.samples("rows_read").len(), 1);
        assert!(!group.has("fetch_seconds"), "{:#}", group.0);
        assert!(!group.has("record_seconds_count"), "{:#}", group.0);
        // The lifecycle metric, not the job's histogram of the same name.
        assert_eq!(group.metric_type("batch_job_duration_seconds"), "GAUGE");
        // One warning per left-out series, however many pushes ran.
        let warnings: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("is left out of every push"))
            .collect();
        let expected = [
            "\"\" is left out of every push: its metric name is empty",
            "tasks_total{__tenant=\"a\"} is left out of every push: label names starting with `__`",
            "tasks_total{kind=\"a\",kind=\"b\"} is left out of every push: the label `kind` is \
             given twice",
            "workers is left out of every push: `workers` is recorded as a gauge and as a counter",
            "batch_job_duration_seconds is left out of every push: `batch_job_duration_seconds` \
             is the name of one of the exporter's own lifecycle metrics",
            "rows_read{table=\"t\"} is left out of every push: it is the same series as another",
            "fetch_seconds{le=\"x\"} is left out of every push: a histogram cannot have a label \
             named `le`",
            "record_seconds_count is left out of every push: `record_seconds_count` is also a \
             series name of the histogram `record_seconds`",
        ];
        for e in expected {
            assert_eq!(
                warnings.iter().filter(|w| w.contains(e)).count(),
                1,
                "{e}\n{err}"
            );
        }
        assert_eq!(warnings.len(), expected.len(), "{err}");
    }
}

/// `PUSHGATEWAY_ALLOW` and `PUSHGATEWAY_DENY` decide what reaches the gateway; the lifecycle
/// and the exporter's own metrics are filtered like any other name.
#[test]
fn allow_and_deny_lists_from_the_environment_filter_what_is_pushed() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "main",
        "denied",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_DENY", "queue_*, pushgateway_exporter_*"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let group = gw.job("denied");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(group.value("parse_errors_total", &[("kind", "json")]), 7.0);
    assert!(group.has("batch_job_outcome"));
    assert!(!group.has("queue_depth"), "{:#}", group.0);
    assert!(
        !group.has("pushgateway_exporter_pushes_total"),
        "{:#}",
        group.0
    );

    let (out, _) = run_job(
        false,
        "main",
        "allowed",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_ALLOW", "*_total"),
            ("PUSHGATEWAY_DENY", "pushgateway_exporter_*"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let group = gw.job("allowed");
    let mut names: Vec<&String> = group
        .0
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_total") || k.starts_with("batch_job") || *k == "queue_depth")
        .collect();
    names.sort();
    assert_eq!(names, ["parse_errors_total", "records_total"]);
}

/// A trailing, leading or doubled comma in `PUSHGATEWAY_ALLOW` and `PUSHGATEWAY_DENY` adds
/// no pattern, as in every list variable: the lists filter as they would without it.
#[test]
fn empty_items_of_allow_and_deny_lists_are_skipped() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "main",
        "commas",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_ALLOW", "*_total,"),
            ("PUSHGATEWAY_DENY", ",pushgateway_exporter_*,,"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let group = gw.job("commas");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert!(!group.has("queue_depth"), "{:#}", group.0);
    assert!(
        !group.has("pushgateway_exporter_pushes_total"),
        "{:#}",
        group.0
    );
}

/// Headers the transport sets (the body's framing and encoding, the host, the connection,
/// remote write's version) are refused at install, naming the variable; nothing is pushed.
#[test]
fn transport_headers_from_the_environment_are_refused_and_nothing_is_pushed() {
    let gw = Pushgateway::start();
    for (i, header) in [
        "Content-Length=0",
        "host=evil.example",
        "Transfer-Encoding=chunked",
        "CONTENT-TYPE=text/plain",
        "Content-Encoding=identity",
        "Connection=close",
        "X-Prometheus-Remote-Write-Version=2.0.0",
    ]
    .into_iter()
    .enumerate()
    {
        let job = format!("framing_{i}");
        let headers = format!("X-Scope-OrgID=team-a,{header}");
        let env = [
            ("PUSHGATEWAY_URL", gw.url.as_str()),
            ("PUSHGATEWAY_HEADERS", &headers),
        ];
        let out = job_command(false, "try-init", &job, &env).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (name, value) = header.split_once('=').unwrap();
        assert!(
            stdout.starts_with(&format!(
                "err invalid value \"X-Scope-OrgID=***,{name}=***\" in environment variable \
                 PUSHGATEWAY_HEADERS: "
            )) && stdout.contains("is set by the exporter for each request and cannot be given"),
            "{stdout}"
        );
        assert!(
            !stdout.contains(&format!("={value}")) && !stdout.contains("team-a"),
            "{stdout}"
        );
        assert!(
            gw.group(&[("job", &job)]).is_none(),
            "{header}: {:#?}",
            gw.groups()
        );
    }
    // The same job with only the tenant header is pushed.
    let env = [
        ("PUSHGATEWAY_URL", gw.url.as_str()),
        ("PUSHGATEWAY_HEADERS", "X-Scope-OrgID=team-a"),
    ];
    let out = job_command(false, "try-init", "framing_ok", &env)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok"),
        "{}",
        stderr(&out)
    );
    assert!(gw.group(&[("job", "framing_ok")]).is_some());
}
