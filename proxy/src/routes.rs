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
    next: AtomicUsize,
}

impl Destination {
    /// The next endpoint, round robin, preferring endpoints in `locality`.
    pub fn pick(&self, locality: &str) -> Option<Arc<Endpoint>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let local: Vec<&Arc<Endpoint>> = self
            .endpoints
            .iter()
            .filter(|e| e.locality == locality)
            .collect();
        let choice = if local.is_empty() {
            self.endpoints.get(turn % self.endpoints.len().max(1))
        } else {
            Some(local[turn % local.len()])
        };
        choice.cloned()
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
            let destination = Arc::new(Destination {
                name: service.name.clone(),
                id,
                protocol: service.protocol,
                endpoints: service
                    .endpoints
                    .iter()
                    .map(|e| {
                        Arc::new(Endpoint {
                            address: e.address,
                            locality: e.locality.clone(),
                            pool: Pool::default(),
                        })
                    })
                    .collect(),
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
