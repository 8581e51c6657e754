//! End to end: each case's spans through the code the live system runs —
//! the collector's OTLP conversion and the twin with its detectors — in
//! event time, and the incidents it opens compared with the faults.
//!
//! A fault is detected when an incident opens during it (or up to
//! [`LATE_NANOS`] after its end) holding its root-cause service; the delay
//! is from the fault's start to the incident's first alarm (the end of
//! that 10 s bucket). Every other incident opened after the detectors'
//! warm-up is a false incident, counted against the fault-free time: all
//! of a fault-free or negative-control case (load surges, deploys), and
//! the part of a fault case before its first fault.

use std::collections::BTreeMap;
use std::fmt::Write;

use meshtwin_collector::span_facts;
use meshtwin_datasets::dataset::{DatasetError, DatasetReader, Payload, read_labels};
use meshtwin_datasets::suite::GeneratedCase;
use meshtwin_model::incident::Incident;
use meshtwin_twin::{Twin, TwinConfig};
use serde::{Deserialize, Serialize};

const SECOND: u64 = 1_000_000_000;
/// An incident opened this long after a fault ended still counts for it.
const LATE_NANOS: u64 = 60 * SECOND;

/// One fault of a case, and whether an incident found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    pub fault: String,
    pub service: String,
    /// Seconds from the fault's start to the incident's opening.
    pub delay_s: Option<f64>,
}

/// One case end to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDetection {
    pub case: String,
    pub topology: String,
    /// The fault type, `fault_free`, or the negative control.
    pub fault: String,
    pub faults: Vec<FaultOutcome>,
    pub false_incidents: u64,
    /// The signals of each false incident (`node:signal:deviation`, sorted).
    pub false_signals: Vec<Vec<String>>,
    /// Seconds in which any incident would have been a false one.
    pub fault_free_s: f64,
    /// Every incident: seconds into the case it opened, and its signals.
    pub incidents: Vec<(f64, Vec<String>)>,
}

/// The whole suite end to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionSummary {
    pub warmup_s: f64,
    pub faults: usize,
    pub detected: usize,
    pub recall: f64,
    pub false_incidents: u64,
    pub fault_free_hours: f64,
    pub false_per_hour: f64,
    pub median_delay_s: Option<f64>,
    pub p95_delay_s: Option<f64>,
    pub cases: Vec<CaseDetection>,
}

/// The twin's node name of a node id (`namespace/name` or `name`).
fn node_name(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(_, name)| name)
}

/// Runs `case` through the collector's conversion and a twin with `config`.
pub fn detect(case: &GeneratedCase, config: &TwinConfig) -> Result<CaseDetection, DatasetError> {
    let labels = read_labels(&case.dir)?;
    let mut twin = Twin::new(config);
    for batch in DatasetReader::open(&case.dir)? {
        let Ok(batch) = batch else { continue };
        if let Payload::Traces(request) = &batch.payload
            && let Ok((spans, _)) = span_facts(request)
        {
            twin.ingest(&spans, batch.at_unix_nano);
        }
        twin.advance(batch.at_unix_nano);
    }
    let incidents = twin.incidents();
    let start = case.manifest.case.options.start_unix_nano;
    let warm = start + config.detection.warmup_seconds * SECOND;
    let end = start + (case.manifest.case.duration_s * 1e9) as u64;
    let faults: Vec<_> = labels.iter().filter(|l| !l.negative_control).collect();
    let mut claimed = vec![false; incidents.len()];
    let outcomes = faults
        .iter()
        .map(|label| {
            let found = incidents.iter().enumerate().find(|(_, i)| {
                i.opened_unix_nanos >= label.start_unix_nano
                    && i.opened_unix_nanos <= label.end_unix_nano + LATE_NANOS
                    && holds(i, &label.service)
            });
            if let Some((index, _)) = found {
                claimed[index] = true;
            }
            FaultOutcome {
                fault: label.fault.clone(),
                service: label.service.clone(),
                delay_s: found.map(|(_, i)| {
                    i.confirmed_unix_nanos.saturating_sub(label.start_unix_nano) as f64 / 1e9
                }),
            }
        })
        .collect();
    // Fault-free: after warm-up, and before the first fault if there is one.
    let clean_until = faults
        .iter()
        .map(|l| l.start_unix_nano)
        .min()
        .unwrap_or(end);
    let false_ones: Vec<&Incident> = incidents
        .iter()
        .zip(&claimed)
        .filter(|(i, claimed)| {
            !**claimed && i.opened_unix_nanos >= warm && i.opened_unix_nanos < clean_until
        })
        .map(|(i, _)| i)
        .collect();
    let false_signals = false_ones.iter().map(|i| signal_names(i)).collect();
    let false_incidents = false_ones.len() as u64;
    Ok(CaseDetection {
        case: case.case.name.clone(),
        topology: case.case.topology.clone(),
        fault: case.case.fault.clone(),
        faults: outcomes,
        false_incidents,
        false_signals,
        fault_free_s: clean_until.saturating_sub(warm) as f64 / 1e9,
        incidents: incidents
            .iter()
            .map(|i| {
                let opened = i.opened_unix_nanos.saturating_sub(start) as f64 / 1e9;
                (opened, signal_names(i))
            })
            .collect(),
    })
}

/// `node:signal:deviation` of every signal of an incident, sorted.
fn signal_names(incident: &Incident) -> Vec<String> {
    let mut signals: Vec<String> = incident
        .signals
        .iter()
        .map(|s| format!("{}:{}:{:?}", s.id, s.signal.name(), s.deviation))
        .collect();
    signals.sort();
    signals.dedup();
    signals
}

/// Whether `incident` holds `service` (or, for a region-wide fault with no
/// service, anything).
fn holds(incident: &Incident, service: &str) -> bool {
    service.is_empty() || incident.nodes.iter().any(|n| node_name(n) == service)
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[index])
}

pub fn summarise(config: &TwinConfig, cases: Vec<CaseDetection>) -> DetectionSummary {
    let outcomes: Vec<&FaultOutcome> = cases.iter().flat_map(|c| &c.faults).collect();
    let mut delays: Vec<f64> = outcomes.iter().filter_map(|o| o.delay_s).collect();
    delays.sort_by(f64::total_cmp);
    let false_incidents: u64 = cases.iter().map(|c| c.false_incidents).sum();
    let hours = cases.iter().map(|c| c.fault_free_s).sum::<f64>() / 3600.0;
    DetectionSummary {
        warmup_s: config.detection.warmup_seconds as f64,
        faults: outcomes.len(),
        detected: delays.len(),
        recall: delays.len() as f64 / outcomes.len().max(1) as f64,
        false_incidents,
        fault_free_hours: hours,
        false_per_hour: if hours > 0.0 {
            false_incidents as f64 / hours
        } else {
            0.0
        },
        median_delay_s: quantile(&delays, 0.5),
        p95_delay_s: quantile(&delays, 0.95),
        cases,
    }
}

impl DetectionSummary {
    /// Recall and delay per fault type; false incidents per case kind.
    pub fn markdown(&self) -> String {
        let seconds = |s: Option<f64>| s.map_or("–".to_owned(), |s| format!("{s:.0} s"));
        let mut out = format!(
            "\n## End to end: the twin's detectors and incidents\n\n\
             Every case through the collector's conversion and the twin (detectors \
             warm for {:.0} s). A fault counts as detected when an incident holding \
             its service opens during it or up to 60 s after.\n\n\
             | faults | detected | recall | median delay | p95 delay | false incidents | \
             fault-free hours | false per hour |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
             | {} | {} | {:.2} | {} | {} | {} | {:.2} | {:.2} |\n",
            self.warmup_s,
            self.faults,
            self.detected,
            self.recall,
            seconds(self.median_delay_s),
            seconds(self.p95_delay_s),
            self.false_incidents,
            self.fault_free_hours,
            self.false_per_hour,
        );
        let mut per_fault: BTreeMap<&str, (usize, usize, Vec<f64>)> = BTreeMap::new();
        for outcome in self.cases.iter().flat_map(|c| &c.faults) {
            let entry = per_fault.entry(&outcome.fault).or_default();
            entry.0 += 1;
            if let Some(delay) = outcome.delay_s {
                entry.1 += 1;
                entry.2.push(delay);
            }
        }
        out += "\n| fault | faults | detected | recall | median delay |\n| --- | ---: | ---: | ---: | ---: |\n";
        for (fault, (total, found, mut delays)) in per_fault {
            delays.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "| {fault} | {total} | {found} | {:.2} | {} |",
                found as f64 / total.max(1) as f64,
                seconds(quantile(&delays, 0.5))
            );
        }
        let mut per_kind: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for case in &self.cases {
            let kind = match case.fault.as_str() {
                "fault_free" | "load_surge" | "deploy" => case.fault.as_str(),
                _ => "before a fault",
            };
            let entry = per_kind.entry(kind).or_default();
            entry.0 += case.false_incidents;
            entry.1 += case.fault_free_s;
        }
        out += "\n| fault-free time | hours | false incidents | per hour |\n| --- | ---: | ---: | ---: |\n";
        for (kind, (count, seconds)) in per_kind {
            let hours = seconds / 3600.0;
            let rate = if hours > 0.0 {
                count as f64 / hours
            } else {
                0.0
            };
            let _ = writeln!(out, "| {kind} | {hours:.2} | {count} | {rate:.2} |");
        }
        out
    }
}
