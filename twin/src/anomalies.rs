//! The graph's detectors: every closed 10 s bucket of every node and edge
//! goes through one streaming detector per signal (p50 and p99 latency,
//! error rate, throughput); alarms are marked on the node or edge, kept in
//! a bounded list, and grouped into incidents ([`crate::incidents`]).
//!
//! A bucket is closed [`SETTLE_NANOS`] after it ends on the event-time
//! clock, so calls whose halves pair a little late are in it. p50 latency
//! and error rate are evaluated only for buckets with [`MIN_REQUESTS`]
//! calls, p99 latency with [`MIN_REQUESTS_P99`] (below that it is the
//! slowest call of a handful); throughput for every bucket, empty ones
//! included (a drop to nothing is the loudest drop).

use std::sync::Arc;

use meshtwin_model::anomaly::{ActiveAnomaly, Anomaly, Signal, Subject};
use meshtwin_model::graph::edge_id;

use crate::config::DetectionConfig;
use crate::detect::{Alarm, Detector, DetectorConfig, Verdict, signal_config};
use crate::graph::ServiceGraph;
use crate::incidents::{Incidents, Neighbours};
use crate::window::{BUCKET_NANOS, BUCKETS_KEPT, BucketStats};

/// A bucket is evaluated this long after it ends.
const SETTLE_NANOS: u64 = 5_000_000_000;
/// Fewer calls than this in a bucket say nothing reliable about its
/// latency or error rate.
pub(crate) const MIN_REQUESTS: u64 = 5;
pub(crate) const MIN_REQUESTS_P99: u64 = 50;
/// An error-rate alarm also needs its bucket's failures to be this unlikely
/// at the expected rate (a Chernoff bound on the binomial tail): one failed
/// call among five is not an incident, eight among a hundred is.
const ERROR_COUNT_RISK: f64 = 1e-3;
/// The expected error rate is taken as at least this in that test.
const MIN_EXPECTED_ERROR_RATE: f64 = 1e-3;
/// How many of the latest alarms the twin keeps for the API.
const KEPT_ANOMALIES: usize = 1000;

/// One node's or edge's detectors, each made when its signal first has a
/// value.
#[derive(Default)]
pub(crate) struct SeriesWatch {
    detectors: [Option<Box<Detector>>; Signal::ALL.len()],
    /// Signals that alarmed in the latest evaluated bucket.
    pub(crate) active: Vec<ActiveAnomaly>,
}

/// What a new detector of a node or edge is made with.
#[derive(Clone, Copy)]
struct Settings {
    sensitivity: f64,
    warmup_points: u32,
}

/// An alarm of one signal, before it is named.
pub(crate) struct Alarmed {
    signal: Signal,
    value: f64,
    alarm: Alarm,
    expected: f64,
    band: (f64, f64),
}

impl SeriesWatch {
    /// Runs the bucket that ended at `end` through every signal's detector.
    fn observe(&mut self, stats: &BucketStats, end: u64, settings: Settings) -> Vec<Alarmed> {
        let mut alarms = Vec::new();
        for (index, signal) in Signal::ALL.into_iter().enumerate() {
            let verdict = signal_value(signal, stats).and_then(|value| {
                let detector = self.detectors[index].get_or_insert_with(|| {
                    let config = DetectorConfig {
                        warmup_points: settings.warmup_points,
                        ..signal_config(signal, settings.sensitivity)
                    };
                    Box::new(Detector::new(config))
                });
                let seconds = (end / 1_000_000_000) as i64;
                Some((value, detector.update(seconds, value).ok()?))
            });
            let alarm = verdict.and_then(|(value, verdict): (f64, Verdict)| {
                let expected = verdict.expected?;
                let credible = signal != Signal::ErrorRate
                    || errors_unlikely(stats.errors, stats.requests, expected);
                Some((
                    value,
                    verdict.alarm.filter(|_| credible)?,
                    expected,
                    verdict.band?,
                ))
            });
            let Some((value, alarm, expected, band)) = alarm else {
                self.active.retain(|a| a.signal != signal);
                continue;
            };
            let since = self
                .active
                .iter()
                .find(|a| a.signal == signal)
                .map_or(end, |a| a.since_unix_nanos);
            self.active.retain(|a| a.signal != signal);
            self.active.push(ActiveAnomaly {
                signal,
                kind: alarm.kind,
                deviation: alarm.deviation,
                since_unix_nanos: since,
                value,
                expected,
            });
            alarms.push(Alarmed {
                signal,
                value,
                alarm,
                expected,
                band,
            });
        }
        alarms
    }
}

/// The value of `signal` in one bucket, if the bucket says enough.
fn signal_value(signal: Signal, stats: &BucketStats) -> Option<f64> {
    let enough = stats.requests >= MIN_REQUESTS;
    match signal {
        Signal::LatencyP50 => stats.p50.filter(|_| enough),
        Signal::LatencyP99 => stats.p99.filter(|_| stats.requests >= MIN_REQUESTS_P99),
        Signal::ErrorRate => enough.then(|| stats.errors as f64 / stats.requests as f64),
        Signal::Throughput => Some(stats.requests as f64 * 1e9 / BUCKET_NANOS as f64),
    }
}

/// Whether `errors` failures in `requests` calls are less likely than
/// [`ERROR_COUNT_RISK`] at error rate `expected`: P(X ≥ k) ≤
/// exp(−n·KL(k/n ‖ p)) for a binomial X above its mean.
fn errors_unlikely(errors: u64, requests: u64, expected: f64) -> bool {
    if requests == 0 {
        return false;
    }
    let p = expected.clamp(MIN_EXPECTED_ERROR_RATE, 1.0 - 1e-9);
    let q = errors as f64 / requests as f64;
    if q <= p {
        return false;
    }
    let part = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
    let divergence = part(q, p) + part(1.0 - q, 1.0 - p);
    -(requests as f64) * divergence < ERROR_COUNT_RISK.ln()
}

/// The twin's side of detection: which bucket is next, and the latest alarms.
pub(crate) struct Anomalies {
    config: DetectionConfig,
    next_bucket: Option<u64>,
    recent: Arc<Vec<Anomaly>>,
    pub(crate) total: u64,
    pub(crate) incidents: Incidents,
}

impl Anomalies {
    pub(crate) fn new(config: &DetectionConfig) -> Self {
        Self {
            config: config.clone(),
            next_bucket: None,
            recent: Arc::default(),
            total: 0,
            incidents: Incidents::default(),
        }
    }

    pub(crate) fn recent(&self) -> Arc<Vec<Anomaly>> {
        self.recent.clone()
    }

    /// Evaluates every bucket closed by twin time `now` and not yet
    /// evaluated (at most those the windows still hold).
    pub(crate) fn evaluate(&mut self, graph: &mut ServiceGraph, now: u64) {
        if !self.config.enabled {
            return;
        }
        let closed = now.saturating_sub(SETTLE_NANOS) / BUCKET_NANOS;
        let oldest_kept = closed.saturating_sub(BUCKETS_KEPT);
        let first = self.next_bucket.unwrap_or(closed.saturating_sub(1));
        let mut found = Vec::new();
        for bucket in first.max(oldest_kept)..closed {
            let before = found.len();
            graph.detect(bucket, &self.config, &mut found);
            let end = (bucket + 1) * BUCKET_NANOS;
            self.incidents.observe(&found[before..], end, now, graph);
        }
        self.next_bucket = Some(closed.max(first));
        if found.is_empty() {
            return;
        }
        self.total += found.len() as u64;
        let recent = Arc::make_mut(&mut self.recent);
        recent.extend(found);
        let excess = recent.len().saturating_sub(KEPT_ANOMALIES);
        recent.drain(..excess);
    }
}

impl ServiceGraph {
    /// Runs bucket `bucket` of every node and edge that existed before it
    /// began through their detectors, adding the alarms to `found`.
    fn detect(&mut self, bucket: u64, config: &DetectionConfig, found: &mut Vec<Anomaly>) {
        let end = (bucket + 1) * BUCKET_NANOS;
        let start = bucket * BUCKET_NANOS;
        // A series' first bucket is partial: it starts with the next one.
        for node in self.graph.node_weights_mut() {
            if node.first_seen >= start {
                continue;
            }
            let stats = node.traffic.bucket(bucket, &[0]);
            let settings = Settings {
                sensitivity: config.sensitivity_of(&node.name),
                warmup_points: config.warmup_buckets(),
            };
            for alarm in node.watch.observe(&stats, end, settings) {
                found.push(anomaly(Subject::Node, node.id.to_string(), end, alarm));
            }
        }
        for index in self.graph.edge_indices().collect::<Vec<_>>() {
            let Some((from, to)) = self.graph.edge_endpoints(index) else {
                continue;
            };
            let settings = Settings {
                sensitivity: config.sensitivity_of(&self.graph[to].name),
                warmup_points: config.warmup_buckets(),
            };
            let edge = &mut self.graph[index];
            if edge.first_seen >= start {
                continue;
            }
            // Client timing where the caller reports it, else the server's.
            let stats = edge.traffic.bucket(bucket, &[0, 1]);
            let alarms = edge.watch.observe(&stats, end, settings);
            for alarm in alarms {
                let id = edge_id(&self.graph[from].id, &self.graph[to].id);
                found.push(anomaly(Subject::Edge, id, end, alarm));
            }
        }
    }
}

impl Neighbours for ServiceGraph {
    fn connected(&self, a: &str, b: &str) -> bool {
        ServiceGraph::connected(self, a, b)
    }
}

fn anomaly(subject: Subject, id: String, end: u64, alarmed: Alarmed) -> Anomaly {
    let Alarmed {
        signal,
        value,
        alarm,
        expected,
        band: (lower, upper),
    } = alarmed;
    Anomaly {
        subject,
        id,
        signal,
        kind: alarm.kind,
        deviation: alarm.deviation,
        at_unix_nanos: end,
        value,
        expected,
        lower,
        upper,
    }
}

#[cfg(test)]
mod tests;
