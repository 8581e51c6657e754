//! How a destination is called: retries, outlier ejection, circuit
//! breaker, traffic split and injected faults. Every field has a default
//! that is safe to run with, so a service entry needs none.

use serde::{Deserialize, Serialize};

use super::ServiceConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Extra attempts after the first; 0 turns retries off.
    pub max_retries: u32,
    /// Retries may add at most this share of the route's requests …
    pub budget_percent: f32,
    /// … plus this many per second, so a quiet route can still retry.
    pub min_retries_per_second: u32,
    /// Statuses that make an idempotent request worth another endpoint.
    pub on_status: Vec<u16>,
    /// gRPC codes (from a trailers-only answer) worth another attempt.
    pub on_grpc: Vec<u32>,
    /// Bodies up to this size are kept so they can be sent again.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierPolicy {
    /// Consecutive 5xx or connect failures that eject an endpoint; 0 = never.
    pub consecutive_failures: u32,
    /// The first ejection's length; each further one adds this again.
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    /// Never eject more than this share of the endpoints (one always may).
    pub max_ejected_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    /// Requests awaiting a response from one endpoint.
    pub max_concurrent: usize,
    /// Requests waiting for a connection to one endpoint.
    pub max_pending: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitTarget {
    pub service: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultPolicy {
    /// Only requests sent to endpoints in this locality; empty = all.
    pub locality: String,
    pub delay_ms: u64,
    pub delay_percent: f64,
    /// The status an aborted request gets.
    pub abort_status: u16,
    pub abort_percent: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            budget_percent: 20.0,
            min_retries_per_second: 10,
            on_status: vec![502, 503, 504],
            on_grpc: vec![14],
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Default for OutlierPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejected_percent: 50,
        }
    }
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
            max_pending: 256,
        }
    }
}

/// The default route timeout.
pub fn default_timeout_ms() -> u64 {
    15_000
}

impl ServiceConfig {
    /// Every policy value that cannot work, each prefixed with `at`.
    pub(crate) fn policy_problems(&self, at: &str, problems: &mut Vec<String>) {
        let r = &self.retry;
        if !(0.0..=1000.0).contains(&r.budget_percent) {
            problems.push(format!(
                "{at}: retry.budget_percent must be within 0..=1000"
            ));
        }
        if let Some(status) = r.on_status.iter().find(|s| !(100..=599).contains(*s)) {
            problems.push(format!(
                "{at}: retry.on_status {status} is not an HTTP status"
            ));
        }
        if let Some(code) = r.on_grpc.iter().find(|c| **c > 16) {
            problems.push(format!(
                "{at}: retry.on_grpc {code} is not a gRPC code (0..=16)"
            ));
        }
        let o = &self.outlier;
        if o.consecutive_failures > 0
            && (o.base_ejection_ms == 0 || o.max_ejection_ms < o.base_ejection_ms)
        {
            problems.push(format!(
                "{at}: outlier.base_ejection_ms must be above 0 and at most max_ejection_ms"
            ));
        }
        if o.max_ejected_percent > 100 {
            problems.push(format!(
                "{at}: outlier.max_ejected_percent must be at most 100"
            ));
        }
        if self.breaker.max_concurrent == 0 || self.breaker.max_pending == 0 {
            problems.push(format!(
                "{at}: breaker.max_concurrent and breaker.max_pending must be above 0"
            ));
        }
        if !self.split.is_empty() && self.split.iter().all(|t| t.weight == 0) {
            problems.push(format!("{at}: split weights must not all be 0"));
        }
        for (i, fault) in self.faults.iter().enumerate() {
            for (key, percent) in [
                ("delay_percent", fault.delay_percent),
                ("abort_percent", fault.abort_percent),
            ] {
                if !(0.0..=100.0).contains(&percent) {
                    problems.push(format!("{at}: faults[{i}].{key} must be within 0..=100"));
                }
            }
            if fault.abort_percent > 0.0 && !(200..=599).contains(&fault.abort_status) {
                problems.push(format!(
                    "{at}: faults[{i}].abort_status must be an HTTP status (200..=599)"
                ));
            }
        }
    }
}
