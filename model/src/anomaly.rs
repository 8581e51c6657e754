//! Anomalies: what the twin's streaming detectors raise on the series of a
//! node or an edge, as the snapshot shows them (alarming now) and as the
//! list of alarms keeps them.

use serde::{Deserialize, Serialize};

/// The series the twin watches on every node and edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Median latency, in milliseconds.
    LatencyP50,
    /// 99th percentile latency, in milliseconds.
    LatencyP99,
    /// Failed requests over requests, in [0, 1].
    ErrorRate,
    /// Requests per second: drops and surges.
    Throughput,
}

impl Signal {
    pub const ALL: [Self; 4] = [
        Self::LatencyP50,
        Self::LatencyP99,
        Self::ErrorRate,
        Self::Throughput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::LatencyP50 => "latency_p50",
            Self::LatencyP99 => "latency_p99",
            Self::ErrorRate => "error_rate",
            Self::Throughput => "throughput",
        }
    }
}

/// Why a point alarmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Beyond the tail threshold.
    Spike,
    /// Part of a lasting shift of the level.
    LevelShift,
}

/// Which way a point deviates from what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deviation {
    Above,
    Below,
}

/// A signal of a node or edge that alarmed in its latest evaluated 10 s
/// bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAnomaly {
    pub signal: Signal,
    pub kind: AlarmKind,
    pub deviation: Deviation,
    /// End of the first bucket of this run of alarms.
    pub since_unix_nanos: u64,
    /// The latest bucket's value and what the baseline expected.
    pub value: f64,
    pub expected: f64,
}

/// Whether an anomaly is on a node or an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Node,
    Edge,
}

/// One alarm: a signal of a node or edge in one 10 s bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub subject: Subject,
    /// The node's id, or the edge's `source->target`.
    pub id: String,
    pub signal: Signal,
    pub kind: AlarmKind,
    pub deviation: Deviation,
    /// End of the bucket (event time).
    pub at_unix_nanos: u64,
    pub value: f64,
    pub expected: f64,
    /// Values outside this band were beyond the tail thresholds.
    pub lower: f64,
    pub upper: f64,
}
