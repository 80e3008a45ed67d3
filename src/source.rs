//! The snapshot source: what a push, a scrape, `render()` and the catalog read from the
//! registry (and the lifecycle metrics), with the reporting of left-out series done once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::lifecycle::{Lifecycle, Outcome};
use crate::protocol::text;
use crate::registry::Registry;
use crate::snapshot::{Dropped, Snapshot, View};

/// At most this many left-out series are reported, each once; then one line says more were.
const REPORTED_DROPS: usize = 1000;

/// Takes what a push sends: the registry's values, then the lifecycle metrics.
pub(crate) struct Renderer {
    pub(crate) registry: Arc<Registry>,
    pub(crate) lifecycle: Option<Lifecycle>,
    /// The left-out series already reported.
    reported: Mutex<HashSet<String>>,
}

impl Renderer {
    pub(crate) fn new(registry: Arc<Registry>, lifecycle: Option<Lifecycle>) -> Self {
        Renderer {
            registry,
            lifecycle,
            reported: Mutex::new(HashSet::new()),
        }
    }

    /// The snapshot of this moment for `outcome`, everything in it; a series left out of it
    /// (because the gateway would refuse the whole body for it) is reported once, with why.
    pub(crate) fn snapshot(&self, outcome: Outcome) -> Snapshot {
        self.snapshot_for(outcome, &View::default())
    }

    /// [`snapshot`](Self::snapshot) as one target sees it: its labels on every series, only
    /// the metrics its filter takes.
    pub(crate) fn snapshot_for(&self, outcome: Outcome, view: &View) -> Snapshot {
        let snapshot = self.take(outcome, view);
        if !snapshot.dropped().is_empty() {
            self.report_dropped(snapshot.dropped(), snapshot.dropped_more());
        }
        snapshot
    }

    /// The snapshot a scrape of the listener serves: every metric, without the lifecycle
    /// metrics, which describe a pushed run (their names stay reserved, so that a scrape and a
    /// push leave out the same recorded series).
    pub(crate) fn scrape_snapshot(&self) -> Snapshot {
        let reserved = match self.lifecycle {
            Some(_) => crate::lifecycle::NAMES,
            None => &[],
        };
        let snapshot = self.registry.snapshot(reserved, &View::default()).finish();
        if !snapshot.dropped().is_empty() {
            self.report_dropped(snapshot.dropped(), snapshot.dropped_more());
        }
        snapshot
    }

    fn report_dropped(&self, dropped: &[Dropped], more: usize) {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        let untold = dropped
            .iter()
            .filter(|d| !reported.contains(&d.series))
            .count()
            + more;
        let mut told = 0;
        for d in dropped {
            if reported.len() > REPORTED_DROPS || reported.contains(&d.series) {
                continue;
            }
            if reported.len() == REPORTED_DROPS {
                break;
            }
            reported.insert(d.series.clone());
            crate::log::warn(&d.to_string());
            told += 1;
        }
        if reported.len() == REPORTED_DROPS && untold > told {
            // Once: the marker takes the set past its bound.
            reported.insert(String::new());
            crate::log::warn(&format!(
                "more than {REPORTED_DROPS} series are left out of every push; the others are \
                 not listed"
            ));
        }
    }

    fn take(&self, outcome: Outcome, view: &View) -> Snapshot {
        let reserved = match self.lifecycle {
            Some(_) => crate::lifecycle::NAMES,
            None => &[],
        };
        let mut builder = self.registry.snapshot(reserved, view);
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.add_to(outcome, &mut builder);
        }
        builder.finish()
    }

    /// The snapshot of this moment in the text exposition format.
    pub(crate) fn render(&self, outcome: Outcome) -> String {
        text::text_string(&self.snapshot(outcome))
    }
}
