//! Sliding windows of request counts, errors and latency sketches.
//!
//! Each series keeps two rings of buckets: 10 s buckets for the last-minute
//! view and 60 s buckets for the last-five-minutes view. A request is
//! recorded once, in its 10 s bucket; when that bucket's slot is reused,
//! the bucket is folded into its minute. Buckets are keyed by event time,
//! so the order in which spans arrive does not matter. Latencies go into
//! DDSketches, which merge exactly across buckets.

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

/// What recording into a ring did.
enum Recorded<const K: usize> {
    Done,
    /// Recorded; the slot's previous bucket was pushed out.
    Evicted(Box<Slot<K>>),
    /// Not recorded: older than the bucket now in its slot.
    TooOld,
}

impl<const K: usize> Slot<K> {
    /// Adds another bucket's counts and sketches to this one.
    fn add(&mut self, other: Slot<K>) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            match (mine.as_mut(), theirs) {
                (Some(mine), Some(theirs)) => {
                    mine.merge(&theirs).expect("all sketches share one config")
                }
                (None, Some(theirs)) => *mine = Some(theirs),
                (_, None) => {}
            }
        }
    }

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

    /// Counts one request in its bucket. A reused slot's old bucket is
    /// returned (for folding); a request older than the slot's bucket is
    /// handed back unrecorded.
    fn record(&mut self, at: u64, failed: bool, latencies: [Option<u64>; K]) -> Recorded<K> {
        let bucket = at / self.width;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(bucket % len) as usize];
        let mut evicted = None;
        if slot.bucket != bucket {
            if slot.bucket != u64::MAX && slot.bucket > bucket {
                return Recorded::TooOld;
            }
            let old = std::mem::replace(slot, Slot::empty());
            slot.bucket = bucket;
            evicted = (old.bucket != u64::MAX).then_some(old);
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
        match evicted {
            Some(old) => Recorded::Evicted(Box::new(old)),
            None => Recorded::Done,
        }
    }

    /// Adds a whole finer bucket that started at `at` to its bucket here.
    fn absorb(&mut self, at: u64, finer: Slot<K>) {
        let bucket = at / self.width;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(bucket % len) as usize];
        if slot.bucket != bucket {
            if slot.bucket != u64::MAX && slot.bucket > bucket {
                return; // older than the whole ring
            }
            *slot = Slot::empty();
            slot.bucket = bucket;
        }
        slot.add(finer);
    }

    /// The empty view that ends at `now`: this ring's buckets from
    /// `view.start` on belong in it.
    fn empty_view(&self, now: u64) -> View<K> {
        let current = now / self.width;
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        View {
            start: oldest * self.width,
            end: (current + 1) * self.width,
            requests: 0,
            errors: 0,
            latency: std::array::from_fn(|_| None),
        }
    }

    /// Adds the buckets of this ring that fall inside `view`.
    fn add_to(&self, view: &mut View<K>) {
        for slot in self.slots.iter() {
            let start = slot.bucket.saturating_mul(self.width);
            if slot.bucket == u64::MAX || start < view.start || start >= view.end {
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
    }
}

/// The sum of a ring's buckets over one view.
pub(crate) struct View<const K: usize> {
    /// Start of the oldest bucket in the view.
    pub(crate) start: u64,
    /// End of the newest bucket in the view.
    end: u64,
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

/// One closed 10 s bucket of a series, as the detectors read it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BucketStats {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Latency quantiles in milliseconds.
    pub(crate) p50: Option<f64>,
    pub(crate) p99: Option<f64>,
}

/// Width of the buckets the detectors evaluate.
pub(crate) const BUCKET_NANOS: u64 = FINE_WIDTH;
/// How many buckets back the ring still holds a closed bucket.
pub(crate) const BUCKETS_KEPT: u64 = FINE_SLOTS as u64 - 1;

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
        match self.fine.record(at, failed, latencies) {
            Recorded::Done => {}
            Recorded::Evicted(old) => self.coarse.absorb(old.bucket * FINE_WIDTH, *old),
            Recorded::TooOld => {
                // Past the last minute, but maybe within the last five.
                let mut single = Slot::empty();
                single.bucket = at / FINE_WIDTH;
                single.requests = 1;
                single.errors = u64::from(failed);
                for (sketch, nanos) in single.latency.iter_mut().zip(latencies) {
                    if let Some(nanos) = nanos {
                        let mut new = new_sketch();
                        new.add(nanos as f64 / 1e6);
                        *sketch = Some(Box::new(new));
                    }
                }
                self.coarse.absorb(at, single);
            }
        }
    }

    pub(crate) fn last_minute(&self, now: u64) -> View<K> {
        let mut view = self.fine.empty_view(now);
        self.fine.add_to(&mut view);
        view
    }

    /// The counts of 10 s bucket `bucket` (since the epoch), with the p50
    /// and p99 of the first latency series in `order` that has any; all
    /// zero if the bucket is no longer (or not yet) in the ring.
    pub(crate) fn bucket(&self, bucket: u64, order: &[usize]) -> BucketStats {
        let slot = &self.fine.slots[(bucket % FINE_SLOTS as u64) as usize];
        if slot.bucket != bucket {
            return BucketStats::default();
        }
        let sketch = order
            .iter()
            .find_map(|&index| slot.latency.get(index)?.as_deref());
        let quantile = |q: f64| sketch.and_then(|s| s.quantile(q).ok().flatten());
        BucketStats {
            requests: slot.requests,
            errors: slot.errors,
            p50: quantile(0.5),
            p99: quantile(0.99),
        }
    }

    /// Whole minutes folded so far, plus the 10 s buckets not yet folded.
    pub(crate) fn last_five_minutes(&self, now: u64) -> View<K> {
        let mut view = self.coarse.empty_view(now);
        self.coarse.add_to(&mut view);
        self.fine.add_to(&mut view);
        view
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MS: u64 = 1_000_000;

    proptest! {
        /// Whatever order requests arrive in, both views hold exactly the
        /// requests whose bucket is in the view, with the same quantiles as
        /// a sketch of just those requests.
        #[test]
        fn views_equal_a_naive_recount(
            events in prop::collection::vec((0u64..480_000, 1u64..5_000, any::<bool>()), 1..300),
            now_after in 0u64..30_000,
        ) {
            let base = 1_000_000 * SECOND;
            let newest = events.iter().map(|e| e.0).max().unwrap();
            let now = base + (newest + now_after) * MS;
            let mut traffic = Traffic::<1>::new();
            for &(at_ms, latency_ms, failed) in &events {
                traffic.record(base + at_ms * MS, failed, [Some(latency_ms * MS)]);
            }
            for view in [traffic.last_minute(now), traffic.last_five_minutes(now)] {
                let inside: Vec<_> = events
                    .iter()
                    .filter(|e| (view.start..view.end).contains(&(base + e.0 * MS)))
                    .collect();
                prop_assert_eq!(view.requests, inside.len() as u64);
                prop_assert_eq!(view.errors, inside.iter().filter(|e| e.2).count() as u64);
                let mut naive = new_sketch();
                for e in &inside {
                    naive.add((e.1 * MS) as f64 / 1e6);
                }
                let expected = (!inside.is_empty()).then(|| {
                    let q = |q| round(naive.quantile(q).unwrap().unwrap(), 1e3);
                    Quantiles { p50: q(0.5), p90: q(0.9), p99: q(0.99) }
                });
                prop_assert_eq!(view.quantiles(0), expected);
            }
        }
    }

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
