//! Where outbound requests go: destination services by host name or by
//! local port, each with its endpoints and their connection pools.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshtwin_model::spiffe::SpiffeId;

use crate::config::{Protocol, ProxyConfig, service_hosts};
use crate::pool::Pool;

/// One instance of a destination service (its inbound proxy).
pub struct Endpoint {
    pub address: SocketAddr,
    pub locality: String,
    pub pool: Pool,
}

pub struct Destination {
    pub name: String,
    /// The identity its endpoints must prove.
    pub id: SpiffeId,
    pub protocol: Protocol,
    pub endpoints: Vec<Arc<Endpoint>>,
    /// The endpoints in this proxy's locality, or all when none are.
    preferred: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
}

impl Destination {
    /// The next endpoint, round robin over the preferred ones.
    pub fn pick(&self) -> Option<Arc<Endpoint>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.preferred.len();
        (count > 0).then(|| self.preferred[turn % count].clone())
    }
}

#[derive(Default)]
pub struct Routes {
    by_host: HashMap<String, Arc<Destination>>,
    /// Services with a dedicated local port.
    pub by_port: Vec<(u16, Arc<Destination>)>,
}

impl Routes {
    pub fn from_config(config: &ProxyConfig) -> Result<Self, String> {
        let mut routes = Self::default();
        for service in &config.services {
            let id = SpiffeId::new(
                &config.identity.trust_domain,
                &service.namespace,
                &service.name,
            )
            .map_err(|e| e.to_string())?;
            let endpoints: Vec<Arc<Endpoint>> = service
                .endpoints
                .iter()
                .map(|e| {
                    Arc::new(Endpoint {
                        address: e.address,
                        locality: e.locality.clone(),
                        pool: Pool::default(),
                    })
                })
                .collect();
            let local: Vec<Arc<Endpoint>> = endpoints
                .iter()
                .filter(|e| e.locality == config.locality)
                .cloned()
                .collect();
            let preferred = if local.is_empty() {
                endpoints.clone()
            } else {
                local
            };
            let destination = Arc::new(Destination {
                name: service.name.clone(),
                id,
                protocol: service.protocol,
                endpoints,
                preferred,
                next: AtomicUsize::new(0),
            });
            if service.protocol == Protocol::Http {
                for host in service_hosts(service) {
                    routes.by_host.insert(host, destination.clone());
                }
            }
            if let Some(port) = service.port {
                routes.by_port.push((port, destination));
            }
        }
        Ok(routes)
    }

    pub fn by_host(&self, host: &str) -> Option<&Arc<Destination>> {
        self.by_host.get(host)
    }
}
