//! Service topologies as data: services, where they run, whom they call
//! during which operation, and the latencies, capacities and error rates
//! the simulator draws from. The bundled files live in
//! `datasets/topologies/`; [`library`] lists them by name.

pub mod library;
pub mod synthetic;
mod validate;

use serde::Deserialize;

pub use validate::TopologyError;

/// How callers reach a service: the attributes its spans carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Grpc,
    /// Thrift RPC (`rpc.system` = `apache_thrift`), as DeathStarBench uses.
    Thrift,
    Http,
}

/// What a node is. Only services report spans; the others are named by
/// their callers' CLIENT (or PRODUCER) spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Instrumented code: reports SERVER spans and spans for its calls.
    #[default]
    Service,
    /// A database (`db.system.name` = `system`).
    Database,
    /// A cache such as redis or memcached.
    Cache,
    /// A message broker that asynchronous calls go through.
    Queue,
}

impl ServiceKind {
    /// Datastores and brokers make no calls and report no spans.
    pub fn is_backend(self) -> bool {
        self != Self::Service
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub kind: ServiceKind,
    /// `db.system.name` or `messaging.system` for backends.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    /// Instances per region.
    #[serde(default = "one")]
    pub instances: u32,
    /// The regions it runs in; all of the topology's when absent.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Requests one instance handles at once; more wait in its queue.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// CPUs per instance: own work beyond this many at once waits.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Resident memory of an idle instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: f64,
    /// Median own work per request, in milliseconds.
    #[serde(default)]
    pub self_ms: f64,
    /// Log-normal shape of the own work.
    #[serde(default = "default_sigma")]
    pub sigma: f64,
    /// Share of requests that fail on their own.
    #[serde(default)]
    pub error_rate: f64,
    /// False for a service without tracing: it reports no spans and does
    /// not pass trace context on.
    #[serde(default = "yes")]
    pub instrumented: bool,
}

/// When a caller makes a call relative to its other calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallMode {
    /// After the previous call has returned.
    #[default]
    Sequential,
    /// Together with the adjacent parallel calls; the caller waits for all.
    Parallel,
    /// Published to the `via` queue; the caller does not wait for the
    /// consumer, whose CONSUMER span links to the PRODUCER span.
    Async,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub from: String,
    pub to: String,
    pub operation: String,
    /// The caller's operation during which this call is made; every
    /// operation of the caller when absent.
    #[serde(default)]
    pub within: Option<String>,
    /// Share of the caller's requests that make this call.
    #[serde(default = "certain")]
    pub probability: f64,
    /// Calls per request (fan-out): `count`, or uniformly `count..=count_max`.
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub count_max: Option<u32>,
    /// For calls from the entry: the request mix. Each entry request makes
    /// one of them, chosen by weight.
    #[serde(default = "certain")]
    pub weight: f64,
    #[serde(default)]
    pub mode: CallMode,
    /// The queue an asynchronous call goes through.
    #[serde(default)]
    pub via: Option<String>,
    /// The caller gives up after this long.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: f64,
    /// Further attempts after a failure or timeout.
    #[serde(default)]
    pub retries: u32,
    /// False where the caller's code drops the trace context, so the
    /// callee's spans start a new trace.
    #[serde(default = "yes")]
    pub propagates: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub name: String,
    pub namespace: String,
    pub regions: Vec<String>,
    /// The client every request starts at (it only makes calls).
    pub entry: String,
    /// Entry requests per second, across all regions.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Median extra one-way delay of a call between regions.
    #[serde(default = "default_cross_region_ms")]
    pub cross_region_ms: f64,
    pub services: Vec<ServiceSpec>,
    pub calls: Vec<CallSpec>,
}

fn default_version() -> String {
    "v1".to_owned()
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn certain() -> f64 {
    1.0
}

fn default_concurrency() -> u32 {
    64
}

fn default_cpus() -> u32 {
    2
}

fn default_memory_mb() -> f64 {
    256.0
}

fn default_sigma() -> f64 {
    0.5
}

fn default_timeout_ms() -> f64 {
    1_000.0
}

fn default_rate() -> f64 {
    20.0
}

fn default_cross_region_ms() -> f64 {
    8.0
}

impl Topology {
    /// Parses and validates a topology file.
    pub fn from_toml(text: &str) -> Result<Self, TopologyError> {
        let topology: Self =
            toml::from_str(text).map_err(|e| TopologyError(vec![e.to_string()]))?;
        topology.validate()?;
        Ok(topology)
    }

    /// The Online Boutique topology shipped with meshtwin.
    pub fn online_boutique() -> Self {
        library::bundled("online-boutique").expect("the bundled topology is valid")
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Calls made by `service`, in file order.
    pub fn calls_from<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a CallSpec> {
        self.calls.iter().filter(move |c| c.from == service)
    }

    /// The regions `service` runs in.
    pub fn regions_of<'a>(&'a self, service: &'a ServiceSpec) -> &'a [String] {
        service.regions.as_deref().unwrap_or(&self.regions)
    }
}

#[cfg(test)]
mod tests;
