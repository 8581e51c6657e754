//! Which services a fault of each type can hit in a topology: those the
//! traffic actually reaches (measured by a short fault-free run), since a
//! fault where no request goes leaves no evidence for anyone to find.

use std::collections::BTreeMap;

use crate::sim::{Kind, Output, SimOptions, Simulation};
use crate::topology::{ServiceKind, Topology};

/// Seconds of fault-free traffic measured.
const PROBE_S: f64 = 30.0;
/// Requests per second a target must serve.
const MIN_RATE: f64 = 1.0;

/// Busy services and calls of one topology, in name order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    /// Instrumented services (not the entry) serving at least `MIN_RATE`.
    pub(crate) services: Vec<String>,
    /// Databases and caches called at least `MIN_RATE`.
    pub(crate) datastores: Vec<String>,
    /// `(caller, callee)` calls made at least `MIN_RATE` between services.
    pub(crate) calls: Vec<(String, String)>,
    /// More than one region: a region outage has somewhere to fail over.
    pub(crate) regions: Vec<String>,
}

impl Targets {
    pub(crate) fn measure(topology: &Topology) -> Self {
        let options = SimOptions {
            seed: 0,
            ..SimOptions::default()
        };
        let mut simulation = Simulation::new(topology, options);
        let mut out = Output::default();
        simulation.run_until(PROBE_S, &mut out);
        let writer = simulation.otlp();
        let mut served: BTreeMap<String, u64> = BTreeMap::new();
        let mut called: BTreeMap<(String, String), u64> = BTreeMap::new();
        for span in &out.spans {
            let reporter = simulation.service_of(span.instance).to_owned();
            match span.kind {
                Kind::Server | Kind::Consumer => *served.entry(reporter).or_default() += 1,
                Kind::Client | Kind::Producer => {
                    let peer = writer.service_name(span.peer).to_owned();
                    *called.entry((reporter, peer)).or_default() += 1;
                }
            }
        }
        let busy = |count: u64| count as f64 / PROBE_S >= MIN_RATE;
        let kind_of = |name: &str| topology.service(name).map(|s| s.kind);
        let services = served
            .iter()
            .filter(|(name, count)| busy(**count) && **name != topology.entry)
            .map(|(name, _)| name.clone())
            .collect();
        let mut datastores: Vec<String> = called
            .iter()
            .filter(|((_, to), count)| {
                busy(**count)
                    && matches!(
                        kind_of(to),
                        Some(ServiceKind::Database | ServiceKind::Cache)
                    )
            })
            .map(|((_, to), _)| to.clone())
            .collect();
        datastores.sort();
        datastores.dedup();
        let calls = called
            .iter()
            .filter(|((from, to), count)| {
                busy(**count)
                    && *from != topology.entry
                    && kind_of(to) == Some(ServiceKind::Service)
            })
            .map(|(call, _)| call.clone())
            .collect();
        Self {
            services,
            datastores,
            calls,
            regions: topology.regions.clone(),
        }
    }
}
