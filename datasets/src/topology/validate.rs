//! Every problem of a topology file, found in one pass.

use super::{CallMode, ServiceKind, Topology};

/// A topology file that cannot be used; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topology: {}", .0.join("; "))]
pub struct TopologyError(pub Vec<String>);

impl Topology {
    pub(super) fn validate(&self) -> Result<(), TopologyError> {
        let mut problems = Vec::new();
        self.check_top_level(&mut problems);
        for service in &self.services {
            self.check_service(service, &mut problems);
        }
        for call in &self.calls {
            self.check_call(call, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TopologyError(problems))
        }
    }

    fn check_top_level(&self, problems: &mut Vec<String>) {
        match self.service(&self.entry) {
            None => problems.push(format!("entry {:?} is not a service", self.entry)),
            Some(entry) if entry.kind.is_backend() => {
                problems.push(format!("entry {:?} must be a service", self.entry));
            }
            Some(_) => {
                if self.calls_from(&self.entry).next().is_none() {
                    problems.push(format!("entry {:?} makes no calls", self.entry));
                }
            }
        }
        if self.regions.is_empty() {
            problems.push("regions must list at least one region".to_owned());
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            problems.push(format!("rate must be > 0, not {}", self.rate));
        }
        if self.cross_region_ms.is_nan() || self.cross_region_ms < 0.0 {
            problems.push("cross_region_ms must be >= 0".to_owned());
        }
    }

    fn check_service(&self, s: &super::ServiceSpec, problems: &mut Vec<String>) {
        let name = &s.name;
        if self.services.iter().filter(|o| o.name == s.name).count() > 1 {
            problems.push(format!("service {name:?} is listed twice"));
        }
        if s.instances == 0 || s.concurrency == 0 || s.cpus == 0 {
            problems.push(format!(
                "service {name:?}: instances, concurrency and cpus must be at least 1"
            ));
        }
        if !(s.self_ms >= 0.0 && s.sigma >= 0.0 && s.memory_mb >= 0.0) {
            problems.push(format!(
                "service {name:?}: self_ms, sigma and memory_mb must be >= 0"
            ));
        }
        if !(0.0..=1.0).contains(&s.error_rate) {
            problems.push(format!("service {name:?}: error_rate must be in [0, 1]"));
        }
        if s.kind.is_backend() && s.system.is_none() {
            problems.push(format!("{:?} {name:?} needs a system", s.kind));
        }
        for region in s.regions.iter().flatten() {
            if !self.regions.contains(region) {
                problems.push(format!(
                    "service {name:?}: region {region:?} is not in the topology's regions"
                ));
            }
        }
    }

    fn check_call(&self, c: &super::CallSpec, problems: &mut Vec<String>) {
        let call = format!("call {} -> {}", c.from, c.to);
        for end in [&c.from, &c.to] {
            if self.service(end).is_none() {
                problems.push(format!("{call}: {end:?} is not a service"));
            }
        }
        if !(0.0..=1.0).contains(&c.probability) {
            problems.push(format!("{call}: probability must be in [0, 1]"));
        }
        if !(c.weight >= 0.0 && c.timeout_ms > 0.0) {
            problems.push(format!("{call}: weight must be >= 0 and timeout_ms > 0"));
        }
        if c.count == 0 || c.count_max.is_some_and(|max| max < c.count) {
            problems.push(format!("{call}: count must be >= 1 and count_max >= count"));
        }
        if self.service(&c.from).is_some_and(|s| s.kind.is_backend()) {
            problems.push(format!(
                "{call}: a {:?} makes no calls",
                self.service(&c.from).map(|s| s.kind).unwrap_or_default()
            ));
        }
        if self
            .service(&c.to)
            .is_some_and(|s| s.kind == ServiceKind::Queue)
        {
            problems.push(format!(
                "{call}: a queue is reached with mode = \"async\" and via, not called"
            ));
        }
        match (c.mode, &c.via) {
            (CallMode::Async, None) => {
                problems.push(format!("{call}: an async call needs via (its queue)"));
            }
            (CallMode::Async, Some(via)) => {
                if self
                    .service(via)
                    .is_none_or(|s| s.kind != ServiceKind::Queue)
                {
                    problems.push(format!("{call}: via {via:?} is not a queue"));
                }
                if self.service(&c.to).is_some_and(|s| s.kind.is_backend()) {
                    problems.push(format!(
                        "{call}: an async call's consumer must be a service"
                    ));
                }
            }
            (_, Some(_)) => problems.push(format!("{call}: via is only for mode = \"async\"")),
            _ => {}
        }
        if let Some(within) = &c.within
            && !self.operations_of(&c.from).any(|op| op == within)
        {
            problems.push(format!(
                "{call}: within {within:?} is not an operation {} serves",
                c.from
            ));
        }
    }

    /// The operations a service is called with.
    pub fn operations_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> {
        self.calls
            .iter()
            .filter(move |c| c.to == service)
            .map(|c| c.operation.as_str())
    }
}
