//! The histogram settings of [`PushgatewayBuilder`]: classic, native or both, by metric, and
//! the resolution of native histograms.

use super::{ExpositionFormat, PushgatewayBuilder};
use crate::native::{HistogramForm, NativeConfig};
use crate::registry::Matcher;
use crate::target::TargetKind;
use crate::InitError;

/// The most buckets a native histogram may be set to keep
/// ([`native_histogram_max_buckets`](PushgatewayBuilder::native_histogram_max_buckets)).
const MAX_NATIVE_BUCKETS: u32 = 4096;

impl PushgatewayBuilder {
    /// The form of every histogram (see [`HistogramForm`]): classic buckets at
    /// [`buckets`](Self::buckets) (the default), a native histogram (exponential buckets at
    /// the resolution of
    /// [`native_histogram_bucket_factor`](Self::native_histogram_bucket_factor), one series
    /// per histogram, no bounds to choose), or both. Also `PUSHGATEWAY_HISTOGRAMS`.
    ///
    /// A native histogram reaches Prometheus (2.40 or later, with
    /// `--enable-feature=native-histograms`) through a Pushgateway pushed to in protobuf (the
    /// default format) and scraped in protobuf, through remote write, and through the
    /// listener's protobuf scrape. A text body (the text format, a textfile, a text scrape)
    /// carries its classic equivalent instead: a cumulative count at each native bucket's
    /// upper bound.
    pub fn histograms(mut self, form: HistogramForm) -> Self {
        self.histograms.form = form;
        self
    }

    /// The form of the histograms `matcher` selects (full name, prefix or suffix, as
    /// [`buckets_for_metric`](Self::buckets_for_metric)), instead of
    /// [`histograms`](Self::histograms).
    pub fn histograms_for_metric(mut self, matcher: Matcher, form: HistogramForm) -> Self {
        self.histograms.for_metric.push((matcher, form));
        self
    }

    /// The resolution of native histograms as the largest growth from one bucket's upper
    /// bound to the next: the schema is the highest whose factor `2^(2^-schema)` is at most
    /// `factor` (client_golang's `NativeHistogramBucketFactor`). Default 1.1: schema 3, 8
    /// buckets per power of two: `histogram_quantile` (linear within a bucket) is off by at most
    /// 9.05 % (`2^(1/8) - 1`) of the true quantile. From
    /// 1.0027 (schema 8) to 65536 (schema -4); must be finite and above 1.
    pub fn native_histogram_bucket_factor(mut self, factor: f64) -> Self {
        self.native_factor = factor;
        self.histograms.native = self.native_config();
        self
    }

    /// The most buckets (positive and negative together) one native histogram keeps: past
    /// it, the resolution is halved (neighbouring buckets merged, the schema lowered by one)
    /// until the buckets fit or the schema is -4, as client_golang does with
    /// `NativeHistogramMaxBucketNumber` (without its reset). Bounds the memory of a series:
    /// at worst about 16 slots of 16 bytes per bucket allowed (bucket tables are kept as they
    /// grow, so that a recording never races a move), 41 KB for the default 160. Default 160;
    /// from 1 to 4096 (at most about 1 MiB per series).
    pub fn native_histogram_max_buckets(mut self, max: u32) -> Self {
        self.native_max_buckets = max;
        self.histograms.native = self.native_config();
        self
    }

    /// Observations whose absolute value is at or below `threshold` go to the zero bucket
    /// of a native histogram. Default 2^-128 (client_golang's
    /// `DefNativeHistogramZeroThreshold`); 0 keeps only zeros there. Must be finite, at
    /// least 0.
    ///
    /// With 0, a histogram that holds nothing yet (or only NaN) carries no native field that
    /// Prometheus before 2.47 recognises (it looks at the deltas, the zero count and the zero
    /// threshold, not the spans): such a Prometheus reads it, and the rest of its family in
    /// that scrape, as classic. Keep a threshold above 0 for those.
    pub fn native_histogram_zero_threshold(mut self, threshold: f64) -> Self {
        self.native_zero_threshold = threshold;
        self.histograms.native = self.native_config();
        self
    }

    fn native_config(&self) -> NativeConfig {
        NativeConfig::new(
            self.native_factor,
            self.native_zero_threshold,
            self.native_max_buckets,
        )
    }

    /// The native histogram settings are in range.
    pub(crate) fn check_histograms(&self) -> Result<(), InitError> {
        let invalid = |setting, reason: String| Err(InitError::InvalidSetting { setting, reason });
        if !(self.native_factor.is_finite() && self.native_factor > 1.0) {
            return invalid(
                "native_histogram_bucket_factor",
                format!("{} is not a finite number above 1", self.native_factor),
            );
        }
        if !(self.native_zero_threshold.is_finite() && self.native_zero_threshold >= 0.0) {
            return invalid(
                "native_histogram_zero_threshold",
                format!(
                    "{} is not a finite number of 0 or more",
                    self.native_zero_threshold
                ),
            );
        }
        if !(1..=MAX_NATIVE_BUCKETS).contains(&self.native_max_buckets) {
            return invalid(
                "native_histogram_max_buckets",
                format!(
                    "{} buckets is out of range: from 1 to {MAX_NATIVE_BUCKETS}",
                    self.native_max_buckets
                ),
            );
        }
        Ok(())
    }
}

impl PushgatewayBuilder {
    /// One line when native histograms go to a Pushgateway in the text format, which has
    /// none: they are sent as their classic equivalent.
    pub(crate) fn note_text_histograms(&self) {
        let text_gateway = self.format == ExpositionFormat::Text
            && self
                .targets
                .iter()
                .any(|t| t.kind() == TargetKind::Pushgateway);
        if text_gateway && self.histograms.any_native() {
            crate::log::warn(
                "native histograms go to the Pushgateway as their classic equivalent (a count \
                 at each native bucket's upper bound): the text format has no native \
                 histograms; the protobuf format (the default) sends them as they are",
            );
        }
    }
}

/// `PUSHGATEWAY_HISTOGRAMS`: `classic`, `native` or `both`.
pub(crate) fn parse_histograms(text: &str) -> Result<HistogramForm, String> {
    text.parse()
}
