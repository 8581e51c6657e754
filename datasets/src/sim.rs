//! A seeded, deterministic discrete-event simulation of a topology under
//! load, with faults scheduled against it.
//!
//! Each instance is a queue: at most `concurrency` requests at once (the
//! rest wait, up to a bound), and its own work competes for `cpus` CPUs,
//! so latency grows with load. Each call crosses the network (a log-normal
//! delay, more between regions), may fan out, time out and be retried;
//! asynchronous calls go through a queue to a consumer whose span links to
//! the producer's. Out come spans ([`record::SimSpan`]) and per-instance
//! metrics ([`record::MetricPoint`]) in the order they happened, and a
//! [`faults::GroundTruth`] per scheduled fault. The same topology, options
//! and seed give the same output, event for event.

mod engine;
pub mod faults;
mod instance;
pub mod otlp;
pub(crate) mod plan;
pub mod record;
mod validate;

use serde::{Deserialize, Serialize};

pub use engine::Simulation;
pub use faults::{Fault, FaultKind, GroundTruth};
pub use record::{Failure, Kind, MetricPoint, Output, SimSpan};

/// How a run is observed and what goes wrong in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimOptions {
    pub seed: u64,
    /// Wall time of the simulation's first instant.
    pub start_unix_nano: u64,
    /// Entry requests per second; the topology's `rate` when absent.
    pub rate: Option<f64>,
    /// Share of traces whose spans are reported (head sampling at the
    /// entry, and wherever a trace is restarted).
    pub sampling_ratio: f64,
    /// Calls `[from, to]` whose trace context is lost.
    pub broken_propagation: Vec<[String; 2]>,
    /// Services that report no spans and pass no trace context on.
    pub uninstrumented: Vec<String>,
    /// Services whose clocks are off by this many milliseconds.
    pub clock_skew_ms: Vec<(String, f64)>,
    /// Seconds between metric points.
    pub metrics_interval_s: f64,
    pub faults: Vec<Fault>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            start_unix_nano: 1_800_000_000_000_000_000,
            rate: None,
            sampling_ratio: 1.0,
            broken_propagation: Vec::new(),
            uninstrumented: Vec::new(),
            clock_skew_ms: Vec::new(),
            metrics_interval_s: 10.0,
            faults: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
