//! The proxy's file config: who it is, where it listens, where it reports,
//! and the services it can call until the control plane's watch stream
//! says otherwise. Parsed once, every problem reported together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshtwin_model::config_file::{ConfigFile, ConfigProblems};
use meshtwin_model::spiffe::SpiffeId;
use serde::{Deserialize, Serialize};

pub use meshtwin_model::routing::{
    self, BreakerPolicy, EndpointConfig, FaultPolicy, OutlierPolicy, Protocol, RetryPolicy,
    ServiceConfig, SplitTarget, service_hosts,
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
    /// Threads serving traffic, each with its own listening sockets and
    /// connections (see [`crate::shard`]); telemetry export has a thread
    /// of its own. Defaults to [`default_threads`].
    pub threads: usize,
    /// How the serving threads ask the kernel to schedule them; see
    /// [`Scheduling`].
    pub scheduling: Scheduling,
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

/// The Linux scheduling policy of the threads that serve traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduling {
    /// `SCHED_BATCH` (the default): when a packet wakes the proxy, it does
    /// not preempt the process that sent it, which is about to wait
    /// anyway; the proxy runs a moment later, without the extra context
    /// switches. On an idle machine this cuts the proxy's CPU per request
    /// by about a fifth (see BENCHMARKS.md). The cost: on a core kept busy
    /// by another process, the proxy waits for that process's time slice
    /// (a few ms) instead of preempting it.
    #[default]
    Batch,
    /// `SCHED_OTHER`, the kernel's default: wake-ups preempt.
    Normal,
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

/// Two serving threads, or one on a one-core machine (or container
/// quota): with two, a thread that waits for its core holds up only its
/// own connections, at the same CPU per request (ADR 004). More suit a
/// sidecar serving many thousands of requests per second.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().min(2))
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
            threads: default_threads(),
            scheduling: Scheduling::default(),
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
            scheduling: file.section("scheduling", d.scheduling),
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
        problems.extend(routing::problems(
            &self.identity.trust_domain,
            &self.services,
        ));
        problems
    }
}

#[cfg(test)]
mod tests;
