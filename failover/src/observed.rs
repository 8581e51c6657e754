//! What the engine reads from the twin on each tick: per service and
//! locality, the signals rules test and the traffic a fail-over would
//! move.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rule::{Condition, Signal};

/// One service in one locality, now.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ScopeSignals {
    /// `None` without requests in the window.
    pub error_ratio: Option<f64>,
    pub p99_ms: Option<f64>,
    pub rate_per_second: f64,
    /// The highest rate the twin has seen this scope serve: the capacity
    /// it has shown.
    pub peak_rate_per_second: f64,
    pub anomaly: bool,
    pub incident: bool,
    /// Callers and their rate to this scope, requests per second.
    pub callers: BTreeMap<String, f64>,
}

/// Every scope the twin knows, by (service, locality).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub scopes: BTreeMap<(String, String), ScopeSignals>,
}

impl Observed {
    pub fn scope(&self, service: &str, locality: &str) -> Option<&ScopeSignals> {
        self.scopes.get(&(service.to_owned(), locality.to_owned()))
    }

    /// The service's rate over every locality.
    pub fn service_rate(&self, service: &str) -> f64 {
        self.scopes
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, signals)| signals.rate_per_second)
            .sum()
    }

    /// A locality as a builder would add it (tests, adapters).
    pub fn insert(&mut self, service: &str, locality: &str, signals: ScopeSignals) {
        self.scopes
            .insert((service.to_owned(), locality.to_owned()), signals);
    }
}

/// The value a condition compares, if the scope has one.
pub fn value(signals: &ScopeSignals, signal: Signal) -> Option<f64> {
    match signal {
        Signal::ErrorRatio => signals.error_ratio,
        Signal::P99Ms => signals.p99_ms,
        Signal::RatePerSecond => Some(signals.rate_per_second),
        Signal::Anomaly => Some(f64::from(u8::from(signals.anomaly))),
        Signal::Incident => Some(f64::from(u8::from(signals.incident))),
    }
}

/// Whether `condition` holds on `signals` at this instant; unknown values
/// (no requests, no such scope) never hold.
pub fn holds(condition: &Condition, signals: Option<&ScopeSignals>) -> bool {
    let Some(value) = signals.and_then(|s| value(s, condition.signal)) else {
        return false;
    };
    if condition.signal.is_flag() {
        return condition.active == Some(value > 0.5);
    }
    match (condition.above, condition.below) {
        (Some(above), _) => value > above,
        (_, Some(below)) => value < below,
        _ => false,
    }
}
