//! What the control plane sends a proxy, and temporary overrides: a
//! failover that moves a service's traffic to another locality, or a drill
//! fault, each with an expiry so that a control plane that dies never pins
//! traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FaultPolicy, ServiceConfig};

/// The services a proxy may call and the overrides in force; one version
/// of the control API's watch stream (carried as JSON).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshRoutes {
    pub services: Vec<ServiceConfig>,
    pub overrides: Vec<Override>,
}

/// A temporary change to one service's routing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Override {
    pub service: String,
    /// Milliseconds since the Unix epoch; from then on it no longer applies.
    pub expires_unix_ms: u64,
    /// Locality → priority (lower is tried first), replacing the priority
    /// of that locality's endpoints: `{ "region-b" = 0, "region-a" = 1 }`
    /// fails over to region-b.
    pub locality_priorities: BTreeMap<String, u32>,
    /// Replaces the service's faults while in force.
    pub faults: Option<Vec<FaultPolicy>>,
    /// Why, for people reading the config (e.g. the rule that set it).
    pub reason: String,
}

impl MeshRoutes {
    /// The services with every override still in force at `now_ms`
    /// applied, and when the next of those expires.
    pub fn effective(&self, now_ms: u64) -> (Vec<ServiceConfig>, Option<u64>) {
        let mut services = self.services.clone();
        let active: Vec<&Override> = self
            .overrides
            .iter()
            .filter(|o| o.expires_unix_ms > now_ms)
            .collect();
        for o in &active {
            for service in services.iter_mut().filter(|s| s.name == o.service) {
                for endpoint in &mut service.endpoints {
                    if let Some(priority) = o.locality_priorities.get(&endpoint.locality) {
                        endpoint.priority = Some(*priority);
                    }
                }
                if let Some(faults) = &o.faults {
                    service.faults = faults.clone();
                }
            }
        }
        let next_expiry = active.iter().map(|o| o.expires_unix_ms).min();
        (services, next_expiry)
    }

    /// Every problem with these routes, in a trust domain.
    pub fn problems(&self, trust_domain: &str) -> Vec<String> {
        let mut problems = super::problems(trust_domain, &self.services);
        for (i, o) in self.overrides.iter().enumerate() {
            if !self.services.iter().any(|s| s.name == o.service) {
                problems.push(format!(
                    "overrides[{i}]: service `{}` is not in services",
                    o.service
                ));
            }
            if o.expires_unix_ms == 0 {
                problems.push(format!(
                    "overrides[{i}]: expires_unix_ms is required (an override never pins traffic for ever)"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::EndpointConfig;

    fn payments() -> ServiceConfig {
        let endpoint = |port: u16, locality: &str| EndpointConfig {
            address: ([127, 0, 0, 1], port).into(),
            locality: locality.to_owned(),
            priority: None,
        };
        let mut service: ServiceConfig = serde_json::from_str(r#"{"name":"payments"}"#).unwrap();
        service.endpoints = vec![endpoint(1, "region-a"), endpoint(2, "region-b")];
        service
    }

    #[test]
    fn an_override_applies_until_it_expires() {
        let routes = MeshRoutes {
            services: vec![payments()],
            overrides: vec![Override {
                service: "payments".to_owned(),
                expires_unix_ms: 1_000,
                locality_priorities: [("region-b".to_owned(), 0), ("region-a".to_owned(), 1)]
                    .into(),
                faults: Some(Vec::new()),
                reason: "failover".to_owned(),
            }],
        };
        assert!(routes.problems("meshtwin.local").is_empty());
        let (during, next) = routes.effective(999);
        assert_eq!(next, Some(1_000));
        let priorities: Vec<_> = during[0].endpoints.iter().map(|e| e.priority).collect();
        assert_eq!(priorities, [Some(1), Some(0)]);
        let (after, next) = routes.effective(1_000);
        assert_eq!(next, None);
        assert!(after[0].endpoints.iter().all(|e| e.priority.is_none()));
    }

    #[test]
    fn an_override_without_expiry_or_service_is_refused() {
        let routes = MeshRoutes {
            services: vec![payments()],
            overrides: vec![Override {
                service: "ledger".to_owned(),
                ..Override::default()
            }],
        };
        let problems = routes.problems("meshtwin.local");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
