//! The metric catalog: every metric the program described or recorded, with its type, unit,
//! help, label names and series count, as [`PushHandle::catalog`](crate::PushHandle::catalog)
//! returns it. Rendered as Markdown (a repository's `METRICS.md`) and read back from it,
//! serialised as JSON (feature `serde`), compared with a checked-in one ([`Catalog::diff`]),
//! and turned into a Grafana dashboard ([`Catalog::grafana_dashboard`], feature `serde`).

#[cfg(feature = "serde")]
mod dashboard;
mod markdown;

use std::collections::{BTreeSet, HashSet};
use std::fmt;

#[cfg(feature = "serde")]
pub use dashboard::DashboardOptions;

use crate::names::{is_label_name, is_metric_name};
use crate::snapshot::{Description, Kind, Snapshot};
use markdown::{cells, escape, split_unescaped, unescape, unquote, CODE};

pub use crate::snapshot::Kind as MetricType;

/// One metric of a [`Catalog`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MetricInfo {
    /// The name as sent (characters a metric name cannot hold replaced by `_`).
    pub name: String,
    /// Its type.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub metric_type: MetricType,
    /// The unit given to `describe_*` as `metrics` names it (`seconds`, `bytes`, `count`, ...),
    /// if any.
    #[cfg_attr(feature = "serde", serde(default))]
    pub unit: Option<String>,
    /// The help text given to `describe_*`, if any.
    #[cfg_attr(feature = "serde", serde(default))]
    pub help: Option<String>,
    /// The label names of its series (global labels included; for a histogram without `le`),
    /// sorted.
    #[cfg_attr(feature = "serde", serde(default))]
    pub labels: Vec<String>,
    /// How many series it has now (0 for a metric described and not recorded yet). Not
    /// compared by [`Catalog::diff`]: it follows the data.
    #[cfg_attr(feature = "serde", serde(default))]
    pub series: usize,
}

/// Every metric described (`describe_counter!`, ...) or recorded so far, sorted by name: what
/// [`PushHandle::catalog`](crate::PushHandle::catalog) returns.
///
/// Render it as Markdown for a repository ([`to_markdown`](Self::to_markdown), a
/// `METRICS.md`), as JSON (`to_json`, feature `serde`), or as a Grafana dashboard
/// (`grafana_dashboard`, feature `serde`); check a test's running catalog against the one
/// checked in with [`diff`](Self::diff):
///
/// ```no_run
/// use metrics_exporter_pushgateway::Catalog;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = metrics_exporter_pushgateway::try_init("ingester")?;
/// // ... run the code that describes and records the metrics ...
/// let checked_in = Catalog::from_markdown(&std::fs::read_to_string("METRICS.md")?)?;
/// let drift = guard.catalog().diff(&checked_in);
/// assert!(drift.is_empty(), "{drift}"); // what was added, removed or changed
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Catalog {
    metrics: Vec<MetricInfo>,
}

/// A checked-in catalog that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A line of the Markdown table is not what [`Catalog::to_markdown`] writes.
    #[error("line {line} of the metric catalog: {reason}")]
    Markdown {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A metric or label name that is not valid (a metric name is `[a-zA-Z_:][a-zA-Z0-9_:]*`,
    /// a label name `[a-zA-Z_][a-zA-Z0-9_]*` not starting with `__`), in a catalog read with
    /// `from_json` or given to `grafana_dashboard`, or a grouping label of
    /// `DashboardOptions` that is not a valid label name: which name, and why.
    #[error("{0}")]
    InvalidName(String),
    /// The text has no metric table at all.
    #[error("no metric table (a `| name | type | unit | labels | series | help |` header) found")]
    NoTable,
    /// The JSON does not hold a catalog.
    #[cfg(feature = "serde")]
    #[error("the metric catalog is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

const HEADER: &str = "| name | type | unit | labels | series | help |";

impl Catalog {
    /// A catalog of `metrics` (sorted by name; of two of the same name, the first is kept; an
    /// empty unit or help is none). The names are not checked here: the readers
    /// ([`from_markdown`](Self::from_markdown), `from_json`) and `grafana_dashboard` refuse
    /// names that are not valid.
    pub fn new(metrics: impl IntoIterator<Item = MetricInfo>) -> Self {
        let mut metrics: Vec<MetricInfo> = metrics
            .into_iter()
            .map(|mut m| {
                m.unit = m.unit.filter(|u| !u.is_empty());
                m.help = m.help.filter(|h| !h.is_empty());
                m
            })
            .collect();
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        metrics.dedup_by(|b, a| a.name == b.name);
        Catalog { metrics }
    }

    /// The catalog of a snapshot's families and the registry's descriptions.
    pub(crate) fn build(
        snapshot: &Snapshot,
        described: Vec<(String, MetricType, Description)>,
    ) -> Self {
        let mut metrics: Vec<MetricInfo> = Vec::new();
        // The names taken so far, so that each name is looked up once, not compared with
        // every metric before it.
        let mut taken: HashSet<&str> = HashSet::new();
        for family in snapshot.families() {
            // A name recorded as two types is sent as one of them only: the family the
            // snapshot kept.
            if !taken.insert(family.name.as_str()) {
                continue;
            }
            let mut labels = BTreeSet::new();
            let mut series = 0;
            let mut native_only = family.kind == Kind::Histogram;
            for s in snapshot.series(family) {
                series += 1;
                labels.extend(s.labels().map(|(name, _)| name.to_owned()));
                native_only &= s.native().is_some() && !s.classic();
            }
            metrics.push(MetricInfo {
                name: family.name.clone(),
                metric_type: if native_only && series > 0 {
                    Kind::NativeHistogram
                } else {
                    family.kind
                },
                unit: family.unit.map(str::to_owned),
                help: family.help.clone(),
                labels: labels.into_iter().collect(),
                series,
            });
        }
        // The registry holds one description per name: only the recorded ones are taken.
        for (name, kind, description) in described {
            if taken.contains(name.as_str()) {
                continue;
            }
            metrics.push(MetricInfo {
                name,
                metric_type: kind,
                unit: description.unit.map(|u| u.as_str().to_owned()),
                help: Some(description.help.to_string()),
                labels: Vec::new(),
                series: 0,
            });
        }
        Catalog::new(metrics)
    }

    /// The metrics, sorted by name.
    pub fn metrics(&self) -> &[MetricInfo] {
        &self.metrics
    }

    /// The metric named `name` (as sent), if any.
    pub fn get(&self, name: &str) -> Option<&MetricInfo> {
        self.metrics
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.metrics[i])
    }

    /// The catalog as a Markdown document (a repository's `METRICS.md`): a title, one line on
    /// where it comes from, and a table with a row per metric.
    /// [`from_markdown`](Self::from_markdown) reads it back: any unit and help text (`\`,
    /// `|`, line feeds, carriage returns and whitespace at either end are escaped with a `\`)
    /// and any name (a backtick and a comma are escaped too) keep the table's six cells.
    ///
    /// ```text
    /// | name | type | unit | labels | series | help |
    /// |---|---|---|---|---|---|
    /// | `ingester_bytes_total` | counter | bytes | `format` | 2 | Bytes read from the input files. |
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "# Metrics\n\nEvery metric the program describes or records, from \
             `metrics_exporter_pushgateway::Catalog::to_markdown`. A test compares it with the \
             running program's catalog (`Catalog::diff`).\n\n",
        );
        out.push_str(HEADER);
        out.push_str("\n|---|---|---|---|---|---|\n");
        for m in &self.metrics {
            let labels: Vec<String> = m
                .labels
                .iter()
                .map(|l| format!("`{}`", escape(l, CODE)))
                .collect();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                escape(&m.name, CODE),
                m.metric_type,
                m.unit
                    .as_deref()
                    .map_or_else(String::new, |u| escape(u, "")),
                labels.join(", "),
                m.series,
                m.help
                    .as_deref()
                    .map_or_else(String::new, |h| escape(h, "")),
            ));
        }
        out
    }

    /// Reads a catalog from the Markdown [`to_markdown`](Self::to_markdown) writes: the first
    /// table with its header; text around it is ignored. An empty unit or help cell is none.
    ///
    /// # Errors
    ///
    /// [`CatalogError`] naming the line when a row does not have the table's six cells, a type
    /// is not `counter`, `gauge` or `histogram`, a series count is not a number, or a metric
    /// or label name is not valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`; `[a-zA-Z_][a-zA-Z0-9_]*`, not
    /// starting with `__`);
    /// [`CatalogError::NoTable`] without the table's header.
    pub fn from_markdown(text: &str) -> Result<Self, CatalogError> {
        let mut lines = text.lines().enumerate();
        lines
            .by_ref()
            .find(|(_, l)| cells(l).is_some_and(|c| c == cells(HEADER).unwrap_or_default()))
            .ok_or(CatalogError::NoTable)?;
        let mut metrics = Vec::new();
        for (i, line) in lines {
            let line_no = i + 1;
            let error = |reason: String| CatalogError::Markdown {
                line: line_no,
                reason,
            };
            let Some(cells) = cells(line) else { break };
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue;
            }
            let [name, kind, unit, labels, series, help] = <[String; 6]>::try_from(cells)
                .map_err(|c| error(format!("{} cells, the table has 6", c.len())))?;
            let metric_type = MetricType::parse(&kind).ok_or_else(|| {
                error(format!("type {kind:?} is not counter, gauge or histogram"))
            })?;
            let series = series
                .parse()
                .map_err(|_| error(format!("series {series:?} is not a number")))?;
            let metric = MetricInfo {
                name: unescape(unquote(&name)),
                metric_type,
                unit: (!unit.is_empty()).then(|| unescape(&unit)),
                help: (!help.is_empty()).then(|| unescape(&help)),
                labels: split_unescaped(&labels, ',')
                    .into_iter()
                    .map(|l| unescape(unquote(l.trim())))
                    .filter(|l| !l.is_empty())
                    .collect(),
                series,
            };
            check_names(&metric).map_err(error)?;
            metrics.push(metric);
        }
        Ok(Catalog::new(metrics))
    }

    /// The catalog as pretty-printed JSON: `{"metrics": [{"name", "type", "unit", "help",
    /// "labels", "series"}, ...]}`.
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> String {
        // A catalog is strings and numbers: it always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a catalog from the JSON [`to_json`](Self::to_json) writes.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Json`] when the text is not such JSON; [`CatalogError::InvalidName`]
    /// when a metric or label name is not valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`;
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`).
    #[cfg(feature = "serde")]
    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = serde_json::from_str(text)?;
        catalog.check_names()?;
        Ok(Catalog::new(catalog.metrics))
    }

    /// Every metric and label name valid, or [`CatalogError::InvalidName`] for the first that
    /// is not.
    #[cfg(feature = "serde")]
    pub(crate) fn check_names(&self) -> Result<(), CatalogError> {
        self.metrics
            .iter()
            .try_for_each(check_names)
            .map_err(CatalogError::InvalidName)
    }

    /// What differs between this catalog (the running program's) and `checked_in`: metrics
    /// added (here, not there), removed (there, not here), and changed (type, unit, help or
    /// label names; the series count is not compared). Empty when they agree.
    pub fn diff(&self, checked_in: &Catalog) -> CatalogDiff {
        let mut diff = CatalogDiff::default();
        for m in &self.metrics {
            match checked_in.get(&m.name) {
                None => diff.added.push(m.clone()),
                Some(old) => {
                    let same = old.metric_type == m.metric_type
                        && old.unit == m.unit
                        && old.help == m.help
                        && old.labels == m.labels;
                    if !same {
                        diff.changed.push(MetricChange {
                            before: old.clone(),
                            after: m.clone(),
                        });
                    }
                }
            }
        }
        diff.removed = checked_in
            .metrics
            .iter()
            .filter(|m| self.get(&m.name).is_none())
            .cloned()
            .collect();
        diff
    }
}

/// A metric's name and label names checked against the names the exporter sends: why not,
/// naming the name.
fn check_names(m: &MetricInfo) -> Result<(), String> {
    if !is_metric_name(&m.name) {
        return Err(format!(
            "the metric name {:?} is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)",
            m.name
        ));
    }
    match m.labels.iter().find(|l| !is_sent_label_name(l)) {
        Some(label) => Err(format!(
            "metric {:?}: the label name {label:?} is not valid ([a-zA-Z_][a-zA-Z0-9_]*, not \
             starting with __)",
            m.name
        )),
        None => Ok(()),
    }
}

/// Whether `name` is a label name a series can be sent with: valid, and not one of the names
/// starting with `__` that Prometheus reserves (the snapshot refuses those).
fn is_sent_label_name(name: &str) -> bool {
    is_label_name(name) && !name.starts_with("__")
}

/// How a running catalog differs from a checked-in one: [`Catalog::diff`]. Its `Display` is a
/// readable list, one line per metric.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CatalogDiff {
    /// Metrics of the running program that the checked-in catalog does not list.
    pub added: Vec<MetricInfo>,
    /// Metrics the checked-in catalog lists that the running program no longer has.
    pub removed: Vec<MetricInfo>,
    /// Metrics whose type, unit, help or label names changed.
    pub changed: Vec<MetricChange>,
}

/// One metric whose type, unit, help or label names differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MetricChange {
    /// As checked in.
    pub before: MetricInfo,
    /// As the running program has it.
    pub after: MetricInfo,
}

impl CatalogDiff {
    /// Whether the two catalogs agree.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "none".into(),
    }
}

fn label_list(labels: &[String]) -> String {
    format!("[{}]", labels.join(", "))
}

impl fmt::Display for CatalogDiff {
    /// ```text
    /// the metric catalog differs from the checked-in one (1 added, 1 removed, 1 changed):
    ///   added   ingester_retries_total (counter, labels [format])
    ///   removed ingester_input_files (gauge, labels [])
    ///   changed ingester_bytes_total: unit none -> "bytes"; labels [] -> [format]
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("the metric catalog matches the checked-in one");
        }
        write!(
            f,
            "the metric catalog differs from the checked-in one ({} added, {} removed, {} \
             changed):",
            self.added.len(),
            self.removed.len(),
            self.changed.len()
        )?;
        for (what, list) in [("added  ", &self.added), ("removed", &self.removed)] {
            for m in list {
                write!(
                    f,
                    "\n  {what} {} ({}, labels {})",
                    m.name,
                    m.metric_type,
                    label_list(&m.labels)
                )?;
            }
        }
        for c in &self.changed {
            let (a, b) = (&c.before, &c.after);
            let mut parts = Vec::new();
            if a.metric_type != b.metric_type {
                parts.push(format!("type {} -> {}", a.metric_type, b.metric_type));
            }
            if a.unit != b.unit {
                parts.push(format!("unit {} -> {}", shown(&a.unit), shown(&b.unit)));
            }
            if a.help != b.help {
                parts.push(format!("help {} -> {}", shown(&a.help), shown(&b.help)));
            }
            if a.labels != b.labels {
                parts.push(format!(
                    "labels {} -> {}",
                    label_list(&a.labels),
                    label_list(&b.labels)
                ));
            }
            write!(f, "\n  changed {}: {}", b.name, parts.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::{Installed, Registry};

    fn catalog_of(record: impl FnOnce()) -> Catalog {
        let registry = Arc::new(Registry::new(
            &[1.0],
            &[],
            &[("service".to_owned(), "api".to_owned())],
        ));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), record);
        Catalog::build(
            &registry
                .snapshot(&[], &crate::snapshot::View::default())
                .finish(),
            registry.described(),
        )
    }

    fn sample() -> Catalog {
        catalog_of(|| {
            metrics::describe_counter!(
                "rows_total",
                metrics::Unit::Count,
                "Rows read | written,\nby table."
            );
            metrics::counter!("rows_total", "table" => "a").increment(1);
            metrics::counter!("rows_total", "table" => "b", "op" => "w").increment(1);
            metrics::describe_histogram!("fetch.seconds", metrics::Unit::Seconds, "Fetch time.");
            metrics::histogram!("fetch.seconds").record(0.5);
            metrics::describe_gauge!("pending", "Described, not recorded yet.");
            metrics::gauge!("workers").set(3.0);
        })
    }

    #[test]
    fn described_and_recorded_metrics_with_labels_and_series() {
        let catalog = sample();
        let names: Vec<&str> = catalog.metrics().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["fetch_seconds", "pending", "rows_total", "workers"]);
        let rows = catalog.get("rows_total").unwrap();
        assert_eq!(rows.metric_type, MetricType::Counter);
        assert_eq!(rows.unit.as_deref(), Some("count"));
        assert_eq!(rows.labels, ["op", "service", "table"]);
        assert_eq!(rows.series, 2);
        let fetch = catalog.get("fetch_seconds").unwrap();
        assert_eq!(
            (
                fetch.metric_type,
                fetch.unit.as_deref(),
                fetch.help.as_deref()
            ),
            (MetricType::Histogram, Some("seconds"), Some("Fetch time."))
        );
        assert_eq!(fetch.labels, ["service"]);
        let pending = catalog.get("pending").unwrap();
        assert_eq!(
            (pending.metric_type, pending.series),
            (MetricType::Gauge, 0)
        );
        assert!(pending.labels.is_empty());
        let workers = catalog.get("workers").unwrap();
        assert_eq!((workers.unit.as_ref(), workers.help.as_ref()), (None, None));
    }

    #[test]
    fn markdown_round_trips_and_reads_as_a_table() {
        let catalog = sample();
        let md = catalog.to_markdown();
        assert!(
            md.contains(
                "| `rows_total` | counter | count | `op`, `service`, `table` | 2 | Rows read \\| \
                 written,\\nby table. |\n"
            ),
            "{md}"
        );
        assert!(md.contains("| `pending` | gauge |  |  | 0 | Described, not recorded yet. |\n"));
        assert_eq!(Catalog::from_markdown(&md).unwrap(), catalog);
        assert!(catalog
            .diff(&Catalog::from_markdown(&md).unwrap())
            .is_empty());
    }

    #[test]
    fn bad_markdown_names_the_line() {
        assert!(matches!(
            Catalog::from_markdown("# Metrics\n"),
            Err(CatalogError::NoTable)
        ));
        let md = format!("{HEADER}\n|---|---|---|---|---|---|\n| `a` | summary |  |  | 1 |  |\n");
        let e = Catalog::from_markdown(&md).unwrap_err().to_string();
        assert_eq!(
            e,
            "line 3 of the metric catalog: type \"summary\" is not counter, gauge or histogram"
        );
        let md = format!("{HEADER}\n| `a` | gauge | 1 |\n");
        let e = Catalog::from_markdown(&md).unwrap_err().to_string();
        assert_eq!(e, "line 2 of the metric catalog: 3 cells, the table has 6");
    }

    #[test]
    fn the_diff_says_what_was_added_removed_and_changed() {
        let checked_in = sample();
        let running = catalog_of(|| {
            metrics::describe_counter!("rows_total", metrics::Unit::Bytes, "Rows read.");
            metrics::counter!("rows_total", "table" => "a").increment(1);
            metrics::histogram!("fetch.seconds").record(0.5);
            metrics::describe_histogram!("fetch.seconds", metrics::Unit::Seconds, "Fetch time.");
            metrics::counter!("pending").increment(1);
            metrics::counter!("retries_total", "op" => "r").increment(1);
        });
        let diff = running.diff(&checked_in);
        assert_eq!(
            diff.to_string(),
            "the metric catalog differs from the checked-in one (1 added, 1 removed, 2 \
             changed):\n  \
             added   retries_total (counter, labels [op, service])\n  \
             removed workers (gauge, labels [service])\n  \
             changed pending: type gauge -> counter; help \"Described, not recorded yet.\" -> \
             none; labels [] -> [service]\n  \
             changed rows_total: unit \"count\" -> \"bytes\"; help \"Rows read | written,\\nby \
             table.\" -> \"Rows read.\"; labels [op, service, table] -> [service, table]"
        );
        assert!(!diff.is_empty());
        // The series count follows the data and is not drift.
        let more = catalog_of(|| {
            metrics::describe_counter!(
                "rows_total",
                metrics::Unit::Count,
                "Rows read | written,\nby table."
            );
            for t in ["a", "b", "c"] {
                metrics::counter!("rows_total", "table" => t, "op" => "w").increment(1);
            }
            metrics::describe_histogram!("fetch.seconds", metrics::Unit::Seconds, "Fetch time.");
            metrics::histogram!("fetch.seconds").record(0.5);
            metrics::describe_gauge!("pending", "Described, not recorded yet.");
            metrics::gauge!("workers").set(3.0);
        });
        let diff = more.diff(&checked_in);
        assert!(diff.is_empty(), "{diff}");
        assert_eq!(
            diff.to_string(),
            "the metric catalog matches the checked-in one"
        );
    }

    fn one(name: &str, help: Option<&str>, labels: &[&str]) -> Catalog {
        Catalog::new([MetricInfo {
            name: name.into(),
            metric_type: MetricType::Gauge,
            unit: Some("bytes".into()),
            help: help.map(str::to_owned),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            series: 1,
        }])
    }

    #[test]
    fn a_help_text_with_carriage_returns_round_trips_through_markdown() {
        for help in [
            "Line one.\r\nLine two.",
            "a\rb",
            "\r",
            " padded\t",
            "back\\slash\\",
        ] {
            let catalog = one("m", Some(help), &[]);
            let read = Catalog::from_markdown(&catalog.to_markdown()).unwrap();
            assert_eq!(read, catalog, "{help:?}");
            assert!(catalog.diff(&read).is_empty(), "{}", catalog.diff(&read));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_help_text_and_unit_round_trip_through_markdown(
            help in proptest::prelude::any::<String>(),
            unit in proptest::prelude::any::<String>(),
        ) {
            let mut catalog = one("m", Some(&help), &["a"]);
            catalog.metrics[0].unit = Some(unit);
            let catalog = Catalog::new(catalog.metrics);
            let md = catalog.to_markdown();
            proptest::prop_assert_eq!(Catalog::from_markdown(&md).unwrap(), catalog, "{}", md);
        }
    }

    #[test]
    fn an_empty_help_or_unit_is_none() {
        let mut catalog = one("m", Some(""), &[]);
        catalog.metrics[0].unit = Some(String::new());
        let catalog = Catalog::new(catalog.metrics);
        assert_eq!(
            (
                catalog.metrics[0].unit.as_ref(),
                catalog.metrics[0].help.as_ref()
            ),
            (None, None)
        );
        assert_eq!(
            Catalog::from_markdown(&catalog.to_markdown()).unwrap(),
            catalog
        );
    }

    #[test]
    fn names_that_are_not_valid_are_escaped_in_markdown_and_refused_when_read() {
        // The table still reads back (six cells): the name itself is refused, by line.
        let md = one("x|y", None, &["a"]).to_markdown();
        assert_eq!(
            Catalog::from_markdown(&md).unwrap_err().to_string(),
            "line 7 of the metric catalog: the metric name \"x|y\" is not valid \
             ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        );
        let md = one("m", None, &["a`, `b|c", "ok"]).to_markdown();
        assert_eq!(
            Catalog::from_markdown(&md).unwrap_err().to_string(),
            "line 7 of the metric catalog: metric \"m\": the label name \"a`, `b|c\" is not \
             valid ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        );
        let md = one("m", None, &["__name__"]).to_markdown();
        assert!(Catalog::from_markdown(&md).is_err());
        // Valid names read back as they were.
        let catalog = one("ns:m_total", Some("h"), &["_a", "b2"]);
        assert_eq!(
            Catalog::from_markdown(&catalog.to_markdown()).unwrap(),
            catalog
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_with_names_that_are_not_valid_is_refused() {
        let json = |name: &str, label: &str| {
            serde_json::json!({"metrics": [{"name": name, "type": "gauge", "labels": [label]}]})
                .to_string()
        };
        let e = Catalog::from_json(&json("up{job=\"x\"} or vector(1) #", "a"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the metric name \"up{job=\\\"x\\\"} or vector(1) #\" is not valid \
             ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        );
        let e = Catalog::from_json(&json("m", "a\"}"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "metric \"m\": the label name \"a\\\"}\" is not valid ([a-zA-Z_][a-zA-Z0-9_]*, \
             not starting with __)"
        );
        assert!(Catalog::from_json(&json("", "a")).is_err());
        assert!(Catalog::from_json(&json("m", "")).is_err());
        assert!(Catalog::from_json(&json("m_total", "a")).is_ok());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_round_trips() {
        let catalog = sample();
        let json = catalog.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["metrics"][2]["name"], "rows_total");
        assert_eq!(value["metrics"][2]["type"], "counter");
        assert_eq!(value["metrics"][2]["series"], 2);
        assert_eq!(Catalog::from_json(&json).unwrap(), catalog);
        assert!(Catalog::from_json("{").is_err());
    }
}
