//! Service topologies as data: services, how they are reached, whom they
//! call, and the latency and error rates the simulator draws from.

use serde::Deserialize;

/// How callers reach a service: the attributes its spans carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

/// Whether a node reports its own spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Instrumented: reports SERVER spans and CLIENT spans for its calls.
    #[default]
    Service,
    /// A database: only its callers' CLIENT spans name it.
    Database,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub kind: ServiceKind,
    /// `db.system.name` for databases.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "one")]
    pub instances: u32,
    #[serde(default)]
    pub protocol: Protocol,
    /// Median own work per request, in milliseconds.
    #[serde(default)]
    pub self_ms: f64,
    /// Log-normal shape of the own work.
    #[serde(default)]
    pub sigma: f64,
    /// Share of requests that fail on their own.
    #[serde(default)]
    pub error_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub from: String,
    pub to: String,
    pub operation: String,
    /// Share of the caller's requests that make this call.
    #[serde(default = "certain")]
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub name: String,
    pub namespace: String,
    pub region: String,
    /// The service every trace starts at (it only makes calls).
    pub entry: String,
    pub services: Vec<ServiceSpec>,
    pub calls: Vec<CallSpec>,
}

fn default_version() -> String {
    "v1".to_owned()
}

fn one() -> u32 {
    1
}

fn certain() -> f64 {
    1.0
}

/// A topology file that cannot be used; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topology: {}", .0.join("; "))]
pub struct TopologyError(pub Vec<String>);

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
        Self::from_toml(include_str!("../topologies/online_boutique.toml"))
            .expect("the bundled topology is valid")
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Calls made by `service`, in file order.
    pub fn calls_from<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a CallSpec> {
        self.calls.iter().filter(move |c| c.from == service)
    }

    fn validate(&self) -> Result<(), TopologyError> {
        let mut problems = Vec::new();
        if self.service(&self.entry).is_none() {
            problems.push(format!("entry {:?} is not a service", self.entry));
        }
        for s in &self.services {
            if self.services.iter().filter(|o| o.name == s.name).count() > 1 {
                problems.push(format!("service {:?} is listed twice", s.name));
            }
            if s.instances == 0 {
                problems.push(format!(
                    "service {:?}: instances must be at least 1",
                    s.name
                ));
            }
            if !(s.self_ms >= 0.0 && s.sigma >= 0.0 && (0.0..=1.0).contains(&s.error_rate)) {
                problems.push(format!(
                    "service {:?}: self_ms and sigma must be >= 0, error_rate in [0, 1]",
                    s.name
                ));
            }
            if s.kind == ServiceKind::Database && s.system.is_none() {
                problems.push(format!("database {:?} needs a system", s.name));
            }
        }
        for c in &self.calls {
            for end in [&c.from, &c.to] {
                if self.service(end).is_none() {
                    problems.push(format!(
                        "call {} -> {}: {end:?} is not a service",
                        c.from, c.to
                    ));
                }
            }
            if !(0.0..=1.0).contains(&c.probability) {
                problems.push(format!(
                    "call {} -> {}: probability must be in [0, 1]",
                    c.from, c.to
                ));
            }
            if self
                .service(&c.from)
                .is_some_and(|s| s.kind == ServiceKind::Database)
            {
                problems.push(format!(
                    "call {} -> {}: a database makes no calls",
                    c.from, c.to
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TopologyError(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_boutique_has_twelve_nodes() {
        let t = Topology::online_boutique();
        assert_eq!(t.services.len(), 12);
        assert_eq!(t.calls_from("checkout").count(), 6);
        assert_eq!(t.service("redis-cart").unwrap().kind, ServiceKind::Database);
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"
            name = "t"
            namespace = "n"
            region = "r"
            entry = "nowhere"
            [[services]]
            name = "a"
            instances = 0
            [[calls]]
            from = "a"
            to = "b"
            operation = "x"
            probability = 2.0
        "#;
        let err = Topology::from_toml(text).unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
    }
}
