//! Sliding windows of request counts, errors and latency sketches.
//!
//! Each series keeps two rings of buckets: 10 s buckets for the last-minute
//! view and 60 s buckets for the last-five-minutes view. Buckets are keyed
//! by event time, so the order in which spans arrive does not matter.
//! Latencies go into DDSketches, which merge exactly across buckets.

use sketches_ddsketch::{Config, DDSketch};

use meshtwin_model::graph::Quantiles;

const SECOND: u64 = 1_000_000_000;
const FINE_WIDTH: u64 = 10 * SECOND;
/// Six whole 10 s buckets plus the current one: a view of 60 to 70 s.
const FINE_SLOTS: usize = 7;
const COARSE_WIDTH: u64 = 60 * SECOND;
/// Five whole minutes plus the current one.
const COARSE_SLOTS: usize = 6;

/// Data older than this (relative to the clock) is in no view any more.
pub(crate) const LONGEST_VIEW_NANOS: u64 = COARSE_WIDTH * COARSE_SLOTS as u64;

fn new_sketch() -> DDSketch {
    // 1 % relative accuracy over the whole range of span durations.
    DDSketch::new(Config::defaults())
}

/// One bucket: requests, errors, and `K` latency sketches (in milliseconds).
#[derive(Clone)]
struct Slot<const K: usize> {
    bucket: u64,
    requests: u64,
    errors: u64,
    latency: [Option<Box<DDSketch>>; K],
}

impl<const K: usize> Slot<K> {
    fn empty() -> Self {
        Self {
            bucket: u64::MAX,
            requests: 0,
            errors: 0,
            latency: std::array::from_fn(|_| None),
        }
    }
}

/// A ring of `slots` buckets of `width` nanoseconds each.
#[derive(Clone)]
struct Ring<const K: usize> {
    width: u64,
    slots: Box<[Slot<K>]>,
}

impl<const K: usize> Ring<K> {
    fn new(width: u64, slots: usize) -> Self {
        Self {
            width,
            slots: (0..slots).map(|_| Slot::empty()).collect(),
        }
    }

    fn record(&mut self, at: u64, failed: bool, latencies: [Option<u64>; K]) {
        let bucket = at / self.width;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(bucket % len) as usize];
        if slot.bucket != bucket {
            if slot.bucket != u64::MAX && slot.bucket > bucket {
                return; // a newer bucket already took the slot: too old
            }
            *slot = Slot::empty();
            slot.bucket = bucket;
        }
        slot.requests += 1;
        slot.errors += u64::from(failed);
        for (sketch, nanos) in slot.latency.iter_mut().zip(latencies) {
            if let Some(nanos) = nanos {
                sketch
                    .get_or_insert_with(|| Box::new(new_sketch()))
                    .add(nanos as f64 / 1e6);
            }
        }
    }

    /// Sums the buckets of the view that ends at `now`.
    fn view(&self, now: u64) -> View<K> {
        let current = now / self.width;
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        let mut view = View {
            start: oldest * self.width,
            requests: 0,
            errors: 0,
            latency: std::array::from_fn(|_| None),
        };
        for slot in self.slots.iter() {
            if slot.bucket == u64::MAX || slot.bucket < oldest || slot.bucket > current {
                continue;
            }
            view.requests += slot.requests;
            view.errors += slot.errors;
            for (merged, sketch) in view.latency.iter_mut().zip(&slot.latency) {
                if let Some(sketch) = sketch {
                    merged
                        .get_or_insert_with(new_sketch)
                        .merge(sketch)
                        .expect("all sketches share one config");
                }
            }
        }
        view
    }
}

/// The sum of a ring's buckets over one view.
pub(crate) struct View<const K: usize> {
    /// Start of the oldest bucket in the view.
    pub(crate) start: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    latency: [Option<DDSketch>; K],
}

impl<const K: usize> View<K> {
    /// Requests per second over the part of the view since `first_seen`.
    pub(crate) fn rate_per_second(&self, now: u64, first_seen: u64) -> f64 {
        let covered = now.saturating_sub(self.start.max(first_seen)).max(SECOND);
        round(self.requests as f64 * 1e9 / covered as f64, 1e3)
    }

    pub(crate) fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        round(self.errors as f64 / self.requests as f64, 1e4)
    }

    /// p50, p90 and p99 of latency series `index`, in milliseconds.
    pub(crate) fn quantiles(&self, index: usize) -> Option<Quantiles> {
        let sketch = self.latency[index].as_ref()?;
        let q = |q: f64| sketch.quantile(q).ok().flatten().map(|v| round(v, 1e3));
        Some(Quantiles {
            p50: q(0.5)?,
            p90: q(0.9)?,
            p99: q(0.99)?,
        })
    }
}

fn round(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

/// The last-minute and last-five-minutes windows of one series.
#[derive(Clone)]
pub(crate) struct Traffic<const K: usize> {
    fine: Ring<K>,
    coarse: Ring<K>,
}

impl<const K: usize> Traffic<K> {
    pub(crate) fn new() -> Self {
        Self {
            fine: Ring::new(FINE_WIDTH, FINE_SLOTS),
            coarse: Ring::new(COARSE_WIDTH, COARSE_SLOTS),
        }
    }

    /// Counts one request at event time `at`, with up to `K` latencies.
    pub(crate) fn record(&mut self, at: u64, failed: bool, latencies: [Option<u64>; K]) {
        self.fine.record(at, failed, latencies);
        self.coarse.record(at, failed, latencies);
    }

    pub(crate) fn last_minute(&self, now: u64) -> View<K> {
        self.fine.view(now)
    }

    pub(crate) fn last_five_minutes(&self, now: u64) -> View<K> {
        self.coarse.view(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn views_count_only_their_buckets() {
        let mut t = Traffic::<1>::new();
        let now = 1_000 * SECOND;
        t.record(now - 2 * SECOND, false, [Some(10 * MS)]);
        t.record(now - 30 * SECOND, true, [Some(20 * MS)]);
        t.record(now - 200 * SECOND, false, [Some(30 * MS)]);
        let minute = t.last_minute(now);
        assert_eq!((minute.requests, minute.errors), (2, 1));
        let five = t.last_five_minutes(now);
        assert_eq!((five.requests, five.errors), (3, 1));
        assert_eq!(five.error_ratio(), 0.3333);
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut t = Traffic::<1>::new();
        let now = 500 * SECOND;
        for ms in 1..=1000u64 {
            t.record(now - SECOND, false, [Some(ms * MS)]);
        }
        let q = t.last_minute(now).quantiles(0).unwrap();
        for (got, want) in [(q.p50, 500.0), (q.p90, 900.0), (q.p99, 990.0)] {
            assert!((got - want).abs() / want < 0.02, "{got} vs {want}");
        }
    }

    #[test]
    fn data_older_than_a_reused_slot_is_ignored() {
        let mut t = Traffic::<1>::new();
        let now = 10_000 * SECOND;
        t.record(now, false, [None]);
        // 70 s older maps onto the same fine slot, which is newer: ignored.
        t.record(now - 70 * SECOND, false, [None]);
        assert_eq!(t.last_minute(now).requests, 1);
    }

    #[test]
    fn rate_counts_only_the_time_since_first_seen() {
        let mut t = Traffic::<1>::new();
        let now = 1_000 * SECOND;
        for _ in 0..20 {
            t.record(now - SECOND, false, [None]);
        }
        let view = t.last_minute(now);
        assert_eq!(view.rate_per_second(now, now - 10 * SECOND), 2.0);
        assert!(view.rate_per_second(now, 0) < 0.5);
    }
}
