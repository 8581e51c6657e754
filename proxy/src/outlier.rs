//! Outlier ejection: an endpoint that fails (5xx, connect failure,
//! timeout) several times in a row is taken out of rotation for a while,
//! longer each time it is ejected again, but never so many endpoints that
//! more than the allowed share of a service is out at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::OutlierPolicy;

#[derive(Default)]
pub struct Health(Mutex<State>);

#[derive(Default)]
struct State {
    consecutive_failures: u32,
    /// Ejections since the endpoint last stayed healthy for a while.
    ejections: u32,
    ejected_until: Option<Instant>,
}

/// What an outcome did to the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Kept,
    Ejected(Duration),
    /// It should have been ejected, but the share limit was reached.
    Spared,
}

impl Health {
    pub fn is_ejected(&self, now: Instant) -> bool {
        let state = self.0.lock().expect("health lock");
        state.ejected_until.is_some_and(|until| now < until)
    }

    pub fn succeeded(&self, policy: &OutlierPolicy, now: Instant) {
        let mut state = self.0.lock().expect("health lock");
        state.consecutive_failures = 0;
        let base = Duration::from_millis(policy.base_ejection_ms);
        if state.ejected_until.is_some_and(|until| now >= until + base) {
            state.ejections = 0;
            state.ejected_until = None;
        }
    }

    /// Records a failure; `ejected_now` counts the service's endpoints
    /// currently ejected and `total` all of them.
    pub fn failed(
        &self,
        policy: &OutlierPolicy,
        now: Instant,
        ejected_now: usize,
        total: usize,
    ) -> Verdict {
        let mut state = self.0.lock().expect("health lock");
        if policy.consecutive_failures == 0 || state.ejected_until.is_some_and(|u| now < u) {
            return Verdict::Kept;
        }
        state.consecutive_failures += 1;
        if state.consecutive_failures < policy.consecutive_failures {
            return Verdict::Kept;
        }
        let allowed = (total * policy.max_ejected_percent as usize / 100).max(1);
        if ejected_now >= allowed {
            return Verdict::Spared;
        }
        state.consecutive_failures = 0;
        state.ejections += 1;
        let length = Duration::from_millis(
            policy
                .base_ejection_ms
                .saturating_mul(u64::from(state.ejections))
                .min(policy.max_ejection_ms),
        );
        state.ejected_until = Some(now + length);
        Verdict::Ejected(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_failures: 3,
            base_ejection_ms: 1000,
            max_ejection_ms: 2500,
            max_ejected_percent: 50,
        }
    }

    #[test]
    fn consecutive_failures_eject_for_growing_then_capped_lengths() {
        let (health, p, t0) = (Health::default(), policy(), Instant::now());
        let fail = |at| health.failed(&p, at, 0, 4);
        assert_eq!(fail(t0), Verdict::Kept);
        health.succeeded(&p, t0);
        assert_eq!(fail(t0), Verdict::Kept);
        assert_eq!(fail(t0), Verdict::Kept);
        assert_eq!(fail(t0), Verdict::Ejected(Duration::from_secs(1)));
        assert!(health.is_ejected(t0 + Duration::from_millis(999)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(!health.is_ejected(t1));
        for _ in 0..2 {
            assert_eq!(fail(t1), Verdict::Kept);
        }
        assert_eq!(fail(t1), Verdict::Ejected(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        for _ in 0..2 {
            fail(t2);
        }
        assert_eq!(fail(t2), Verdict::Ejected(Duration::from_millis(2500)));
    }

    #[test]
    fn a_long_healthy_spell_forgets_past_ejections() {
        let (health, p, t0) = (Health::default(), policy(), Instant::now());
        for _ in 0..3 {
            health.failed(&p, t0, 0, 4);
        }
        health.succeeded(&p, t0 + Duration::from_secs(3));
        for _ in 0..2 {
            health.failed(&p, t0 + Duration::from_secs(3), 0, 4);
        }
        let verdict = health.failed(&p, t0 + Duration::from_secs(3), 0, 4);
        assert_eq!(verdict, Verdict::Ejected(Duration::from_secs(1)));
    }

    #[test]
    fn the_share_limit_spares_endpoints_but_one_may_always_go() {
        let (health, p, t0) = (Health::default(), policy(), Instant::now());
        for _ in 0..2 {
            health.failed(&p, t0, 2, 4);
        }
        assert_eq!(health.failed(&p, t0, 2, 4), Verdict::Spared);
        assert!(!health.is_ejected(t0));
        let alone = Health::default();
        for _ in 0..2 {
            alone.failed(&p, t0, 0, 1);
        }
        assert!(matches!(alone.failed(&p, t0, 0, 1), Verdict::Ejected(_)));
    }
}
