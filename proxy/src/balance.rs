//! Which endpoint gets a request: the lowest priority tier that has a
//! healthy endpoint (local first), then the cheaper of two random picks,
//! costed by peak-EWMA latency times requests in flight (Linkerd's
//! balancer). A request never goes to an endpoint whose breaker is full.

mod load;

use std::sync::Arc;
use std::time::Instant;

use rand::RngExt;

pub use load::{InFlight, Load};

use crate::config::BreakerPolicy;
use crate::routes::{Destination, Endpoint};

/// The balancer's answer for one attempt.
pub enum Pick {
    Endpoint(Arc<Endpoint>),
    /// The service has no endpoints at all.
    NoEndpoints,
    /// Every candidate is at its breaker's limit: answer 503 at once.
    BreakerOpen,
}

/// Chooses an endpoint of `destination` that is not in `tried` (the
/// endpoints earlier attempts of this request used) when there is one.
pub fn pick(destination: &Destination, tried: &[Arc<Endpoint>], now: Instant) -> Pick {
    if destination.endpoints.is_empty() {
        return Pick::NoEndpoints;
    }
    let untried = |e: &&Arc<Endpoint>| !tried.iter().any(|t| Arc::ptr_eq(t, e));
    for tier in destination.tiers() {
        let healthy: Vec<&Arc<Endpoint>> = tier
            .iter()
            .filter(|e| !e.health.is_ejected(now))
            .filter(untried)
            .collect();
        if !healthy.is_empty() {
            return cheaper_of_two(&healthy, &destination.breaker, now);
        }
    }
    // Every endpoint is ejected or already tried: rather than refuse, use
    // them all (as Envoy's panic threshold does), untried ones first.
    let untried: Vec<&Arc<Endpoint>> = destination.endpoints.iter().filter(untried).collect();
    if untried.is_empty() {
        let all: Vec<&Arc<Endpoint>> = destination.endpoints.iter().collect();
        cheaper_of_two(&all, &destination.breaker, now)
    } else {
        cheaper_of_two(&untried, &destination.breaker, now)
    }
}

fn cheaper_of_two(candidates: &[&Arc<Endpoint>], breaker: &BreakerPolicy, now: Instant) -> Pick {
    let open: Vec<&Arc<Endpoint>> = candidates
        .iter()
        .copied()
        .filter(|e| !is_full(e, breaker))
        .collect();
    let chosen = match open.len() {
        0 => return Pick::BreakerOpen,
        1 => open[0],
        n => {
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            if open[b].load.cost(now) < open[a].load.cost(now) {
                open[b]
            } else {
                open[a]
            }
        }
    };
    Pick::Endpoint(chosen.clone())
}

fn is_full(endpoint: &Endpoint, breaker: &BreakerPolicy) -> bool {
    endpoint.load.in_flight() >= breaker.max_concurrent
        || endpoint.pool.pending() >= breaker.max_pending
}

#[cfg(test)]
mod tests;
