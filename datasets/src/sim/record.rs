//! What a simulation emits: compact span and metric records, turned into
//! OTLP (or table rows) only when written out.

use super::plan::{InstanceId, OperationId, ServiceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Client,
    Server,
    Producer,
    Consumer,
}

/// Why a call failed, as its caller or server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server answered an error on its own (500 / UNAVAILABLE).
    Server,
    /// An unhandled exception in the server (500 / INTERNAL).
    Exception,
    /// A call it depends on failed (502 / UNAVAILABLE).
    Dependency,
    /// No answer within the caller's timeout (504 / DEADLINE_EXCEEDED).
    Timeout,
    /// The server was not there (connection refused).
    Refused,
    /// The server's queue was full (503 / RESOURCE_EXHAUSTED).
    Overloaded,
}

/// One finished span, in true (unskewed) simulation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSpan {
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: u64,
    /// The instance that reports it.
    pub instance: InstanceId,
    pub kind: Kind,
    pub operation: OperationId,
    /// Client and producer spans: the service called.
    pub peer: ServiceId,
    pub start: u64,
    pub end: u64,
    pub failure: Option<Failure>,
    /// 0 for a first attempt, n for the n-th retry.
    pub attempt: u32,
    /// Consumer spans: the producer span they continue.
    pub link: Option<(u128, u64)>,
    /// The version of the reporting service (index into its versions).
    pub deployed: bool,
}

/// One instance's counters over one metrics interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub instance: InstanceId,
    pub start: u64,
    pub end: u64,
    /// CPU time used over the interval over the CPU time available.
    pub cpu_utilization: f64,
    pub memory_bytes: u64,
    pub requests: u64,
    pub errors: u64,
    /// Request durations: counts per [`LATENCY_BOUNDS_MS`] bucket.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_ms: f64,
    pub deployed: bool,
}

/// Upper bounds of the latency histogram buckets, in milliseconds; the
/// last bucket is unbounded.
pub const LATENCY_BOUNDS_MS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0,
];

/// Everything a run emits, in the order it happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub spans: Vec<SimSpan>,
    pub metrics: Vec<MetricPoint>,
}
