//! Every problem with a run's options against its topology, found before
//! the run, so a typo in a fault never silently drops the fault.

use super::{FaultKind, SimOptions};
use crate::topology::Topology;

impl SimOptions {
    /// Every problem, each naming the option it is about; empty if none.
    pub fn problems(&self, topology: &Topology) -> Vec<String> {
        let mut problems = Vec::new();
        let known = |name: &str| topology.service(name).is_some();
        let mut unknown = |what: String, name: &str| {
            if !known(name) {
                problems.push(format!(
                    "{what}: no service {name:?} in topology {:?}",
                    topology.name
                ));
            }
        };
        for [from, to] in &self.broken_propagation {
            unknown("broken_propagation".to_owned(), from);
            unknown("broken_propagation".to_owned(), to);
        }
        for name in &self.uninstrumented {
            unknown("uninstrumented".to_owned(), name);
        }
        for (name, _) in &self.clock_skew_ms {
            unknown("clock_skew_ms".to_owned(), name);
        }
        if !(self.sampling_ratio > 0.0 && self.sampling_ratio <= 1.0) {
            problems.push(format!(
                "sampling_ratio must be in (0, 1], not {}",
                self.sampling_ratio
            ));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.push(format!("rate must be a positive number, not {rate}"));
        }
        if !(self.metrics_interval_s.is_finite() && self.metrics_interval_s > 0.0) {
            problems.push(format!(
                "metrics_interval_s must be positive, not {}",
                self.metrics_interval_s
            ));
        }
        for (i, fault) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}] ({})", fault.kind.label());
            if !(fault.start_s.is_finite() && fault.start_s >= 0.0) {
                problems.push(format!(
                    "{at}: start_s must be 0 or more, not {}",
                    fault.start_s
                ));
            }
            if !(fault.duration_s.is_finite() && fault.duration_s > 0.0) {
                problems.push(format!(
                    "{at}: duration_s must be positive, not {}",
                    fault.duration_s
                ));
            }
            let Some(spec) = topology.service(&fault.service) else {
                problems.push(format!(
                    "{at}: no service {:?} in topology {:?}",
                    fault.service, topology.name
                ));
                continue;
            };
            let regions = topology.regions_of(spec);
            match &fault.region {
                Some(region) if !regions.contains(region) => problems.push(format!(
                    "{at}: {} does not run in region {region:?} (it runs in {})",
                    fault.service,
                    regions.join(", ")
                )),
                None if !regions.contains(&topology.regions[0]) => problems.push(format!(
                    "{at}: {} does not run in {} (the default region); name one of {}",
                    fault.service,
                    topology.regions[0],
                    regions.join(", ")
                )),
                _ => {}
            }
            if fault.kind.is_per_instance() && fault.instance >= spec.instances {
                problems.push(format!(
                    "{at}: {} has {} instance(s) per region; instance {} does not exist",
                    fault.service, spec.instances, fault.instance
                ));
            }
            if let FaultKind::MissingCall { to } = &fault.kind
                && !topology.calls_from(&fault.service).any(|c| &c.to == to)
            {
                problems.push(format!("{at}: {} makes no call to {to:?}", fault.service));
            }
        }
        problems
    }
}
