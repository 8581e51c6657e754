//! How long one ranking takes on a large graph: a synthetic layered
//! topology (200 services in the `dev` suite) with a CPU hog on a leaf,
//! ranked with evidence by meshtwin and by TraceRCA (the strongest
//! baseline) on the same spans.

use std::time::Instant;

use meshtwin_datasets::dataset::{CaseSpec, DatasetError};
use meshtwin_datasets::sim::{Fault, FaultKind, SimOptions};
use meshtwin_datasets::suite::{Case, CaseKind};
use meshtwin_twin::rca;
use serde::{Deserialize, Serialize};

use crate::baselines::TraceRca;
use crate::case_data::CaseData;
use crate::ours::{Sources, input};
use crate::ranker::{Ranker, Window};

/// Runs per method; the median is reported.
const RUNS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub topology: String,
    pub services: usize,
    pub spans: usize,
    pub truth: String,
    /// meshtwin's top cause.
    pub top: String,
    /// Median ms: meshtwin's ranking with evidence, paths and exemplars
    /// (converting the case to its input included), and TraceRCA's.
    pub meshtwin_ms: f64,
    pub tracerca_ms: f64,
}

/// The leaf called from the highest tier: it gets the most traffic.
fn busy_leaf(spec: &CaseSpec) -> Result<String, DatasetError> {
    let topology = spec.load_topology().map_err(|e| DatasetError::Case(e.0))?;
    let first_caller = |service: &str| {
        topology
            .calls
            .iter()
            .filter(|c| c.to == service)
            .map(|c| c.from.clone())
            .min()
    };
    topology
        .services
        .iter()
        .filter(|s| !s.kind.is_backend())
        .filter(|s| {
            topology.calls.iter().filter(|c| c.from == s.name).all(|c| {
                topology
                    .services
                    .iter()
                    .any(|t| t.name == c.to && t.kind.is_backend())
            })
        })
        .filter_map(|s| first_caller(&s.name).map(|c| (c, s)))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)))
        .map(|(_, s)| s.name.clone())
        .ok_or_else(|| DatasetError::Case(vec![format!("{} has no leaf service", spec.topology)]))
}

/// Ten minutes of `synthetic-layered-{services}`: normal for five, then a
/// CPU hog on the busiest leaf.
pub fn case(services: usize) -> Result<Case, DatasetError> {
    let topology = format!("synthetic-layered-{services}");
    let mut spec = CaseSpec {
        topology: topology.clone(),
        duration_s: 600.0,
        options: SimOptions::default(),
    };
    spec.options.faults.push(Fault {
        kind: FaultKind::CpuHog { factor: 5.0 },
        service: busy_leaf(&spec)?,
        instance: 0,
        region: None,
        start_s: 300.0,
        duration_s: 300.0,
    });
    Ok(Case {
        name: format!("{topology}.cpu_hog"),
        kind: CaseKind::Fault,
        topology,
        fault: "cpu_hog".to_owned(),
        spec,
    })
}

fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

pub fn measure(topology: &str, data: &CaseData) -> Option<Scale> {
    let label = data.labels.first()?;
    let window = Window {
        normal: (data.start_unix_nano + 30_000_000_000, label.start_unix_nano),
        abnormal: (label.start_unix_nano, label.end_unix_nano),
    };
    let mut top = String::new();
    let meshtwin_ms = median_ms(|| {
        let causes = rca::root_causes(&input(data, Sources::Both), &window);
        top = causes
            .causes
            .first()
            .map(|c| c.service.clone())
            .unwrap_or_default();
    });
    let tracerca_ms = median_ms(|| {
        std::hint::black_box(TraceRca.rank(data, &window));
    });
    Some(Scale {
        topology: topology.to_owned(),
        services: data.candidates().len(),
        spans: data.spans.len(),
        truth: label.service.clone(),
        top,
        meshtwin_ms,
        tracerca_ms,
    })
}

impl Scale {
    pub fn markdown(&self) -> String {
        format!(
            "\n## Ranking on a large graph: `{topology}`\n\n\
             {services} candidates (services, databases, caches); a CPU hog on `{truth}` \
             after 5 normal minutes; {spans} spans; median of {RUNS} runs.\n\n\
             | method | ms per ranking | vs TraceRCA | top cause |\n\
             | --- | ---: | ---: | --- |\n\
             | meshtwin (with evidence) | {ours:.0} | {ratio:.2}× | {top} |\n\
             | TraceRCA | {theirs:.0} | 1.00× | |\n",
            services = self.services,
            topology = self.topology,
            truth = self.truth,
            spans = self.spans,
            ours = self.meshtwin_ms,
            theirs = self.tracerca_ms,
            ratio = self.meshtwin_ms / self.tracerca_ms,
            top = self.top,
        )
    }
}
