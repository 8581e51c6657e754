//! Where outbound requests go: routes by host name or local port, each
//! splitting traffic over one or more destination services, each with its
//! endpoints in priority tiers, their pools, load and health, and the
//! policy they are called with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshtwin_model::spiffe::SpiffeId;
use rand::RngExt;
use tower::retry::budget::TpsBudget;

use crate::balance::Load;
use crate::config::{
    BreakerPolicy, FaultPolicy, OutlierPolicy, Protocol, ProxyConfig, RetryPolicy, ServiceConfig,
    service_hosts,
};
use crate::outlier::Health;
use crate::pool::Pool;

/// How far back the retry budget looks.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// One instance of a destination service (its inbound proxy).
pub struct Endpoint {
    pub address: SocketAddr,
    /// `address` as text, for spans.
    pub address_text: Arc<str>,
    pub locality: Arc<str>,
    pub pool: Pool,
    pub load: Load,
    pub health: Health,
}

pub struct Destination {
    pub name: Arc<str>,
    /// The identity its endpoints must prove.
    pub id: SpiffeId,
    /// `id` as text, for spans.
    pub id_text: Arc<str>,
    pub protocol: Protocol,
    pub endpoints: Vec<Arc<Endpoint>>,
    /// `endpoints` grouped by priority, lowest (most preferred) first.
    tiers: Vec<Vec<Arc<Endpoint>>>,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub budget: TpsBudget,
    pub outlier: OutlierPolicy,
    pub breaker: BreakerPolicy,
    pub faults: Vec<FaultPolicy>,
}

/// What a host name or local port leads to: destinations by weight.
pub struct Route {
    /// The service this route was declared as.
    pub name: String,
    pub protocol: Protocol,
    targets: Vec<(Arc<Destination>, u32)>,
    total_weight: u32,
}

impl Route {
    fn to(destination: Arc<Destination>) -> Self {
        Self {
            name: destination.name.to_string(),
            protocol: destination.protocol,
            targets: vec![(destination, 1)],
            total_weight: 1,
        }
    }

    /// The destination for one request, drawn by weight.
    pub fn destination(&self) -> &Arc<Destination> {
        if self.targets.len() > 1 {
            let mut ticket = rand::rng().random_range(0..self.total_weight);
            for (destination, weight) in &self.targets {
                if ticket < *weight {
                    return destination;
                }
                ticket -= weight;
            }
        }
        &self.targets[0].0
    }
}

impl Destination {
    pub fn tiers(&self) -> &[Vec<Arc<Endpoint>>] {
        &self.tiers
    }

    /// How many endpoints are ejected right now.
    pub fn ejected(&self, now: Instant) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.health.is_ejected(now))
            .count()
    }

    /// `previous` holds endpoints of the routes being replaced; one with
    /// the same address and locality keeps its pool, load and health.
    fn build(
        scope: &Scope<'_>,
        service: &ServiceConfig,
        previous: Option<&Destination>,
    ) -> Result<Self, String> {
        let id = SpiffeId::new(scope.trust_domain, &service.namespace, &service.name)
            .map_err(|e| e.to_string())?;
        let mut priced: Vec<(u32, Arc<Endpoint>)> = service
            .endpoints
            .iter()
            .map(|e| {
                let kept = previous.and_then(|p| {
                    p.endpoints
                        .iter()
                        .find(|old| old.address == e.address && *old.locality == *e.locality)
                        .cloned()
                });
                let endpoint = kept.unwrap_or_else(|| {
                    Arc::new(Endpoint {
                        address: e.address,
                        address_text: e.address.to_string().into(),
                        locality: e.locality.as_str().into(),
                        pool: Pool::default(),
                        load: Load::default(),
                        health: Health::default(),
                    })
                });
                let local = e.locality == scope.locality;
                (e.priority.unwrap_or(if local { 0 } else { 1 }), endpoint)
            })
            .collect();
        priced.sort_by_key(|(priority, _)| *priority);
        let mut tiers: Vec<Vec<Arc<Endpoint>>> = Vec::new();
        let mut last = None;
        for (priority, endpoint) in &priced {
            if last != Some(*priority) {
                tiers.push(Vec::new());
                last = Some(*priority);
            }
            tiers.last_mut().expect("a tier").push(endpoint.clone());
        }
        let endpoints = service
            .endpoints
            .iter()
            .filter_map(|e| {
                priced
                    .iter()
                    .find(|(_, p)| p.address == e.address && *p.locality == *e.locality)
                    .map(|(_, p)| p.clone())
            })
            .collect();
        let retry = &service.retry;
        Ok(Self {
            name: service.name.as_str().into(),
            id_text: id.to_string().into(),
            id,
            protocol: service.protocol,
            endpoints,
            tiers,
            timeout: (service.timeout_ms > 0).then(|| Duration::from_millis(service.timeout_ms)),
            budget: TpsBudget::new(
                BUDGET_WINDOW,
                retry.min_retries_per_second.min(1_000_000),
                retry.budget_percent / 100.0,
            ),
            retry: retry.clone(),
            outlier: service.outlier.clone(),
            breaker: service.breaker.clone(),
            faults: service.faults.clone(),
        })
    }
}

/// What endpoints' priorities are relative to.
pub struct Scope<'a> {
    pub trust_domain: &'a str,
    /// This proxy's locality: its endpoints default to priority 0.
    pub locality: &'a str,
}

#[derive(Default)]
pub struct Routes {
    destinations: Vec<Arc<Destination>>,
    by_host: HashMap<String, Arc<Route>>,
    /// Services with a dedicated local port.
    pub by_port: Vec<(u16, Arc<Route>)>,
}

impl Routes {
    pub fn from_config(config: &ProxyConfig) -> Result<Self, String> {
        let scope = Scope {
            trust_domain: &config.identity.trust_domain,
            locality: &config.locality,
        };
        Self::build(&scope, &config.services, None)
    }

    /// Routes for `services`, keeping the state of endpoints that
    /// `previous` already had.
    pub fn build(
        scope: &Scope<'_>,
        services: &[ServiceConfig],
        previous: Option<&Routes>,
    ) -> Result<Self, String> {
        // One destination per entry: a name may appear twice, as an HTTP
        // service and as a TCP port of the same identity.
        let destinations: Vec<Arc<Destination>> = services
            .iter()
            .map(|service| {
                let old = previous.and_then(|p| {
                    p.destinations
                        .iter()
                        .find(|d| *d.name == *service.name && d.protocol == service.protocol)
                });
                Destination::build(scope, service, old.map(AsRef::as_ref)).map(Arc::new)
            })
            .collect::<Result<_, _>>()?;
        let http_destination = |name: &str| {
            destinations
                .iter()
                .find(|d| &*d.name == name && d.protocol == Protocol::Http)
                .cloned()
        };
        let mut routes = Self {
            destinations: destinations.clone(),
            ..Self::default()
        };
        for (service, destination) in services.iter().zip(&destinations) {
            let route = if service.split.is_empty() {
                Route::to(destination.clone())
            } else {
                let targets: Vec<(Arc<Destination>, u32)> = service
                    .split
                    .iter()
                    .filter(|t| t.weight > 0)
                    .map(|t| {
                        http_destination(&t.service)
                            .map(|d| (d, t.weight))
                            .ok_or_else(|| format!("split target `{}` is unknown", t.service))
                    })
                    .collect::<Result<_, _>>()?;
                let total_weight = targets.iter().map(|(_, w)| w).sum();
                Route {
                    name: service.name.clone(),
                    protocol: service.protocol,
                    targets,
                    total_weight,
                }
            };
            let route = Arc::new(route);
            if service.protocol == Protocol::Http {
                for host in service_hosts(service) {
                    routes.by_host.insert(host, route.clone());
                }
            }
            if let Some(port) = service.port {
                routes.by_port.push((port, route));
            }
        }
        Ok(routes)
    }

    pub fn by_host(&self, host: &str) -> Option<&Arc<Route>> {
        self.by_host.get(host)
    }

    pub fn by_port(&self, port: u16) -> Option<&Arc<Route>> {
        self.by_port
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, r)| r)
    }
}
