//! Where a proxy's outbound traffic may go and how it is called: the
//! services, their endpoints by locality and priority, and per-route
//! policy (timeouts, retries, ejection, breakers, split, faults). The same
//! types are read from a proxy's own file, from `meshtwin serve`'s mesh
//! file, and carried on the control API's watch stream, so there is one
//! schema for all three.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::spiffe::SpiffeId;

mod overrides;
mod policy;

pub use overrides::{MeshRoutes, Override};
pub use policy::{
    BreakerPolicy, FaultPolicy, OutlierPolicy, RetryPolicy, SplitTarget, default_timeout_ms,
};

/// A destination service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// A local outbound port dedicated to this service (needed for `tcp`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Host names that route here; `name` and `name.namespace` always do.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Longest wait for response headers, retries included; 0 = none.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub outlier: OutlierPolicy,
    #[serde(default)]
    pub breaker: BreakerPolicy,
    /// Send this route's traffic to these services by weight instead.
    #[serde(default)]
    pub split: Vec<SplitTarget>,
    /// Chaos drills: delays and aborts on a share of requests.
    #[serde(default)]
    pub faults: Vec<FaultPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1, HTTP/2 and gRPC.
    #[default]
    Http,
    /// Opaque TCP, carried byte for byte.
    Tcp,
}

/// One instance of a destination: its proxy's inbound address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub address: SocketAddr,
    #[serde(default)]
    pub locality: String,
    /// Lower is tried first; by default 0 in this proxy's locality, else 1.
    #[serde(default)]
    pub priority: Option<u32>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// Every problem with a list of services, in a trust domain.
pub fn problems(trust_domain: &str, services: &[ServiceConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut hosts = HashSet::new();
    let mut ports = HashSet::new();
    for (i, service) in services.iter().enumerate() {
        let at = format!("services[{i}] ({})", service.name);
        if let Err(e) = SpiffeId::new(trust_domain, &service.namespace, &service.name) {
            problems.push(format!("{at}: {e}"));
        }
        // Opaque TCP is routed by port only; its name is its identity.
        let routed_by_host = service.protocol == Protocol::Http;
        for host in service_hosts(service)
            .into_iter()
            .filter(|_| routed_by_host)
        {
            if !hosts.insert(host.clone()) {
                problems.push(format!("{at}: host `{host}` routes to two services"));
            }
        }
        match service.port {
            Some(0) => problems.push(format!("{at}: port must not be 0")),
            Some(port) if !ports.insert(port) => {
                problems.push(format!("{at}: port {port} is used by two services"));
            }
            None if service.protocol == Protocol::Tcp => {
                problems.push(format!("{at}: a tcp service needs a local `port`"));
            }
            _ => {}
        }
        service.policy_problems(&at, &mut problems);
        for target in &service.split {
            if !services.iter().any(|s| s.name == target.service) {
                problems.push(format!(
                    "{at}: split target `{}` is not a service here",
                    target.service
                ));
            }
        }
    }
    problems
}

/// Every host name that routes to `service`, lowercase.
pub fn service_hosts(service: &ServiceConfig) -> Vec<String> {
    let mut hosts = vec![
        service.name.to_ascii_lowercase(),
        format!("{}.{}", service.name, service.namespace).to_ascii_lowercase(),
    ];
    hosts.extend(service.hosts.iter().map(|h| h.to_ascii_lowercase()));
    hosts.dedup();
    hosts
}
