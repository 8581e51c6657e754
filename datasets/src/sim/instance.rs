//! One running instance: its request slots and CPUs, each with a waiting
//! line, the faults acting on it, and the counters its metrics come from.

use std::collections::VecDeque;

use super::faults::Effects;
use super::record::{LATENCY_BOUNDS_MS, MetricPoint};

/// Requests waiting beyond this many are turned away (503).
pub(crate) const MAX_WAITING: usize = 1_000;
/// How long after an instance dies its callers still try it.
pub(crate) const DISCOVERY_DELAY_NS: u64 = 5_000_000_000;
/// After a restart, own work is this much slower for [`COLD_NS`].
const COLD_SLOWDOWN: f64 = 2.0;
const COLD_NS: u64 = 15_000_000_000;

pub(crate) struct InstanceState<J> {
    pub busy: u32,
    pub waiting: VecDeque<J>,
    pub cpu_busy: u32,
    pub cpu_waiting: VecDeque<(J, u64)>,
    pub effects: Effects,
    pub cpu_hog: f64,
    pub down_since: Option<u64>,
    pub restarted_at: Option<u64>,
    pub deployed: bool,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    cpu_ns: u64,
    requests: u64,
    errors: u64,
    buckets: [u64; LATENCY_BOUNDS_MS.len() + 1],
    latency_sum_ms: f64,
}

impl<J> InstanceState<J> {
    pub(super) fn new() -> Self {
        Self {
            busy: 0,
            waiting: VecDeque::new(),
            cpu_busy: 0,
            cpu_waiting: VecDeque::new(),
            effects: Effects::default(),
            cpu_hog: 0.0,
            down_since: None,
            restarted_at: None,
            deployed: false,
            counters: Counters::default(),
        }
    }

    /// Whether callers still send to it at `now`.
    pub(super) fn discoverable(&self, now: u64) -> bool {
        self.down_since
            .is_none_or(|since| now.saturating_sub(since) < DISCOVERY_DELAY_NS)
    }

    pub(super) fn slots(&self, concurrency: u32) -> u32 {
        self.effects.concurrency.unwrap_or(concurrency)
    }

    /// Own-work multiplier at `now`: faults, and a cold start.
    pub(super) fn slowdown(&self, now: u64) -> f64 {
        let cold = match self.restarted_at {
            Some(at) if now.saturating_sub(at) < COLD_NS => COLD_SLOWDOWN,
            _ => 1.0,
        };
        self.effects.slowdown_at(now) * cold
    }

    pub(super) fn count_cpu(&mut self, ns: u64) {
        self.counters.cpu_ns += ns;
    }

    pub(super) fn count_request(&mut self, duration_ns: u64, failed: bool) {
        let c = &mut self.counters;
        c.requests += 1;
        c.errors += u64::from(failed);
        let ms = duration_ns as f64 / 1e6;
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        c.buckets[bucket] += 1;
        c.latency_sum_ms += ms;
    }

    /// The interval's metric point; the counters start again.
    pub(super) fn take_point(
        &mut self,
        instance: usize,
        (start, end): (u64, u64),
        cpus: u32,
        memory_mb: f64,
    ) -> MetricPoint {
        let counters = std::mem::take(&mut self.counters);
        let capacity = cpus as f64 * end.saturating_sub(start).max(1) as f64;
        let used = counters.cpu_ns as f64 / capacity;
        let working_set = 1.0 + 0.02 * f64::from(self.busy);
        let memory_mb = memory_mb * working_set + self.effects.leaked_mb_at(end);
        MetricPoint {
            instance,
            start,
            end,
            cpu_utilization: (used + self.cpu_hog).min(1.0),
            memory_bytes: (memory_mb * 1024.0 * 1024.0) as u64,
            requests: counters.requests,
            errors: counters.errors,
            latency_buckets: counters.buckets.to_vec(),
            latency_sum_ms: counters.latency_sum_ms,
            deployed: self.deployed,
        }
    }
}
