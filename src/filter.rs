//! Which metrics a target takes: allow and deny lists of metric-name patterns, `*` matching
//! any run of characters (through `wildmatch`), checked against the name as sent.

use wildmatch::WildMatch;

/// Allow and deny lists, checked: a name is taken when the allow list is absent or one of its
/// patterns matches, and none of the deny patterns does (deny wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    allow: Option<Vec<WildMatch>>,
    deny: Vec<WildMatch>,
}

impl Filter {
    /// The filter of these patterns (already checked with [`check_patterns`]).
    pub(crate) fn new(allow: Option<&[String]>, deny: &[String]) -> Self {
        Filter {
            allow: allow.map(|a| a.iter().map(|p| WildMatch::new(p)).collect()),
            deny: deny.iter().map(|p| WildMatch::new(p)).collect(),
        }
    }

    /// Whether every name is taken.
    pub(crate) fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// Whether the metric named `name` (as sent) is taken.
    pub(crate) fn allows(&self, name: &str) -> bool {
        let allowed = match &self.allow {
            None => true,
            Some(allow) => allow.iter().any(|p| p.matches(name)),
        };
        allowed && !self.deny.iter().any(|p| p.matches(name))
    }
}

/// Checks metric-name patterns: each non-empty, of the characters of a metric name
/// (`[a-zA-Z0-9_:]`) and `*`.
pub(crate) fn check_patterns<'a>(
    patterns: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    for pattern in patterns {
        if pattern.is_empty() {
            return Err(
                "an empty pattern (a pattern is a metric name with `*` for any run of \
                        characters)"
                    .into(),
            );
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '*')))
        {
            return Err(format!(
                "the pattern {pattern:?} holds {c:?}: patterns match metric names as sent \
                 (`[a-zA-Z0-9_:]`, `*` for any run of characters)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: Option<&[&str]>, deny: &[&str]) -> Filter {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filter::new(allow.map(own).as_deref(), &own(deny))
    }

    #[test]
    fn deny_wins_and_an_absent_allow_list_takes_everything() {
        let f = filter(Some(&["ingester_*", "batch_job_*"]), &["*_debug_*"]);
        assert!(f.allows("ingester_rows_total"));
        assert!(f.allows("batch_job_outcome"));
        assert!(!f.allows("ingester_debug_bytes"));
        assert!(!f.allows("parser_rows_total"));
        let f = filter(None, &["pushgateway_exporter_*"]);
        assert!(f.allows("anything"));
        assert!(!f.allows("pushgateway_exporter_pushes_total"));
        assert!(filter(None, &[]).is_open());
        // An empty allow list takes nothing.
        assert!(!filter(Some(&[]), &[]).allows("x"));
    }

    #[test]
    fn patterns_are_metric_names_with_stars() {
        let check = |p: &str| check_patterns([&p.to_string()]);
        assert_eq!(check("ingester_*"), Ok(()));
        assert_eq!(check("*:rate5m"), Ok(()));
        assert!(check("").unwrap_err().contains("empty pattern"));
        assert!(check("a.b").unwrap_err().contains("holds '.'"));
        assert!(check("a?").unwrap_err().contains("holds '?'"));
    }
}
