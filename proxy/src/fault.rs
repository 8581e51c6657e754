//! Fault injection for chaos drills: a route's faults delay or abort a
//! share of its requests, optionally only those sent to one locality.

use std::time::Duration;

use http::StatusCode;
use rand::RngExt;

use crate::config::FaultPolicy;

/// What happens to one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub delay: Option<Duration>,
    pub abort: Option<StatusCode>,
}

impl Injected {
    /// The value of the span's `mesh.fault.injected`.
    pub fn label(&self) -> Option<&'static str> {
        match (self.delay.is_some(), self.abort.is_some()) {
            (false, false) => None,
            (true, false) => Some("delay"),
            (false, true) => Some("abort"),
            (true, true) => Some("delay+abort"),
        }
    }
}

/// Draws the faults for a request to an endpoint in `locality`, from the
/// first fault that applies there.
pub fn draw(faults: &[FaultPolicy], locality: &str) -> Injected {
    let Some(fault) = faults
        .iter()
        .find(|f| f.locality.is_empty() || f.locality == locality)
    else {
        return Injected::default();
    };
    let mut rng = rand::rng();
    let mut chance = |percent: f64| percent > 0.0 && rng.random_bool((percent / 100.0).min(1.0));
    Injected {
        delay: (fault.delay_ms > 0 && chance(fault.delay_percent))
            .then(|| Duration::from_millis(fault.delay_ms)),
        abort: chance(fault.abort_percent)
            .then(|| StatusCode::from_u16(fault.abort_status).ok())
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_faults_always_apply_and_scoped_ones_only_in_their_locality() {
        let faults = [FaultPolicy {
            locality: "region-a".to_owned(),
            delay_ms: 5,
            delay_percent: 100.0,
            abort_status: 503,
            abort_percent: 100.0,
        }];
        let injected = draw(&faults, "region-a");
        assert_eq!(injected.delay, Some(Duration::from_millis(5)));
        assert_eq!(injected.abort, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(injected.label(), Some("delay+abort"));
        assert_eq!(draw(&faults, "region-b"), Injected::default());
    }

    #[test]
    fn zero_percent_never_applies() {
        let faults = [FaultPolicy {
            delay_ms: 5,
            abort_status: 503,
            ..FaultPolicy::default()
        }];
        for _ in 0..1000 {
            assert_eq!(draw(&faults, "anywhere").label(), None);
        }
    }
}
