//! The metric and label name rules of the Prometheus data model
//! (<https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels>): checking a
//! name, and making one valid as `metrics-exporter-prometheus` does.

use std::borrow::Cow;

/// `name` as a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters replaced by
/// `_` (what `metrics-exporter-prometheus` sends for the same name). Borrowed when valid.
pub(crate) fn metric_name(name: &str) -> Cow<'_, str> {
    if is_metric_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(metrics_exporter_prometheus::formatting::sanitize_metric_name(name))
    }
}

/// Whether `name` is a valid metric name as it is: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        })
}

/// Whether `name` is a valid label name as it is: `[a-zA-Z_][a-zA-Z0-9_]*`. (Names starting
/// with `__` are valid, and reserved for Prometheus: a series with one is refused.)
pub(crate) fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()))
}

/// Checks a configured label name (a grouping or global label): valid as
/// [`is_label_name`] says, and not starting with `__` (reserved for Prometheus). The error
/// says which rule it breaks.
pub(crate) fn check_label_name(name: &str) -> Result<(), &'static str> {
    if !is_label_name(name) {
        let first = name.chars().next();
        return Err(match first {
            None => "a label name must not be empty",
            Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                "a label name must start with a letter or an underscore"
            }
            Some(_) => "a label name may hold only ASCII letters, digits and underscores",
        });
    }
    if name.starts_with("__") {
        return Err("label names starting with __ are reserved for Prometheus");
    }
    Ok(())
}

/// `name` as a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters replaced by `_`.
pub(crate) fn label_name(name: &str) -> Cow<'_, str> {
    if is_label_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(metrics_exporter_prometheus::formatting::sanitize_label_key(
            name,
        ))
    }
}
