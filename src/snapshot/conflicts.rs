//! What the gateway would refuse a whole body for: families whose names clash, and how a
//! series left out is shown.

use std::collections::HashMap;

use super::{Family, Kind};

/// At most this many characters of a label value, and of a whole series, in a
/// [`Dropped`](super::Dropped).
const SHOWN_VALUE: usize = 64;
const SHOWN_SERIES: usize = 300;

/// `name{label="value",...}` for a message: values shortened, the whole bounded.
pub(super) fn describe_series<'k>(
    name: &str,
    labels: impl Iterator<Item = (&'k str, &'k str)>,
) -> String {
    let mut out = String::new();
    let shorten = |s: &str, max: usize| -> String {
        match s.char_indices().nth(max) {
            Some((at, _)) => format!("{}...", &s[..at]),
            None => s.to_owned(),
        }
    };
    match name {
        "" => out.push_str("\"\""),
        name => out.push_str(&shorten(name, SHOWN_VALUE)),
    }
    let labels: Vec<String> = labels
        .map(|(k, v)| format!("{}={:?}", shorten(k, SHOWN_VALUE), shorten(v, SHOWN_VALUE)))
        .collect();
    if !labels.is_empty() {
        out.push('{');
        out.push_str(&labels.join(","));
        out.push('}');
    }
    shorten(&out, SHOWN_SERIES)
}

/// The families (by index) whose names clash with another family's, with why; `order` sorts
/// them by name and type. Families without series are not sent at all and clash with nothing.
pub(super) fn refused_families(
    families: &[Family],
    order: &[u32],
    has_series: &[bool],
) -> HashMap<u32, String> {
    let mut refused = HashMap::new();
    // Sorted by name and type: the first family of each name is kept.
    let mut kept: Option<&Family> = None;
    for &index in order.iter().filter(|&&i| has_series[i as usize]) {
        let family = &families[index as usize];
        match kept {
            Some(first) if first.name == family.name => {
                refused.insert(
                    index,
                    format!(
                        "`{}` is recorded as a {} and as a {}; the {} is sent",
                        family.name,
                        family.kind.as_str(),
                        first.kind.as_str(),
                        first.kind.as_str(),
                    ),
                );
            }
            _ => kept = Some(family),
        }
    }
    // Histograms that are sent.
    let histograms: std::collections::HashSet<&str> = families
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            f.kind == Kind::Histogram && has_series[*i] && !refused.contains_key(&(*i as u32))
        })
        .map(|(_, f)| f.name.as_str())
        .collect();
    if histograms.is_empty() {
        return refused;
    }
    for (index, family) in families.iter().enumerate() {
        if !has_series[index] {
            continue;
        }
        let clash = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            family
                .name
                .strip_suffix(suffix)
                .filter(|base| histograms.contains(base))
        });
        if let Some(base) = clash {
            refused.entry(index as u32).or_insert_with(|| {
                format!(
                    "`{}` is also a series name of the histogram `{base}`; the histogram is \
                     sent",
                    family.name
                )
            });
        }
    }
    refused
}
