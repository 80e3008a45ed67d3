//! A native histogram's buckets as the wire formats carry them: spans of consecutive indices
//! and the count of each bucket as a delta to the previous one (the specification's
//! "Buckets"); and, for bodies that have no native histograms (the text format), the classic
//! histogram the buckets make: a cumulative count at each bucket's upper bound.

use super::index::upper_bound;
use super::NativeValue;

/// A run of consecutive buckets: `offset` is the first index for the first span, the gap to
/// the previous span for the others; `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) offset: i32,
    pub(crate) length: u32,
}

/// The spans and deltas of `buckets` (sorted by index, each count above zero), appended to
/// `spans` and `deltas`. As client_golang's `makeBuckets`: a gap of one or two buckets is
/// cheaper as explicit empty buckets than as a new span, so it is filled with zeros.
pub(crate) fn spans_and_deltas(
    buckets: &[(i32, u64)],
    spans: &mut Vec<Span>,
    deltas: &mut Vec<i64>,
) {
    let mut previous = 0i64;
    let mut next = 0i32;
    let mut open = false;
    for &(index, count) in buckets {
        let gap = index - next;
        if !open || gap > 2 {
            spans.push(Span {
                offset: gap,
                length: 0,
            });
            open = true;
        } else {
            for _ in 0..gap {
                deltas.push(-previous);
                previous = 0;
            }
            if let Some(span) = spans.last_mut() {
                span.length += gap as u32;
            }
        }
        let count = count as i64;
        deltas.push(count - previous);
        previous = count;
        if let Some(span) = spans.last_mut() {
            span.length += 1;
        }
        next = index + 1;
    }
}

/// The classic histogram of a native one: `(upper bound, cumulative count)` in increasing order
/// of the bound, from the most negative bucket through the zero bucket (bound: the zero
/// threshold) to the positive ones, and last `+Inf` with the count of every observation (NaN
/// ones included, as a classic histogram counts them). A negative bucket `[-b^i, -b^(i-1))`
/// has the bound `-b^(i-1)`, so a value exactly at that bound is counted one bucket late.
pub(crate) fn classic_equivalent<'a>(
    value: &NativeValue,
    buckets: &'a [(i32, u64)],
) -> impl Iterator<Item = (f64, u64)> + 'a {
    let schema = value.schema;
    let negative = value
        .negative(buckets)
        .iter()
        .rev()
        .map(move |&(i, count)| (-upper_bound(i - 1, schema), count));
    let zero = (value.zero_count > 0).then_some((value.zero_threshold, value.zero_count));
    let positive = value
        .positive(buckets)
        .iter()
        .map(move |&(i, count)| (upper_bound(i, schema), count))
        .filter(|&(bound, _)| bound != f64::INFINITY);
    let total = value.count;
    negative
        .chain(zero)
        .chain(positive)
        .scan(0u64, |cumulative, (bound, count)| {
            *cumulative += count;
            Some((bound, *cumulative))
        })
        .chain(std::iter::once((f64::INFINITY, total)))
}
