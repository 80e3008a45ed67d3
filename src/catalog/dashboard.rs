//! A Grafana dashboard generated from a [`Catalog`]: a row per metric-name prefix, a row for
//! the batch-job lifecycle metrics and one for the exporter's own; built as JSON values with
//! `serde_json`.

use serde_json::{json, Value};

use super::{is_sent_label_name, Catalog, CatalogError, MetricInfo, MetricType};
use crate::lifecycle;
use crate::self_metrics::SELF_PREFIX;

/// Settings of [`Catalog::grafana_dashboard`].
///
/// ```
/// use metrics_exporter_pushgateway::{Catalog, DashboardOptions};
///
/// let options = DashboardOptions::new("Ingester")
///     .uid("ingester")
///     .grouping_label("instance");
/// let dashboard = Catalog::default().grafana_dashboard(&options)?;
/// assert_eq!(dashboard["title"], "Ingester");
/// # Ok::<(), metrics_exporter_pushgateway::CatalogError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    title: String,
    uid: Option<String>,
    grouping_labels: Vec<String>,
    lifecycle: bool,
    exporter: bool,
}

impl DashboardOptions {
    /// A dashboard titled `title`, with the `datasource` and `job` template variables, the
    /// lifecycle row and the exporter's row.
    pub fn new(title: impl Into<String>) -> Self {
        DashboardOptions {
            title: title.into(),
            uid: None,
            grouping_labels: Vec::new(),
            lifecycle: true,
            exporter: true,
        }
    }

    /// The dashboard's `uid` (stable URLs across imports). Default: none (Grafana assigns
    /// one).
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Adds a template variable for the grouping label `name` (e.g. `instance`); every query
    /// selects `name=~"$name"`. [`Catalog::grafana_dashboard`] refuses a name that is not a
    /// valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`), `job` (always a
    /// variable) and a name given twice.
    pub fn grouping_label(mut self, name: impl Into<String>) -> Self {
        self.grouping_labels.push(name.into());
        self
    }

    /// Whether the row of the batch-job lifecycle metrics is included (default: yes; leave it
    /// out for a job installed with `lifecycle_metrics(false)`).
    pub fn lifecycle_row(mut self, on: bool) -> Self {
        self.lifecycle = on;
        self
    }

    /// Whether the row of the exporter's own metrics is included (default: yes; leave it out
    /// for a job installed with `self_metrics(false)`).
    pub fn exporter_row(mut self, on: bool) -> Self {
        self.exporter = on;
        self
    }
}

/// One panel to be: title, description, Grafana unit, and its queries with their legends.
struct Panel {
    title: String,
    description: String,
    unit: &'static str,
    queries: Vec<(String, String)>,
}

/// A histogram's panel: p50, p90 and p99 by `histogram_quantile` over `rate`, the rate of its
/// buckets.
fn quantile_panel(m: &MetricInfo, description: String, rate: &str) -> Panel {
    Panel {
        title: format!("{} (p50, p90, p99)", m.name),
        description,
        unit: grafana_unit(m.unit.as_deref(), false),
        queries: [0.5, 0.9, 0.99]
            .iter()
            .map(|q| {
                (
                    format!("histogram_quantile({q}, {rate})"),
                    format!("p{}", (q * 100.0_f64).round()),
                )
            })
            .collect(),
    }
}

/// The Grafana unit for a `metrics` unit; `rate` for the per-second rate of a counter of it.
fn grafana_unit(unit: Option<&str>, rate: bool) -> &'static str {
    match (unit, rate) {
        (Some("seconds"), false) => "s",
        (Some("milliseconds"), false) => "ms",
        (Some("microseconds"), false) => "µs",
        (Some("nanoseconds"), false) => "ns",
        (Some("bytes"), false) => "bytes",
        (Some("kibibytes"), false) => "kbytes",
        (Some("mebibytes"), false) => "mbytes",
        (Some("gibibytes"), false) => "gbytes",
        (Some("bytes"), true) => "Bps",
        (Some("percent"), false) => "percent",
        (Some("bits_per_second"), false) => "bps",
        (Some("count_per_second"), false) | (Some("count"), true) | (None, true) => "cps",
        _ => "short",
    }
}

fn legend(labels: &[&str]) -> String {
    labels
        .iter()
        .map(|l| format!("{{{{{l}}}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl DashboardOptions {
    /// Each grouping label a valid label name, not `job`, given once.
    fn check(&self) -> Result<(), CatalogError> {
        for (i, name) in self.grouping_labels.iter().enumerate() {
            let reason = if !is_sent_label_name(name) {
                "is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            } else if name == "job" {
                "is the job, which is always a template variable"
            } else if self.grouping_labels[..i].contains(name) {
                "is given twice"
            } else {
                continue;
            };
            return Err(CatalogError::InvalidName(format!(
                "the dashboard's grouping label {name:?} {reason}"
            )));
        }
        Ok(())
    }

    /// The selector every query carries: the job and grouping labels' template variables.
    fn selector(&self) -> String {
        std::iter::once("job".to_owned())
            .chain(self.grouping_labels.iter().cloned())
            .map(|l| format!("{l}=~\"${l}\""))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The panel of one catalog metric: a counter's rate, a gauge's value (the age of a Unix
    /// time, for a name ending in `_time_seconds`), a histogram's p50, p90 and p99.
    fn panel(&self, m: &MetricInfo) -> Panel {
        let sel = self.selector();
        let own: Vec<&str> = m
            .labels
            .iter()
            .map(String::as_str)
            .filter(|l| *l != "job" && !self.grouping_labels.iter().any(|g| g == l))
            .collect();
        let by = own.join(", ");
        let name = &m.name;
        let description = m.help.clone().unwrap_or_default();
        match m.metric_type {
            MetricType::Counter => Panel {
                title: format!("{name} (per second)"),
                description,
                unit: grafana_unit(m.unit.as_deref(), true),
                queries: vec![(
                    format!("sum by ({by}) (rate({name}{{{sel}}}[$__rate_interval]))"),
                    legend(&own),
                )],
            },
            MetricType::Gauge if name.ends_with("_time_seconds") => Panel {
                title: format!("{name} (age)"),
                description,
                unit: "s",
                queries: vec![(format!("time() - {name}{{{sel}}}"), legend(&own))],
            },
            MetricType::Gauge => Panel {
                title: name.clone(),
                description,
                unit: grafana_unit(m.unit.as_deref(), false),
                queries: vec![(format!("{name}{{{sel}}}"), legend(&own))],
            },
            MetricType::Histogram => quantile_panel(
                m,
                description,
                &format!("sum by (le) (rate({name}_bucket{{{sel}}}[$__rate_interval]))"),
            ),
            // One series of native buckets: no `_bucket`, no `le`.
            MetricType::NativeHistogram => quantile_panel(
                m,
                description,
                &format!("sum(rate({name}{{{sel}}}[$__rate_interval]))"),
            ),
        }
    }

    fn lifecycle_panels(&self) -> Vec<Panel> {
        let sel = self.selector();
        vec![
            Panel {
                title: "Time since last success".into(),
                description: format!("time() - {}", lifecycle::LAST_SUCCESS),
                unit: "s",
                queries: vec![(
                    format!("time() - {}{{{sel}}}", lifecycle::LAST_SUCCESS),
                    String::new(),
                )],
            },
            Panel {
                title: "Duration".into(),
                description: "Wall time of the last run (so far, while it runs).".into(),
                unit: "s",
                queries: vec![(format!("{}{{{sel}}}", lifecycle::DURATION), String::new())],
            },
            Panel {
                title: "Outcome".into(),
                description: "How the last run ended: success, error, panic, signal, or running."
                    .into(),
                unit: "short",
                queries: vec![(
                    format!("{}{{{sel}}} == 1", lifecycle::OUTCOME),
                    "{{outcome}}".into(),
                )],
            },
            Panel {
                title: "Exit code".into(),
                description: "Exit code of the last finished run.".into(),
                unit: "short",
                queries: vec![(format!("{}{{{sel}}}", lifecycle::EXIT_CODE), String::new())],
            },
        ]
    }

    fn exporter_panels(&self, catalog: &Catalog) -> Vec<Panel> {
        let sel = self.selector();
        let p = SELF_PREFIX;
        let mut panels = vec![
            Panel {
                title: "Pushes (per second)".into(),
                description: "Pushes by target and result.".into(),
                unit: "cps",
                queries: vec![(
                    format!(
                        "sum by (target, result) (rate({p}pushes_total{{{sel}}}[$__rate_interval]))"
                    ),
                    "{{target}} {{result}}".into(),
                )],
            },
            Panel {
                title: "Push duration".into(),
                description: "Wall time of the last push to each target, retries included.".into(),
                unit: "s",
                queries: vec![(
                    format!("{p}push_duration_seconds{{{sel}}}"),
                    "{{target}}".into(),
                )],
            },
            Panel {
                title: "Bytes sent (per second)".into(),
                description: "Request body bytes sent to each target.".into(),
                unit: "Bps",
                queries: vec![(
                    format!(
                        "sum by (target) (rate({p}sent_bytes_total{{{sel}}}[$__rate_interval]))"
                    ),
                    "{{target}}".into(),
                )],
            },
            Panel {
                title: "Time since last successful push".into(),
                description: "Age of the last successful push to each target.".into(),
                unit: "s",
                queries: vec![(
                    format!("time() - {p}last_success_time_seconds{{{sel}}}"),
                    "{{target}}".into(),
                )],
            },
        ];
        // The spool's metrics, where the program has a spool.
        panels.extend(
            catalog
                .metrics()
                .iter()
                .filter(|m| m.name.starts_with(&format!("{p}spool_")))
                .map(|m| self.panel(m)),
        );
        panels
    }
}

/// The part of a metric's name before its first `_`: its row.
fn prefix(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

impl Catalog {
    /// A Grafana dashboard (its JSON model, for the import dialog, provisioning or the HTTP
    /// API) of this catalog's metrics: a row per metric-name prefix (`ingester_*`, ...) with a
    /// panel per metric (a counter's `rate()`, a gauge's value, or the age `time() - x` of a
    /// gauge named `*_time_seconds`, a histogram's p50, p90 and p99 `histogram_quantile`), a
    /// row for the batch-job lifecycle metrics (time since the last success, duration,
    /// outcome, exit code) and one for the exporter's own metrics.
    ///
    /// Template variables: `datasource` (a Prometheus data source, `${datasource}` in every
    /// panel), `job`, and one per [`grouping_label`](DashboardOptions::grouping_label); every
    /// query selects `job=~"$job"` and each grouping label the same way. Rates use
    /// `$__rate_interval`.
    ///
    /// # Errors
    ///
    /// [`CatalogError::InvalidName`] when a metric or label name of the catalog (a catalog
    /// made with [`Catalog::new`] is not checked) or a grouping label of `options` is not
    /// valid: every name goes into PromQL as it is.
    pub fn grafana_dashboard(&self, options: &DashboardOptions) -> Result<Value, CatalogError> {
        self.check_names()?;
        options.check()?;
        let mut rows: Vec<(String, Vec<Panel>)> = Vec::new();
        for m in &self.metrics {
            if m.name.starts_with(SELF_PREFIX) || lifecycle::NAMES.contains(&m.name.as_str()) {
                continue;
            }
            let row = prefix(&m.name);
            let panel = options.panel(m);
            match rows.last_mut() {
                Some((title, panels)) if title == row => panels.push(panel),
                _ => rows.push((row.to_owned(), vec![panel])),
            }
        }
        if options.lifecycle {
            rows.push(("Batch job".into(), options.lifecycle_panels()));
        }
        if options.exporter {
            rows.push(("Exporter".into(), options.exporter_panels(self)));
        }
        let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
        let mut panels = Vec::new();
        let mut id = 0;
        let mut y = 0;
        for (title, row) in rows {
            id += 1;
            panels.push(json!({
                "type": "row",
                "id": id,
                "title": title,
                "collapsed": false,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }));
            y += 1;
            for (i, panel) in row.into_iter().enumerate() {
                id += 1;
                let targets: Vec<Value> = panel
                    .queries
                    .into_iter()
                    .enumerate()
                    .map(|(n, (expr, legend))| {
                        json!({
                            "refId": char::from(b'A' + n as u8).to_string(),
                            "datasource": datasource,
                            "expr": expr,
                            "legendFormat": legend,
                        })
                    })
                    .collect();
                panels.push(json!({
                    "type": "timeseries",
                    "id": id,
                    "title": panel.title,
                    "description": panel.description,
                    "datasource": datasource,
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": y + (i / 3) * 8},
                    "targets": targets,
                }));
            }
            y += 8 * row_height(&panels);
        }
        let mut variables = vec![json!({
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
        })];
        let mut scope = String::new();
        for label in
            std::iter::once("job").chain(options.grouping_labels.iter().map(String::as_str))
        {
            let query = format!("label_values({{{scope}}}, {label})");
            let query = if scope.is_empty() {
                format!("label_values({label})")
            } else {
                query
            };
            variables.push(json!({
                "name": label,
                "label": label,
                "type": "query",
                "datasource": datasource,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "definition": query,
                "refresh": 2,
                "includeAll": true,
                "allValue": ".*",
                "multi": true,
            }));
            if !scope.is_empty() {
                scope.push(',');
            }
            scope.push_str(&format!("{label}=~\"${label}\""));
        }
        let mut dashboard = json!({
            "title": options.title,
            "tags": ["metrics-exporter-pushgateway"],
            "editable": true,
            "schemaVersion": 39,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "1m",
            "templating": {"list": variables},
            "panels": panels,
        });
        if let Some(uid) = &options.uid {
            dashboard["uid"] = json!(uid);
        }
        Ok(dashboard)
    }
}

/// How many rows of 8-high panels the last row's panels take (three panels per line).
fn row_height(panels: &[Value]) -> usize {
    let in_row = panels
        .iter()
        .rev()
        .take_while(|p| p["type"] != "row")
        .count();
    in_row.div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, t: MetricType, unit: Option<&str>, labels: &[&str]) -> MetricInfo {
        MetricInfo {
            name: name.into(),
            metric_type: t,
            unit: unit.map(str::to_owned),
            help: Some(format!("{name} help")),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            series: 1,
        }
    }

    fn exprs(panel: &Value) -> Vec<&str> {
        panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn rows_panels_and_variables() {
        let catalog = Catalog::new([
            info(
                "ingester_bytes_total",
                MetricType::Counter,
                Some("bytes"),
                &["format"],
            ),
            info("ingester_input_files", MetricType::Gauge, None, &[]),
            info(
                "ingester_record_duration_seconds",
                MetricType::Histogram,
                Some("seconds"),
                &["format"],
            ),
            info(
                "cache_last_refresh_time_seconds",
                MetricType::Gauge,
                Some("seconds"),
                &[],
            ),
            info(
                "pushgateway_exporter_pushes_total",
                MetricType::Counter,
                None,
                &["result", "target"],
            ),
        ]);
        let d = catalog
            .grafana_dashboard(&DashboardOptions::new("Ingester").grouping_label("instance"))
            .unwrap();
        let panels = d["panels"].as_array().unwrap();
        let rows: Vec<&str> = panels
            .iter()
            .filter(|p| p["type"] == "row")
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        assert_eq!(rows, ["cache", "ingester", "Batch job", "Exporter"]);
        let by_title = |t: &str| {
            panels
                .iter()
                .find(|p| p["title"] == t)
                .unwrap_or_else(|| panic!("no panel {t}"))
        };
        let sel = r#"job=~"$job",instance=~"$instance""#;
        assert_eq!(
            exprs(by_title("ingester_bytes_total (per second)")),
            [format!(
                "sum by (format) (rate(ingester_bytes_total{{{sel}}}[$__rate_interval]))"
            )]
        );
        assert_eq!(
            by_title("ingester_bytes_total (per second)")["fieldConfig"]["defaults"]["unit"],
            "Bps"
        );
        assert_eq!(
            exprs(by_title("ingester_input_files")),
            [format!("ingester_input_files{{{sel}}}")]
        );
        assert_eq!(
            exprs(by_title("cache_last_refresh_time_seconds (age)")),
            [format!("time() - cache_last_refresh_time_seconds{{{sel}}}")]
        );
        assert_eq!(
            exprs(by_title("ingester_record_duration_seconds (p50, p90, p99)")),
            [0.5, 0.9, 0.99].map(|q| format!(
                "histogram_quantile({q}, sum by (le) \
                 (rate(ingester_record_duration_seconds_bucket{{{sel}}}[$__rate_interval])))"
            ))
        );
        assert_eq!(
            exprs(by_title("Time since last success")),
            [format!(
                "time() - batch_job_last_success_time_seconds{{{sel}}}"
            )]
        );
        // Every panel reads the datasource variable.
        for p in panels.iter().filter(|p| p["type"] != "row") {
            assert_eq!(p["datasource"]["uid"], "${datasource}");
        }
        let vars: Vec<(&str, &str)> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap(),
                    v["definition"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            vars,
            [
                ("datasource", ""),
                ("job", "label_values(job)"),
                ("instance", r#"label_values({job=~"$job"}, instance)"#),
            ]
        );
        // Panels never overlap: each row starts below the last one's panels.
        let mut taken = std::collections::HashSet::new();
        for p in panels {
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(taken.insert((cx, cy)), "overlap at {cx},{cy}: {p}");
                }
            }
        }
    }

    #[test]
    fn names_that_would_change_the_promql_are_refused() {
        let ok = Catalog::new([info(
            "ingester_rows_total",
            MetricType::Counter,
            None,
            &["a"],
        )]);
        let refused = |catalog: &Catalog, options: &DashboardOptions| {
            catalog.grafana_dashboard(options).unwrap_err().to_string()
        };
        let options = DashboardOptions::new("I");
        assert_eq!(
            refused(
                &ok,
                &options
                    .clone()
                    .grouping_label(r#"instance"}) or vector(1) #"#)
            ),
            r#"the dashboard's grouping label "instance\"}) or vector(1) #" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"#
        );
        assert_eq!(
            refused(&ok, &options.clone().grouping_label("__name__")),
            r#"the dashboard's grouping label "__name__" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"#
        );
        assert_eq!(
            refused(&ok, &options.clone().grouping_label("job")),
            r#"the dashboard's grouping label "job" is the job, which is always a template variable"#
        );
        assert_eq!(
            refused(
                &ok,
                &options.clone().grouping_label("a").grouping_label("a")
            ),
            r#"the dashboard's grouping label "a" is given twice"#
        );
        // A catalog made in code is checked too.
        let bad = Catalog::new([info(
            r#"up{job="x"} or vector(1) #"#,
            MetricType::Gauge,
            None,
            &[],
        )]);
        assert_eq!(
            refused(&bad, &options),
            r#"the metric name "up{job=\"x\"} or vector(1) #" is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)"#
        );
        let bad = Catalog::new([info("m", MetricType::Counter, None, &["a) (x"])]);
        assert!(refused(&bad, &options).contains(r#"the label name "a) (x" is not valid"#));
        let d = ok
            .grafana_dashboard(&options.grouping_label("instance"))
            .unwrap();
        assert_eq!(d["templating"]["list"].as_array().unwrap().len(), 3);
    }
}
