//! Native histograms: Prometheus' exponential, sparse buckets at a resolution (schema) chosen
//! from a bucket factor, a zero bucket, and a bound on the number of buckets above which the
//! resolution is halved — as the Prometheus native histogram specification describes them
//! (<https://prometheus.io/docs/specs/native_histograms/>, "Data model", "Special cases of
//! observed values", "Limiting the bucket count") and as client_golang implements them
//! (`prometheus/histogram.go`: `NativeHistogramBucketFactor`,
//! `NativeHistogramZeroThreshold`, `NativeHistogramMaxBucketNumber`).
//!
//! Recording takes no lock: it reads the current table (an atomic load), finds the bucket's
//! slot by open addressing and adds to it (one atomic add), or claims an empty slot with a
//! compare-and-swap the first time a bucket is hit. Nothing is allocated once a bucket exists.
//!
//! When a table fills, or holds more buckets than allowed, a new table takes over (under a
//! mutex, which only those rare changes take): twice as large, or at half the resolution with
//! the buckets that merge into each other as one. The keys of the old table are claimed in the
//! new one, but the counts stay where they were counted: a recording that read the old table
//! just before the change still lands there, and a snapshot adds up every table, each bucket
//! brought down to the current resolution. Nothing is moved, so nothing can be lost between
//! a change and a recording; the old tables are kept as long as the histogram. Their number is
//! bounded (a table doubles at most until it can hold every bucket allowed, and the schema goes
//! down at most to -4), so memory is bounded by the maximum bucket count.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

mod index;
mod spans;

#[cfg(test)]
pub(crate) use index::upper_bound;
pub(crate) use spans::{classic_equivalent, spans_and_deltas, Span};

/// Which form a histogram takes: Prometheus' classic histogram (a series per bucket bound,
/// `_sum`, `_count`), a native histogram (one series of exponential buckets, no bounds to
/// choose), or both in one family.
///
/// Set for every histogram with
/// [`PushgatewayBuilder::histograms`](crate::PushgatewayBuilder::histograms) (or
/// `PUSHGATEWAY_HISTOGRAMS=classic|native|both`), per metric with
/// [`histograms_for_metric`](crate::PushgatewayBuilder::histograms_for_metric), and per
/// target with [`Target::histograms`](crate::Target::histograms) (a target set to `Classic`
/// gets every native histogram as its classic equivalent). Where the body is text (a
/// Pushgateway with the text format, a textfile, a text scrape), a native histogram goes as
/// its classic equivalent: a cumulative count at each native bucket's upper bound, `+Inf`,
/// `_sum` and `_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HistogramForm {
    /// Buckets at fixed bounds ([`buckets`](crate::PushgatewayBuilder::buckets)): the
    /// default.
    #[default]
    Classic,
    /// A native histogram: Prometheus 2.40 and later with `--enable-feature=native-histograms`
    /// (scraping the Pushgateway or the listener in protobuf, or as a remote-write receiver).
    Native,
    /// Both in one family: classic buckets and native ones, for moving dashboards over.
    /// Remote write delivers both; a Prometheus scraping the gateway or the listener keeps
    /// only the native part before 2.45, both from 2.45 with `scrape_classic_histograms`.
    Both,
}

impl HistogramForm {
    /// Whether classic buckets are kept.
    pub(crate) fn classic(self) -> bool {
        matches!(self, HistogramForm::Classic | HistogramForm::Both)
    }

    /// Whether native buckets are kept.
    pub(crate) fn native(self) -> bool {
        matches!(self, HistogramForm::Native | HistogramForm::Both)
    }
}

impl std::str::FromStr for HistogramForm {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(HistogramForm::Classic),
            "native" => Ok(HistogramForm::Native),
            "both" => Ok(HistogramForm::Both),
            _ => Err("expected classic, native or both".into()),
        }
    }
}

/// client_golang's `DefNativeHistogramZeroThreshold`: 2^-128.
pub(crate) const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// client_golang's default bucket factor: schema 3, 8 buckets per power of two.
pub(crate) const DEFAULT_BUCKET_FACTOR: f64 = 1.1;

/// The default maximum number of buckets (positive and negative) of one native histogram, the
/// value the specification calls typical (OpenTelemetry's default too).
pub(crate) const DEFAULT_MAX_BUCKETS: u32 = 160;

/// The settings of the native histograms of one registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NativeConfig {
    /// The initial schema, from the bucket factor.
    pub(crate) schema: i32,
    /// Observations whose absolute value is at or below this go to the zero bucket.
    pub(crate) zero_threshold: f64,
    /// More populated buckets than this halve the resolution (down to schema -4).
    pub(crate) max_buckets: u32,
}

impl NativeConfig {
    /// From client_golang's three settings. A factor at or below 1 is the highest resolution; a
    /// negative (or NaN) zero threshold is 0; a maximum below 1 is 1.
    pub(crate) fn new(bucket_factor: f64, zero_threshold: f64, max_buckets: u32) -> Self {
        NativeConfig {
            schema: index::schema_for_factor(bucket_factor),
            zero_threshold: if zero_threshold > 0.0 {
                zero_threshold
            } else {
                0.0
            },
            // At most 2^21: more than every bucket of schema 8 holds.
            max_buckets: max_buckets.clamp(1, 1 << 21),
        }
    }
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig::new(
            DEFAULT_BUCKET_FACTOR,
            DEFAULT_ZERO_THRESHOLD,
            DEFAULT_MAX_BUCKETS,
        )
    }
}

/// A native histogram as read at one moment; its buckets are `(index, count)` pairs kept by
/// the reader, sorted by index, without empty ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NativeValue {
    pub(crate) schema: i32,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: u64,
    /// Every observation: the buckets', the zero bucket's and the NaNs (which are in none).
    pub(crate) count: u64,
    /// The range of the positive buckets in the reader's bucket vector.
    pub(crate) positive: (u32, u32),
    /// The range of the negative buckets (bucket `i` holds `[-base^i, -base^(i-1))`).
    pub(crate) negative: (u32, u32),
}

impl NativeValue {
    /// The positive buckets, from the vector `read_into` appended to.
    pub(crate) fn positive<'a>(&self, buckets: &'a [(i32, u64)]) -> &'a [(i32, u64)] {
        &buckets[self.positive.0 as usize..self.positive.1 as usize]
    }

    /// The negative buckets, from the vector `read_into` appended to.
    pub(crate) fn negative<'a>(&self, buckets: &'a [(i32, u64)]) -> &'a [(i32, u64)] {
        &buckets[self.negative.0 as usize..self.negative.1 as usize]
    }
}

/// No key: a slot not claimed yet.
const EMPTY: i32 = i32::MIN;

/// The smallest table.
const MIN_CAPACITY: usize = 8;

/// The most buckets there can be at the lowest schema, positive and negative (from the
/// bucket of the smallest subnormal, -67, to `±Inf`'s, 65): the largest table can hold them
/// all, so that a table is never full with nowhere to go.
const MAX_BUCKETS_AT_MIN_SCHEMA: usize = 2 * 133;

#[derive(Debug)]
struct Slot {
    /// `index * 2`, plus 1 for a negative bucket; [`EMPTY`] until claimed.
    key: AtomicI32,
    count: AtomicU64,
}

fn key(index: i32, negative: bool) -> i32 {
    index * 2 + i32::from(negative)
}

fn unkey(key: i32) -> (i32, bool) {
    (key >> 1, key & 1 == 1)
}

/// Where a key's probe starts (Fibonacci hashing).
fn start(key: i32, mask: usize) -> usize {
    ((u64::from(key as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 40) as usize & mask
}

/// One table of bucket counters at one schema.
#[derive(Debug)]
struct Table {
    schema: i32,
    slots: Box<[Slot]>,
    /// Claimed slots (reserved before they are claimed, so it may run ahead for a moment).
    len: AtomicU32,
}

enum Added {
    /// To a bucket that had a slot already.
    Existing,
    /// To a new bucket; the table's number of buckets with it.
    New(u32),
    /// The table has no room for a new bucket.
    Full,
}

impl Table {
    fn new(schema: i32, capacity: usize) -> Self {
        Table {
            schema,
            slots: (0..capacity)
                .map(|_| Slot {
                    key: AtomicI32::new(EMPTY),
                    count: AtomicU64::new(0),
                })
                .collect(),
            len: AtomicU32::new(0),
        }
    }

    /// New buckets are taken while the table is at most three quarters full.
    fn limit(&self) -> u32 {
        (self.slots.len() * 3 / 4) as u32
    }

    fn add(&self, key: i32, n: u64) -> Added {
        let mask = self.slots.len() - 1;
        let mut at = start(key, mask);
        loop {
            let slot = &self.slots[at];
            let found = slot.key.load(Ordering::Acquire);
            if found == key {
                slot.count.fetch_add(n, Ordering::Relaxed);
                return Added::Existing;
            }
            if found == EMPTY {
                let len = self.len.fetch_add(1, Ordering::Relaxed) + 1;
                if len > self.limit() {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    return Added::Full;
                }
                match slot
                    .key
                    .compare_exchange(EMPTY, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        slot.count.fetch_add(n, Ordering::Relaxed);
                        return Added::New(len);
                    }
                    Err(other) => {
                        self.len.fetch_sub(1, Ordering::Relaxed);
                        if other == key {
                            slot.count.fetch_add(n, Ordering::Relaxed);
                            return Added::Existing;
                        }
                    }
                }
            }
            // Below the limit there is always an empty slot further on.
            at = (at + 1) & mask;
        }
    }

    /// The claimed keys, in no order.
    fn keys(&self) -> impl Iterator<Item = i32> + '_ {
        self.slots
            .iter()
            .map(|slot| slot.key.load(Ordering::Acquire))
            .filter(|&key| key != EMPTY)
    }
}

/// The buckets of one native histogram series (the sum is kept beside it, shared with the
/// classic buckets of a histogram that has both).
#[derive(Debug)]
pub(crate) struct NativeBuckets {
    config: NativeConfig,
    zero: AtomicU64,
    nan: AtomicU64,
    /// The index of the table in use in `tables`.
    current: AtomicUsize,
    /// Every table there was, the current one last; set once each, in order.
    tables: Box<[OnceLock<Table>]>,
    /// Held while a new table is made.
    change: Mutex<()>,
}

impl NativeBuckets {
    pub(crate) fn new(config: NativeConfig) -> Self {
        let largest = largest_capacity(config.max_buckets);
        // Each change either doubles the table or lowers the schema by one (or both).
        let doublings = (largest / MIN_CAPACITY).trailing_zeros() as usize;
        let reductions = (config.schema - index::MIN_SCHEMA) as usize;
        let tables: Box<[OnceLock<Table>]> = (0..1 + doublings + reductions)
            .map(|_| OnceLock::new())
            .collect();
        let _ = tables[0].set(Table::new(config.schema, MIN_CAPACITY));
        NativeBuckets {
            config,
            zero: AtomicU64::new(0),
            nan: AtomicU64::new(0),
            current: AtomicUsize::new(0),
            tables,
            change: Mutex::new(()),
        }
    }

    fn table(&self, at: usize) -> &Table {
        self.tables[at]
            .get()
            .expect("a table up to the current one is set")
    }

    /// Counts `value` (the sum is the caller's): NaN in no bucket, a value within the zero
    /// threshold in the zero bucket, `±Inf` in the overflow buckets.
    pub(crate) fn record(&self, value: f64) {
        if value.is_nan() {
            // Released after the caller's sum: a reader that sees this count sees the NaN sum.
            self.nan.fetch_add(1, Ordering::Release);
            return;
        }
        if value.abs() <= self.config.zero_threshold {
            self.zero.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let negative = value < 0.0;
        loop {
            let at = self.current.load(Ordering::Acquire);
            let table = self.table(at);
            match table.add(key(index::index(value, table.schema), negative), 1) {
                Added::Existing => return,
                Added::New(len) => {
                    if len > self.config.max_buckets {
                        self.change(at);
                    }
                    return;
                }
                Added::Full => {
                    if !self.change(at) {
                        // Cannot happen (the largest table holds every bucket of the lowest
                        // schema); counted rather than lost.
                        debug_assert!(false, "no native bucket table left for index {at}");
                        self.zero.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
    }

    /// Makes a new table if table `seen` is still the current one: at a lower schema while
    /// there are more buckets than allowed, larger if it is full. Returns whether adding to the
    /// current table may be tried again.
    fn change(&self, seen: usize) -> bool {
        let _held = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        if self.current.load(Ordering::Acquire) != seen {
            return true;
        }
        let table = self.table(seen);
        let mut keys: Vec<i32> = table.keys().collect();
        let mut schema = table.schema;
        let mut capacity = table.slots.len();
        let full = table.len.load(Ordering::Relaxed) + 1 > table.limit();
        while keys.len() > self.config.max_buckets as usize && schema > index::MIN_SCHEMA {
            schema -= 1;
            for key in &mut keys {
                let (i, negative) = unkey(*key);
                *key = self::key(index::reduce(i, 1), negative);
            }
            keys.sort_unstable();
            keys.dedup();
        }
        if full && schema == table.schema {
            capacity *= 2;
        }
        while keys.len() + 1 > capacity * 3 / 4 {
            capacity *= 2;
        }
        let largest = largest_capacity(self.config.max_buckets);
        capacity = capacity.min(largest);
        if (schema == table.schema && capacity == table.slots.len())
            || seen + 1 >= self.tables.len()
        {
            // Nothing to change: a table that is not full only looked full for a moment (other
            // recordings reserving slots), and taking a slot may be tried again.
            return !full;
        }
        let next = Table::new(schema, capacity);
        for key in keys {
            let _ = next.add(key, 0);
        }
        let _ = self.tables[seen + 1].set(next);
        self.current.store(seen + 1, Ordering::Release);
        true
    }

    /// Reads the counts into `buckets` (appended, positive then negative, each sorted by
    /// index) at the current schema.
    pub(crate) fn read_into(&self, buckets: &mut Vec<(i32, u64)>) -> NativeValue {
        let current = self.current.load(Ordering::Acquire);
        let schema = self.table(current).schema;
        let start = buckets.len();
        // Counts by key, brought down to the current schema.
        for at in 0..=current {
            let table = self.table(at);
            for slot in table.slots.iter() {
                let key = slot.key.load(Ordering::Acquire);
                let count = slot.count.load(Ordering::Relaxed);
                if key == EMPTY || count == 0 {
                    continue;
                }
                let (i, negative) = unkey(key);
                let i = index::reduce(i, table.schema - schema);
                buckets.push((self::key(i, negative), count));
            }
        }
        let tail = &mut buckets[start..];
        // Positive keys (even) first, each side by index.
        tail.sort_unstable_by_key(|&(key, _)| (key & 1, key >> 1));
        let mut kept = start;
        for at in start..buckets.len() {
            if kept > start && buckets[kept - 1].0 == buckets[at].0 {
                buckets[kept - 1].1 += buckets[at].1;
            } else {
                buckets[kept] = buckets[at];
                kept += 1;
            }
        }
        buckets.truncate(kept);
        let mut count = 0;
        let mut split = kept;
        for (at, bucket) in buckets[start..].iter_mut().enumerate() {
            let (i, negative) = unkey(bucket.0);
            if negative && split == kept {
                split = start + at;
            }
            bucket.0 = i;
            count += bucket.1;
        }
        let zero_count = self.zero.load(Ordering::Relaxed);
        NativeValue {
            schema,
            zero_threshold: self.config.zero_threshold,
            zero_count,
            count: count + zero_count + self.nan.load(Ordering::Acquire),
            positive: (start as u32, split as u32),
            negative: (split as u32, kept as u32),
        }
    }
}

/// The largest table: room for one bucket more than allowed, and for every bucket of the
/// lowest schema.
fn largest_capacity(max_buckets: u32) -> usize {
    let needed = (max_buckets as usize + 1).max(MAX_BUCKETS_AT_MIN_SCHEMA + 1);
    (needed * 4 / 3 + 1).next_power_of_two()
}

#[cfg(test)]
mod tests;
