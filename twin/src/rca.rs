//! Root-cause ranking: which service most likely started what went wrong
//! in a window, and why the twin thinks so.
//!
//! In: spans and metric points of an abnormal window and of a normal
//! window before it ([`input`]). One pass counts the work each service,
//! instance and operation did in both ([`tally`]); what changed beyond
//! noise becomes [`findings`]: errors that start somewhere (not passed up
//! from a call), own time that grew (time not spent waiting on calls),
//! time between two instances that grew (the wire, or a queue), calls that
//! stopped being made, retries, and metrics off their normal range.
//!
//! Each kind of finding is normalised to shares of its kind's total, and
//! a service's score is the weighted mean of its shares over the kinds
//! present: 1 for errors, latency and missing calls, 0.3 for retries (an
//! echo of errors or delays), and metrics 0.5 beside traces or 1 alone;
//! the kinds from traces also by how much of the window they touch
//! ([`kind_weights`]). So a service that explains all of the window's
//! excess errors and none of its latency scores about half when latency
//! grew as widely; two faults of different kinds share the top (ADR 009). Pure and deterministic: the same input
//! gives the same ranking.

mod findings;
pub mod input;
mod tally;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use foldhash::{HashMap, HashSet};
use meshtwin_model::rca::{Cause, Evidence, RootCauses};

use findings::{Finding, Kind};
pub use input::{Kind as SpanKind, MetricPoint, Name, RcaInput, Span, Windows};
use tally::Tallies;

/// Causes reported with their evidence.
const REPORTED: usize = 10;
/// Evidence items listed per cause.
const EVIDENCE_LISTED: usize = 8;
/// A path stops after this many services.
const MAX_PATH: usize = 20;

fn weight(kind: Kind, with_traces: bool) -> f64 {
    match kind {
        Kind::Errors | Kind::Latency | Kind::MissingCalls => 1.0,
        Kind::Mesh => 0.3,
        Kind::Metrics if with_traces => 0.5,
        Kind::Metrics => 1.0,
    }
}

/// Each kind's weight: its base weight, and for the kinds from traces,
/// times the square root of how much of the window it touches (excess
/// errors per request, excess milliseconds per millisecond of work,
/// missing calls per call, excess retries per call) against the kind that
/// touches the most; so a rise of a tenth of a millisecond in one
/// operation does not weigh as much as a quarter of all requests failing.
fn kind_weights(totals: &BTreeMap<Kind, f64>, tallies: &Tallies) -> BTreeMap<Kind, f64> {
    let with_traces = totals.keys().any(|k| *k != Kind::Metrics);
    let reach: BTreeMap<Kind, f64> = totals
        .iter()
        .filter_map(|(&kind, &total)| {
            let of = tallies.extent(kind)?;
            Some((kind, total / (of + total).max(f64::MIN_POSITIVE)))
        })
        .collect();
    let widest = reach.values().copied().fold(0.0, f64::max);
    totals
        .keys()
        .map(|&kind| {
            let relative = match reach.get(&kind) {
                Some(r) if widest > 0.0 => (r / widest).sqrt(),
                _ => 1.0,
            };
            (kind, weight(kind, with_traces) * relative)
        })
        .collect()
}

/// Every candidate with its score, most likely first, plus what explains it.
struct Scored {
    order: Vec<(Name, f64)>,
    findings: Vec<(Finding, f64)>,
    tallies: Tallies,
}

fn score(input: &RcaInput, windows: &Windows) -> Scored {
    let tallies = Tallies::count(input, windows);
    let mut found = findings::from_traces(input, &tallies);
    found.extend(findings::from_metrics(input, windows));
    // In a fixed order, so sums of floats come out the same every run.
    found.sort_by(|a, b| {
        (a.kind, a.service, a.instance, a.operation)
            .cmp(&(b.kind, b.service, b.instance, b.operation))
            .then_with(|| a.amount.total_cmp(&b.amount))
            .then_with(|| a.evidence.describe().cmp(&b.evidence.describe()))
    });
    // Per kind and service: the amount; metrics count a service's
    // strongest finding only (many instances would otherwise add up).
    let mut amounts: BTreeMap<(Kind, Name), f64> = BTreeMap::new();
    for finding in &found {
        let amount = amounts.entry((finding.kind, finding.service)).or_default();
        *amount = match finding.kind {
            Kind::Metrics => amount.max(finding.amount),
            _ => *amount + finding.amount,
        };
    }
    let mut totals: BTreeMap<Kind, f64> = BTreeMap::new();
    for (&(kind, _), amount) in &amounts {
        *totals.entry(kind).or_default() += amount;
    }
    let kind_weights = kind_weights(&totals, &tallies);
    let weights: f64 = kind_weights.values().sum();
    let mut scores: BTreeMap<Name, f64> = BTreeMap::new();
    for (&(kind, service), amount) in &amounts {
        *scores.entry(service).or_default() +=
            kind_weights[&kind] * amount / totals[&kind] / weights;
    }
    // Every service seen is a candidate; those without findings are
    // ordered by how much their own work suffered, a tiny tie-breaker.
    let mut services: Vec<_> = tallies.services.iter().collect();
    services.sort_unstable_by_key(|(service, _)| **service);
    for (&service, tally) in services {
        *scores.entry(service).or_default() += 1e-4 * symptom(tally).min(1.0);
    }
    for point in &input.metrics {
        scores.entry(point.service).or_default();
    }
    let mut order: Vec<(Name, f64)> = scores.into_iter().collect();
    order.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| input.text(a.0).cmp(input.text(b.0)))
    });
    let findings = found
        .into_iter()
        .map(|mut finding| {
            let share = finding.amount / totals[&finding.kind];
            set_share(&mut finding.evidence, share);
            let contribution = kind_weights[&finding.kind] * share / weights;
            (finding, contribution)
        })
        .collect();
    Scored {
        order,
        findings,
        tallies,
    }
}

fn set_share(evidence: &mut Evidence, value: f64) {
    match evidence {
        Evidence::ErrorOrigin { share, .. }
        | Evidence::SelfTime { share, .. }
        | Evidence::NetworkDelay { share, .. }
        | Evidence::MissingCall { share, .. }
        | Evidence::Retries { share, .. }
        | Evidence::Resilience { share, .. }
        | Evidence::Metric { share, .. } => *share = value,
    }
}

/// How much worse a service's work went: relative growth of its mean
/// duration, or ten times the growth of its error rate.
fn symptom(tally: &tally::ServiceTally) -> f64 {
    let (normal, abnormal) = (&tally.duration_ms.normal, &tally.duration_ms.abnormal);
    if abnormal.n == 0 {
        return 0.0;
    }
    let slower = if normal.n > 0 && normal.mean() > 0.0 {
        abnormal.mean() / normal.mean() - 1.0
    } else {
        0.0
    };
    let rate = |errors: u64, of: u64| errors as f64 / of.max(1) as f64;
    let failing = rate(tally.errors.abnormal, abnormal.n) - rate(tally.errors.normal, normal.n);
    slower.max(10.0 * failing).max(0.0)
}

/// Candidate services, most likely cause first, with their scores in [0, 1].
pub fn rank_services(input: &RcaInput, windows: &Windows) -> Vec<(Name, f64)> {
    score(input, windows).order
}

/// The ranking with its evidence, propagation paths and exemplar traces.
pub fn root_causes(input: &RcaInput, windows: &Windows) -> RootCauses {
    let scored = score(input, windows);
    let mut notes = Vec::new();
    if input.spans.is_empty() && input.metrics.is_empty() {
        notes.push("no spans or metrics in the window".to_owned());
    } else if scored.findings.is_empty() {
        notes.push("nothing in the window stands out from the normal window before it".to_owned());
    }
    let causes = scored
        .order
        .iter()
        .filter(|(_, score)| *score > 0.0)
        .take(REPORTED)
        .map(|&(service, score)| cause(input, &scored, service, score.min(1.0)))
        .collect();
    RootCauses {
        from_unix_nanos: windows.abnormal.0,
        to_unix_nanos: windows.abnormal.1,
        normal_from_unix_nanos: windows.normal.0,
        normal_to_unix_nanos: windows.normal.1,
        spans: scored.tallies.spans,
        traces: scored.tallies.traces,
        metric_points: input
            .metrics
            .iter()
            .filter(|p| windows.in_normal(p.time) || windows.in_abnormal(p.time))
            .count() as u64,
        causes,
        notes,
    }
}

fn cause(input: &RcaInput, scored: &Scored, service: Name, score: f64) -> Cause {
    let mut mine: Vec<&(Finding, f64)> = scored
        .findings
        .iter()
        .filter(|(f, _)| f.service == service)
        .collect();
    mine.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.evidence.describe().cmp(&b.0.evidence.describe()))
    });
    let concentrated = |pick: &dyn Fn(&Finding) -> Option<Name>| {
        let mut by: HashMap<Name, f64> = HashMap::default();
        let mut total = 0.0;
        for (finding, contribution) in &mine {
            total += contribution;
            if let Some(name) = pick(finding) {
                *by.entry(name).or_default() += contribution;
            }
        }
        by.into_iter()
            .filter(|(_, part)| *part >= 0.6 * total && total > 0.0)
            .map(|(name, _)| input.text(name).to_owned())
            .next()
    };
    let mut exemplars: Vec<String> = Vec::new();
    for (finding, _) in &mine {
        for trace in &finding.exemplars {
            let id = format!("{trace:032x}");
            if exemplars.len() < 3 && !exemplars.contains(&id) {
                exemplars.push(id);
            }
        }
    }
    Cause {
        service: input.text(service).to_owned(),
        instance: concentrated(&|f| f.instance),
        operation: concentrated(&|f| f.operation),
        score,
        evidence: mine
            .iter()
            .take(EVIDENCE_LISTED)
            .map(|(f, _)| f.evidence.clone())
            .collect(),
        path: path(input, &scored.tallies, service),
        exemplars,
        alarms: Vec::new(),
    }
}

/// From `service` up through the callers whose work suffered most, to
/// where the effect was first seen; returned entry first.
fn path(input: &RcaInput, tallies: &Tallies, service: Name) -> Vec<String> {
    let mut callers: HashMap<Name, Vec<Name>> = HashMap::default();
    for &(caller, callee) in tallies.edges.keys() {
        callers.entry(callee).or_default().push(caller);
    }
    let suffered = |s: Name| tallies.services.get(&s).map_or(0.0, symptom);
    let mut path = vec![service];
    let mut seen: HashSet<Name> = HashSet::from_iter([service]);
    let mut at = service;
    while path.len() < MAX_PATH {
        let next = callers
            .get(&at)
            .into_iter()
            .flatten()
            .copied()
            .filter(|c| !seen.contains(c) && suffered(*c) > 0.02)
            .max_by(|a, b| {
                suffered(*a)
                    .total_cmp(&suffered(*b))
                    .then_with(|| input.text(*b).cmp(input.text(*a)))
            });
        let Some(next) = next else { break };
        seen.insert(next);
        path.push(next);
        at = next;
    }
    path.reverse();
    path.into_iter().map(|s| input.text(s).to_owned()).collect()
}
