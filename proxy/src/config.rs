//! The proxy's file config: who it is, where it listens, where it reports,
//! and the services it can call until the control plane's watch stream
//! says otherwise. Parsed once, every problem reported together.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshtwin_model::config_file::{ConfigFile, ConfigProblems};
use meshtwin_model::spiffe::SpiffeId;
use serde::{Deserialize, Serialize};

mod policy;

pub use policy::{
    BreakerPolicy, FaultPolicy, OutlierPolicy, RetryPolicy, SplitTarget, default_timeout_ms,
};

/// Everything a proxy runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    pub identity: IdentityConfig,
    /// Where this proxy runs, e.g. `region-a`; endpoints in the same
    /// locality are preferred.
    pub locality: String,
    /// `service.instance.id` on telemetry; defaults to `<service>-<pid>`.
    pub instance: String,
    /// Threads serving traffic. One (the default, as Linkerd's sidecar)
    /// avoids cross-thread wake-ups, which cost more CPU than a sidecar's
    /// traffic usually needs; telemetry export has a thread of its own.
    pub threads: usize,
    pub control_plane: ControlPlaneConfig,
    pub telemetry: TelemetryConfig,
    pub inbound: InboundConfig,
    pub outbound: OutboundConfig,
    pub admin: AdminConfig,
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub trust_domain: String,
    pub namespace: String,
    /// This proxy's service; its identity is
    /// `spiffe://<trust_domain>/ns/<namespace>/sa/<service>`.
    pub service: String,
    /// PEM file of the CA certificates peers' certificates must chain to.
    pub trust_anchors: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneConfig {
    /// The control API (`meshtwin serve`), e.g. `http://127.0.0.1:4320`.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub enabled: bool,
    /// OTLP/gRPC endpoint of the collector.
    pub collector: String,
    /// Spans waiting for export; beyond this, new spans are dropped and
    /// counted.
    pub queue_spans: usize,
    /// Spans per export request.
    pub batch_spans: usize,
    /// Longest a span waits before its batch is sent.
    pub flush_interval_ms: u64,
    /// How often request counts and durations are exported as OTLP metrics.
    pub metrics_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Where peers' proxies connect (mTLS).
    pub listen: SocketAddr,
    /// The local app, on loopback; without it there is no inbound side.
    pub app: Option<SocketAddr>,
    /// Where opaque TCP goes, when the app serves it on another port.
    pub opaque_app: Option<SocketAddr>,
    /// Also accept plaintext (callers without a proxy). Off by default.
    pub permissive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Where the local app sends HTTP; the destination is picked by the
    /// `Host` header or `:authority`.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `/live`, `/ready` and `/metrics`; keep it on loopback.
    pub listen: SocketAddr,
}

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

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            identity: IdentityConfig::default(),
            locality: String::new(),
            instance: String::new(),
            threads: 1,
            control_plane: ControlPlaneConfig::default(),
            telemetry: TelemetryConfig::default(),
            inbound: InboundConfig::default(),
            outbound: OutboundConfig::default(),
            admin: AdminConfig::default(),
            services: Vec::new(),
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            trust_domain: "meshtwin.local".to_owned(),
            namespace: default_namespace(),
            service: String::new(),
            trust_anchors: PathBuf::new(),
        }
    }
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:4320".to_owned(),
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            collector: "http://127.0.0.1:4317".to_owned(),
            queue_spans: 8192,
            batch_spans: 512,
            flush_interval_ms: 1000,
            metrics_interval_ms: 10_000,
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4143)),
            app: None,
            opaque_app: None,
            permissive: false,
        }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            listen: loopback(4140),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: loopback(4191),
        }
    }
}

impl ProxyConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigProblems> {
        let at = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigProblems(vec![format!("cannot read {at}: {e}")]))?;
        Self::parse(&text, &at)
    }

    /// Parses and validates TOML text; `origin` prefixes every problem.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigProblems> {
        let d = Self::default();
        let mut file = ConfigFile::parse(text, &d, &["inbound.app", "inbound.opaque_app"])
            .map_err(|e| ConfigProblems(e.0.iter().map(|p| format!("{origin}: {p}")).collect()))?;
        let config = Self {
            identity: file.section("identity", d.identity),
            locality: file.section("locality", d.locality),
            instance: file.section("instance", d.instance),
            threads: file.section("threads", d.threads),
            control_plane: file.section("control_plane", d.control_plane),
            telemetry: file.section("telemetry", d.telemetry),
            inbound: file.section("inbound", d.inbound),
            outbound: file.section("outbound", d.outbound),
            admin: file.section("admin", d.admin),
            services: file.section("services", d.services),
        };
        file.finish(origin)?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigProblems(
                problems.iter().map(|p| format!("{origin}: {p}")).collect(),
            ))
        }
    }

    /// This proxy's SPIFFE ID.
    pub fn spiffe_id(&self) -> Result<SpiffeId, String> {
        let i = &self.identity;
        SpiffeId::new(&i.trust_domain, &i.namespace, &i.service).map_err(|e| e.to_string())
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.identity.service.is_empty() {
            problems.push(
                "identity.service: required (the name of the service this proxy fronts)".to_owned(),
            );
        } else if let Err(e) = self.spiffe_id() {
            problems.push(format!("identity: {e}"));
        }
        if self.identity.trust_anchors.as_os_str().is_empty() {
            problems.push("identity.trust_anchors: required (PEM file of the mesh CA, e.g. <data-dir>/ca.pem of `meshtwin serve`)".to_owned());
        }
        for (key, url) in [
            ("control_plane.address", &self.control_plane.address),
            ("telemetry.collector", &self.telemetry.collector),
        ] {
            if url
                .parse::<http::Uri>()
                .map_or(true, |u| u.scheme().is_none() || u.authority().is_none())
            {
                problems.push(format!(
                    "{key}: `{url}` is not a URL like http://127.0.0.1:4317"
                ));
            }
        }
        if !(1..=256).contains(&self.threads) {
            problems.push(format!("threads: {} is not within 1..=256", self.threads));
        }
        let t = &self.telemetry;
        if t.queue_spans == 0
            || t.batch_spans == 0
            || t.flush_interval_ms == 0
            || t.metrics_interval_ms == 0
        {
            problems.push(
                "telemetry: queue_spans, batch_spans, flush_interval_ms and metrics_interval_ms must be above 0"
                    .to_owned(),
            );
        }
        if let Some(app) = self.inbound.app
            && !app.ip().is_loopback()
        {
            problems.push(format!(
                "inbound.app: {app} is not on loopback; the proxy forwards only to its own app"
            ));
        }
        self.service_problems(&mut problems);
        problems
    }

    fn service_problems(&self, problems: &mut Vec<String>) {
        let mut hosts = HashSet::new();
        let mut ports = HashSet::new();
        for (i, service) in self.services.iter().enumerate() {
            let at = format!("services[{i}] ({})", service.name);
            if let Err(e) = SpiffeId::new(
                &self.identity.trust_domain,
                &service.namespace,
                &service.name,
            ) {
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
            service.policy_problems(&at, problems);
            for target in &service.split {
                if !self.services.iter().any(|s| s.name == target.service) {
                    problems.push(format!(
                        "{at}: split target `{}` is not a service here",
                        target.service
                    ));
                }
            }
        }
    }
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

#[cfg(test)]
mod tests;
