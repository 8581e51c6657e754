//! The proxy's Prometheus metrics (served on the admin port); request
//! counts and durations also go to the collector as OTLP metrics.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::telemetry::RedMetrics;

type Labels = Vec<(&'static str, String)>;

/// Request latency buckets, seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct ProxyMetrics {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    refused: Family<Labels, Counter>,
    accepted: Family<Labels, Counter>,
    tunnels: Family<Labels, Counter>,
    resilience: Family<Labels, Counter>,
    in_flight: Family<Labels, Gauge>,
    /// The same requests, for OTLP export.
    pub red: Arc<RedMetrics>,
    /// The control plane's routes version in force (0: the file's).
    pub routes_version: Gauge,
    routes_updates: Family<Labels, Counter>,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            refused: Family::default(),
            accepted: Family::default(),
            tunnels: Family::default(),
            resilience: Family::default(),
            in_flight: Family::default(),
            red: Arc::new(RedMetrics::new(&BUCKETS)),
            routes_version: Gauge::default(),
            routes_updates: Family::default(),
        }
    }
}

/// Which side of the proxy saw the traffic.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

impl ProxyMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "meshtwin_proxy_requests",
            "HTTP requests by direction, destination service and status code",
            self.requests.clone(),
        );
        registry.register(
            "meshtwin_proxy_request_duration_seconds",
            "Time to response headers, by direction and destination service",
            self.duration.clone(),
        );
        registry.register(
            "meshtwin_proxy_connections_refused",
            "Inbound connections refused, by reason (plaintext, tls_handshake, timeout)",
            self.refused.clone(),
        );
        registry.register(
            "meshtwin_proxy_connections_accepted",
            "Connections accepted, by listener (outbound, outbound_tcp, inbound) and serving thread",
            self.accepted.clone(),
        );
        registry.register(
            "meshtwin_proxy_tcp_connections",
            "Opaque TCP connections by direction and service",
            self.tunnels.clone(),
        );
        registry.register(
            "meshtwin_proxy_resilience_events",
            "Outbound resilience events by service and kind (retry, retry_budget_exhausted, ejection, ejection_spared, breaker_open, timeout, fault_delay, fault_abort)",
            self.resilience.clone(),
        );
        registry.register(
            "meshtwin_proxy_routes_version",
            "Version of the control plane's routes in force; 0 while the file's routes are used",
            self.routes_version.clone(),
        );
        registry.register(
            "meshtwin_proxy_routes_updates",
            "Routes updates by result (applied, refused, override_expired)",
            self.routes_updates.clone(),
        );
        registry.register(
            "meshtwin_proxy_outbound_in_flight",
            "Outbound requests awaiting response headers, by destination service",
            self.in_flight.clone(),
        );
    }

    /// Counts a routes update by result (applied, refused, override_expired).
    pub fn routes_update(&self, result: &'static str) {
        self.routes_updates
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    /// The in-flight gauge of calls to `service`.
    pub fn in_flight(&self, service: &str) -> Gauge {
        self.in_flight
            .get_or_create(&vec![("service", service.to_owned())])
            .clone()
    }

    pub fn request(&self, direction: Direction, service: &str, status: u16, seconds: f64) {
        self.red
            .record(direction.as_str(), service, status, seconds);
        let labels = vec![
            ("direction", direction.as_str().to_owned()),
            ("service", service.to_owned()),
        ];
        self.duration.get_or_create(&labels).observe(seconds);
        let mut labels = labels;
        labels.push(("status", status.to_string()));
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts a resilience event on calls to `service`.
    pub fn resilience(&self, service: &str, kind: &'static str) {
        self.resilience
            .get_or_create(&vec![
                ("service", service.to_owned()),
                ("kind", kind.to_owned()),
            ])
            .inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Counts a connection accepted on `listener` by the calling thread.
    pub fn accepted(&self, listener: &'static str) {
        self.accepted
            .get_or_create(&vec![
                ("listener", listener.to_owned()),
                ("thread", crate::shard::current().to_string()),
            ])
            .inc();
    }

    pub fn tunnel(&self, direction: Direction, service: &str) {
        self.tunnels
            .get_or_create(&vec![
                ("direction", direction.as_str().to_owned()),
                ("service", service.to_owned()),
            ])
            .inc();
    }
}
