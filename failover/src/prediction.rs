//! A fail-over's effect, worked out from what the twin has observed:
//! which edges move, how much of the service's traffic, and whether the
//! target locality has served that much before.

use crate::event::{MovedEdge, Prediction};
use crate::observed::Observed;
use crate::rule::Rule;

pub(crate) fn predict(rule: &Rule, observed: &Observed) -> Prediction {
    let from = observed.scope(&rule.service, &rule.locality);
    let to_locality = rule.shift_traffic.as_ref().map(|s| s.to_locality.clone());
    let target = to_locality
        .as_deref()
        .and_then(|to| observed.scope(&rule.service, to));
    let moved = from.map_or(0.0, |s| s.rate_per_second);
    let total = observed.service_rate(&rule.service);
    let (target_rate, target_peak) =
        target.map_or((0.0, 0.0), |t| (t.rate_per_second, t.peak_rate_per_second));
    Prediction {
        service: rule.service.clone(),
        from_locality: rule.locality.clone(),
        to_locality,
        moved_rate_per_second: moved,
        moved_share: if total > 0.0 { moved / total } else { 0.0 },
        edges: from
            .map(|s| {
                s.callers
                    .iter()
                    .map(|(caller, rate)| MovedEdge {
                        caller: caller.clone(),
                        rate_per_second: *rate,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        target_rate_per_second: target_rate,
        target_peak_rate_per_second: target_peak,
        target_has_headroom: target.is_some() && target_rate + moved <= target_peak,
    }
}
