//! Feeds a case through the code the live system runs — the collector's
//! OTLP conversion and the twin — and checks the twin's graph against
//! the calls in the case's own spans: every edge there, with every call
//! counted, and every failed call.

use std::collections::BTreeMap;
use std::path::Path;

use meshtwin_collector::span_facts;
use meshtwin_datasets::dataset::{DatasetError, DatasetReader, Payload};
use meshtwin_twin::{Twin, TwinConfig};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde::{Deserialize, Serialize};

use crate::case_data::CaseData;

/// The twin's graph of one case against what its spans say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphCheck {
    pub topology: String,
    /// `caller -> callee` edges the spans describe.
    pub expected_edges: usize,
    /// Expected edges missing from the twin.
    pub missing: Vec<String>,
    /// Expected edges whose call or failure count differs: `(edge,
    /// calls in the spans, calls in the twin, failed in the spans,
    /// failed in the twin)`.
    pub miscounted: Vec<(String, u64, u64, u64, u64)>,
    /// Edges in the twin the CLIENT spans do not name (messaging hops).
    pub other_twin_edges: Vec<String>,
    pub spans_rejected: u64,
}

impl GraphCheck {
    pub fn holds(&self) -> bool {
        self.missing.is_empty() && self.miscounted.is_empty() && self.spans_rejected == 0
    }
}

/// A fault-free two-minute run of `topology` to check the twin on.
pub fn case(topology: &str) -> meshtwin_datasets::suite::Case {
    meshtwin_datasets::suite::Case {
        name: format!("{topology}.graph-check"),
        kind: meshtwin_datasets::suite::CaseKind::FaultFree,
        topology: topology.to_owned(),
        fault: "fault_free".to_owned(),
        spec: meshtwin_datasets::dataset::CaseSpec {
            topology: topology.to_owned(),
            duration_s: 120.0,
            options: meshtwin_datasets::sim::SimOptions::default(),
        },
    }
}

/// The checks as a Markdown section.
pub fn markdown(checks: &[GraphCheck]) -> String {
    let mut out = String::from(
        "\n## The twin's graph against the spans (2 min fault-free per topology)\n\n\
         | topology | edges in the spans | missing | miscounted | other twin edges | spans rejected | holds |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for c in checks {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.topology,
            c.expected_edges,
            c.missing.len(),
            c.miscounted.len(),
            c.other_twin_edges.len(),
            c.spans_rejected,
            if c.holds() { "yes" } else { "**NO**" }
        );
    }
    for c in checks.iter().filter(|c| !c.holds()) {
        out += &format!(
            "\n{}: missing {:?}; miscounted (edge, calls, twin calls, failed, twin failed) {:?}\n",
            c.topology, c.missing, c.miscounted
        );
    }
    out
}

/// Calls (and failed calls) per `caller -> callee`, from CLIENT spans.
fn expected(data: &CaseData) -> BTreeMap<String, (u64, u64)> {
    let mut edges: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for span in data.spans.iter().filter(|s| s.kind == SpanKind::Client) {
        let Some(peer) = span.peer else { continue };
        let key = format!(
            "{} -> {}",
            data.names[span.service as usize], data.names[peer as usize]
        );
        let slot = edges.entry(key).or_default();
        slot.0 += 1;
        slot.1 += u64::from(span.error);
    }
    edges
}

pub fn check(topology: &str, dir: &Path, data: &CaseData) -> Result<GraphCheck, DatasetError> {
    let config = TwinConfig::default();
    let mut twin = Twin::new(&config);
    let mut rejected = 0;
    let mut last = 0;
    for batch in DatasetReader::open(dir)? {
        let Ok(batch) = batch else { continue };
        last = last.max(batch.at_unix_nano);
        if let Payload::Traces(request) = &batch.payload {
            match span_facts(request) {
                Ok((spans, refused)) => {
                    rejected += refused;
                    twin.ingest(&spans, batch.at_unix_nano);
                }
                Err(_) => rejected += 1,
            }
        }
        twin.advance(batch.at_unix_nano);
    }
    // Past the pairing wait, so every half still waiting is settled.
    twin.advance(last + 3 * config.pair_wait_seconds * 1_000_000_000);
    let graph = twin.snapshot(0);
    let name_of = |id: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.id == id)
            .map_or(id.to_owned(), |n| n.name.clone())
    };
    let mut in_twin: BTreeMap<String, (u64, u64)> = graph
        .edges
        .iter()
        .map(|e| {
            let key = format!("{} -> {}", name_of(&e.source), name_of(&e.target));
            (key, (e.total_requests, e.total_failed))
        })
        .collect();
    let expected = expected(data);
    let mut missing = Vec::new();
    let mut miscounted = Vec::new();
    for (edge, (calls, failed)) in &expected {
        match in_twin.remove(edge) {
            None => missing.push(edge.clone()),
            Some((twin_calls, twin_failed)) if (twin_calls, twin_failed) != (*calls, *failed) => {
                miscounted.push((edge.clone(), *calls, twin_calls, *failed, twin_failed));
            }
            Some(_) => {}
        }
    }
    Ok(GraphCheck {
        topology: topology.to_owned(),
        expected_edges: expected.len(),
        missing,
        miscounted,
        other_twin_edges: in_twin.into_keys().collect(),
        spans_rejected: rejected,
    })
}
