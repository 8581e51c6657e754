//! Root-cause rankings: candidates, most likely first, each with the
//! evidence that put it there, so an SRE can check the reasoning.

use serde::{Deserialize, Serialize};

use crate::anomaly::Anomaly;

/// A ranking over one window, compared with the normal window before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauses {
    /// The abnormal window: `[from, to)` in Unix nanoseconds.
    pub from_unix_nanos: u64,
    pub to_unix_nanos: u64,
    /// The normal window it is compared with.
    pub normal_from_unix_nanos: u64,
    pub normal_to_unix_nanos: u64,
    /// What the ranking was made from.
    pub spans: u64,
    pub traces: u64,
    pub metric_points: u64,
    /// Most likely cause first.
    pub causes: Vec<Cause>,
    /// Why the ranking is weak or empty, when it is.
    pub notes: Vec<String>,
}

/// One candidate root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub service: String,
    /// The instance the evidence concentrates on, when it does.
    pub instance: Option<String>,
    /// The operation the evidence concentrates on, when it does.
    pub operation: Option<String>,
    /// In [0, 1]: the share of the window's anomalous behaviour this
    /// candidate explains, weighted over the kinds of evidence present.
    pub score: f64,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
    /// Services from the entry down to this one along which the effect
    /// travelled (callers whose errors or latency rose), this one last.
    pub path: Vec<String>,
    /// Traces of the abnormal window that show the evidence.
    pub exemplars: Vec<String>,
    /// The detectors' alarms on this service's node in the window, when
    /// the twin still holds them (its latest 1,000), oldest first.
    #[serde(default)]
    pub alarms: Vec<Anomaly>,
}

/// One reason a candidate is suspected. Each carries the numbers it was
/// computed from and its `share`: the part of the window's anomalous
/// behaviour of its kind it accounts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Errors that start here: spans that failed while no call they made
    /// failed (or whose callers' calls failed while they did not answer).
    ErrorOrigin {
        operation: String,
        instance: Option<String>,
        errors: u64,
        expected: f64,
        requests: u64,
        share: f64,
    },
    /// Own work (time not spent waiting on calls) grew against the baseline.
    SelfTime {
        operation: String,
        instance: Option<String>,
        normal_ms: f64,
        abnormal_ms: f64,
        requests: u64,
        share: f64,
    },
    /// Calls from one instance to another take longer outside the
    /// callee's own spans than before: the wire, a queue, or (for a callee
    /// without spans, such as a database) the whole call as its caller
    /// saw it.
    NetworkDelay {
        caller: String,
        callee: String,
        normal_ms: f64,
        abnormal_ms: f64,
        calls: u64,
        share: f64,
    },
    /// Requests of this operation stopped making a call they made before.
    MissingCall {
        operation: String,
        to: String,
        normal_per_request: f64,
        abnormal_per_request: f64,
        requests: u64,
        share: f64,
    },
    /// Calls to this service were retried more often than before.
    Retries {
        retries: u64,
        expected: f64,
        share: f64,
    },
    /// The mesh turned calls to this service away more often than before:
    /// endpoints ejected after failures, breakers open.
    Resilience {
        ejections: u64,
        breaker_open: u64,
        expected: f64,
        share: f64,
    },
    /// A metric of this service moved away from its normal range.
    Metric {
        metric: String,
        instance: Option<String>,
        normal: f64,
        abnormal: f64,
        z: f64,
        share: f64,
    },
}

impl Evidence {
    pub fn share(&self) -> f64 {
        match self {
            Self::ErrorOrigin { share, .. }
            | Self::SelfTime { share, .. }
            | Self::NetworkDelay { share, .. }
            | Self::MissingCall { share, .. }
            | Self::Retries { share, .. }
            | Self::Resilience { share, .. }
            | Self::Metric { share, .. } => *share,
        }
    }

    /// One sentence for people.
    pub fn describe(&self) -> String {
        match self {
            Self::ErrorOrigin {
                operation,
                errors,
                expected,
                requests,
                ..
            } => format!(
                "{errors} errors start in {operation} ({expected:.1} expected) over {requests} requests"
            ),
            Self::SelfTime {
                operation,
                normal_ms,
                abnormal_ms,
                requests,
                ..
            } => format!(
                "own time of {operation} {normal_ms:.2} ms -> {abnormal_ms:.2} ms over {requests} requests"
            ),
            Self::NetworkDelay {
                caller,
                callee,
                normal_ms,
                abnormal_ms,
                calls,
                ..
            } => format!(
                "calls {caller} -> {callee} take {normal_ms:.2} ms -> {abnormal_ms:.2} ms outside the callee's spans over {calls} calls"
            ),
            Self::MissingCall {
                operation,
                to,
                normal_per_request,
                abnormal_per_request,
                ..
            } => format!(
                "{operation} calls {to} {abnormal_per_request:.2} times per request, {normal_per_request:.2} before"
            ),
            Self::Retries {
                retries, expected, ..
            } => format!("{retries} retries of calls to it ({expected:.1} expected)"),
            Self::Resilience {
                ejections,
                breaker_open,
                expected,
                ..
            } => format!(
                "{ejections} endpoint ejections and {breaker_open} calls refused by an open breaker ({expected:.1} expected)"
            ),
            Self::Metric {
                metric,
                normal,
                abnormal,
                z,
                ..
            } => format!("{metric} {normal:.3} -> {abnormal:.3} ({z:+.1} robust z)"),
        }
    }
}
