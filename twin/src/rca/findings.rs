//! What stands out in the abnormal window against the normal one, as
//! findings: each a piece of evidence against one service, with an amount
//! in its kind's unit (errors, milliseconds, calls, retries, robust z).
//! Only changes too large to be noise become findings.

use std::collections::BTreeMap;

use foldhash::HashMap;
use meshtwin_model::rca::Evidence;

use super::input::{Name, RcaInput, Windows};
use super::tally::{Exemplars, MeshTally, Moments, Tallies};

/// The kinds of evidence, each normalised on its own before they are
/// weighed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Errors,
    Latency,
    MissingCalls,
    /// Retries, ejections, breaker trips.
    Mesh,
    Metrics,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) service: Name,
    pub(crate) instance: Option<Name>,
    pub(crate) operation: Option<Name>,
    pub(crate) kind: Kind,
    pub(crate) amount: f64,
    /// Its `share` is filled in once every finding of its kind is known.
    pub(crate) evidence: Evidence,
    pub(crate) exemplars: Vec<u128>,
}

/// A change counts when it is this many standard errors out.
const Z_SIGNIFICANT: f64 = 5.0;
/// Own time must grow by at least this share of its normal mean.
const MIN_GROWTH: f64 = 0.1;
/// Groups with fewer samples in either window are not compared.
const MIN_SAMPLES: u64 = 5;
/// Excess errors or retries must reach this count and this many sigmas.
const MIN_EXCESS: f64 = 3.0;
/// A call is missing when requests make under this share of it.
const MISSING_SHARE: f64 = 0.25;
/// A metric moves when its median is this many robust spreads away.
const METRIC_Z: f64 = 4.0;
const MAX_Z: f64 = 50.0;

fn exemplar_ids(exemplars: &Exemplars) -> Vec<u128> {
    exemplars.0.iter().map(|(_, trace)| *trace).collect()
}

/// How far the abnormal mean of a duration is above normal, in ms, when
/// the rise is real: `Some((normal mean, abnormal mean))`.
fn grew(normal: &Moments, abnormal: &Moments) -> Option<(f64, f64)> {
    if normal.n < MIN_SAMPLES || abnormal.n < MIN_SAMPLES {
        return None;
    }
    let (before, after) = (normal.mean(), abnormal.mean());
    let spread = normal.std().max(0.05 * before).max(0.01);
    let z = (after - before) / (spread / (abnormal.n as f64).sqrt());
    (z >= Z_SIGNIFICANT && after - before >= MIN_GROWTH * before).then_some((before, after))
}

/// Counts above what the normal rate predicts, when the excess is real.
/// The normal rate is Laplace's rule of succession, `(k + 1) / (n + 1)`
/// (a window without errors does not make them impossible), when there
/// was a normal window for this work at all.
fn excess(normal: u64, normal_of: u64, abnormal: u64, abnormal_of: u64) -> Option<(f64, f64)> {
    let rate = match normal_of {
        0 => 0.0,
        n => (normal + 1) as f64 / (n + 1) as f64,
    };
    let expected = abnormal_of as f64 * rate;
    let excess = abnormal as f64 - expected;
    (excess >= MIN_EXCESS && excess >= MIN_EXCESS * (expected + 1.0).sqrt())
        .then_some((expected, excess))
}

pub(crate) fn from_traces(input: &RcaInput, tallies: &Tallies) -> Vec<Finding> {
    let text = |name: Name| input.text(name).to_owned();
    let mut findings = Vec::new();
    for (&(service, instance, operation), work) in &tallies.work {
        let requests = work.own_ms.abnormal.n;
        if let Some((expected, extra)) = excess(
            work.error_origins.normal,
            work.own_ms.normal.n,
            work.error_origins.abnormal,
            requests,
        ) {
            findings.push(Finding {
                service,
                instance,
                operation: Some(operation),
                kind: Kind::Errors,
                amount: extra,
                evidence: Evidence::ErrorOrigin {
                    operation: text(operation),
                    instance: instance.map(text),
                    errors: work.error_origins.abnormal,
                    expected,
                    requests,
                    share: 0.0,
                },
                exemplars: exemplar_ids(&work.failing),
            });
        }
        if work.seen_by_callers {
            continue;
        }
        if let Some((before, after)) = grew(&work.own_ms.normal, &work.own_ms.abnormal) {
            findings.push(Finding {
                service,
                instance,
                operation: Some(operation),
                kind: Kind::Latency,
                amount: (after - before) * requests as f64,
                evidence: Evidence::SelfTime {
                    operation: text(operation),
                    instance: instance.map(text),
                    normal_ms: before,
                    abnormal_ms: after,
                    requests,
                    share: 0.0,
                },
                exemplars: exemplar_ids(&work.slowest),
            });
        }
    }
    findings.extend(network_delays(input, tallies));
    findings.extend(missing_calls(input, tallies));
    findings.extend(mesh_signals(tallies));
    findings
}

/// Calls to a service retried, or turned away by the mesh (endpoints
/// ejected, breakers open), more often than before.
fn mesh_signals(tallies: &Tallies) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (&callee, counts) in &tallies.mesh {
        let (normal, abnormal) = (counts.normal, counts.abnormal);
        let finding = |amount, evidence| Finding {
            service: callee,
            instance: None,
            operation: None,
            kind: Kind::Mesh,
            amount,
            evidence,
            exemplars: Vec::new(),
        };
        if let Some((expected, extra)) = excess(
            normal.retries,
            normal.calls,
            abnormal.retries,
            abnormal.calls,
        ) {
            let evidence = Evidence::Retries {
                retries: abnormal.retries,
                expected,
                share: 0.0,
            };
            findings.push(finding(extra, evidence));
        }
        let events = |m: &MeshTally| m.ejections + m.breaker_open;
        if let Some((expected, extra)) = excess(
            events(&normal),
            normal.calls,
            events(&abnormal),
            abnormal.calls,
        ) {
            let evidence = Evidence::Resilience {
                ejections: abnormal.ejections,
                breaker_open: abnormal.breaker_open,
                expected,
                share: 0.0,
            };
            findings.push(finding(extra, evidence));
        }
    }
    findings
}

/// Time outside the callee that grew on calls between two instances: the
/// wire or a queue between them. Which end is at fault is told by which of
/// them is common to the slow pairs: an instance all of whose pairs slowed
/// takes more of the blame than one with a single slow pair among many;
/// the callee takes a little more when the two are alike.
fn network_delays(input: &RcaInput, tallies: &Tallies) -> Vec<Finding> {
    let mut slow = Vec::new();
    // (service, instance) -> (abnormal calls on slow pairs, all abnormal calls).
    let mut ends: HashMap<(Name, Option<Name>), (u64, u64)> = HashMap::default();
    for (&(caller, caller_instance, callee, callee_instance), call) in &tallies.calls {
        let calls = call.outside_ms.abnormal.n;
        let hit = grew(&call.outside_ms.normal, &call.outside_ms.abnormal);
        for end in [(caller, caller_instance), (callee, callee_instance)] {
            let counts = ends.entry(end).or_default();
            counts.1 += calls;
            if hit.is_some() {
                counts.0 += calls;
            }
        }
        if let Some(means) = hit {
            slow.push((
                (caller, caller_instance, callee, callee_instance),
                means,
                call,
            ));
        }
    }
    let share = |end| {
        let (hit, all) = ends.get(&end).copied().unwrap_or_default();
        hit as f64 / all.max(1) as f64
    };
    let name = |service: Name, instance: Option<Name>| match instance {
        Some(instance) => format!("{} ({})", input.text(service), input.text(instance)),
        None => input.text(service).to_owned(),
    };
    let mut findings = Vec::new();
    for ((caller, caller_instance, callee, callee_instance), (before, after), call) in slow {
        let calls = call.outside_ms.abnormal.n;
        let total = (after - before) * calls as f64;
        let caller_weight = share((caller, caller_instance));
        let callee_weight = 1.5 * share((callee, callee_instance));
        for (service, instance, weight) in [
            (caller, caller_instance, caller_weight),
            (callee, callee_instance, callee_weight),
        ] {
            let amount = total * weight / (caller_weight + callee_weight).max(f64::MIN_POSITIVE);
            if amount <= 0.0 {
                continue;
            }
            findings.push(Finding {
                service,
                instance,
                operation: None,
                kind: Kind::Latency,
                amount,
                evidence: Evidence::NetworkDelay {
                    caller: name(caller, caller_instance),
                    callee: name(callee, callee_instance),
                    normal_ms: before,
                    abnormal_ms: after,
                    calls,
                    share: 0.0,
                },
                exemplars: exemplar_ids(&call.slowest),
            });
        }
    }
    findings
}

/// Operations whose requests stopped calling a service they called
/// before (a failed call still counts as made): a change in the caller (a deploy, a flag), not in the
/// callee, whose other callers still reach it.
fn missing_calls(input: &RcaInput, tallies: &Tallies) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (&(service, operation, callee), calls) in &tallies.fan_out {
        let Some(requests) = tallies.requests.get(&(service, operation)) else {
            continue;
        };
        if requests.normal < 4 * MIN_SAMPLES || requests.abnormal < 4 * MIN_SAMPLES {
            continue;
        }
        let before = calls.normal as f64 / requests.normal as f64;
        let after = calls.abnormal as f64 / requests.abnormal as f64;
        if before < 0.2 || after > MISSING_SHARE * before {
            continue;
        }
        findings.push(Finding {
            service,
            instance: None,
            operation: Some(operation),
            kind: Kind::MissingCalls,
            amount: (before - after) * requests.abnormal as f64,
            evidence: Evidence::MissingCall {
                operation: input.text(operation).to_owned(),
                to: input.text(callee).to_owned(),
                normal_per_request: before,
                abnormal_per_request: after,
                requests: requests.abnormal,
                share: 0.0,
            },
            exemplars: Vec::new(),
        });
    }
    findings
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Whether a metric measures a service's own resources (CPU, memory),
/// which move where the fault is, rather than symptoms (latency, errors)
/// that also move in every caller.
fn is_resource(metric: &str) -> bool {
    metric.contains("cpu") || metric.contains("memory")
}

/// Metrics whose median in the abnormal window is far from the normal
/// median, in robust spreads (MAD, at least 5 % of the median and 1 % of
/// the metric's largest median across services, so a near-idle series
/// does not move by a hair and count). Resources count only when they
/// rise (a fault burns CPU or leaks memory; a service that gets less work
/// uses less). Symptoms count half as much, and not at all beside traces,
/// which show the same symptoms call by call.
pub(crate) fn from_metrics(input: &RcaInput, windows: &Windows) -> Vec<Finding> {
    let with_traces = !input.spans.is_empty();
    type Values = (Vec<f64>, Vec<f64>);
    let mut series: BTreeMap<(Name, Option<Name>, Name), Values> = BTreeMap::new();
    for point in &input.metrics {
        if !point.value.is_finite() {
            continue;
        }
        let abnormal = windows.in_abnormal(point.time);
        if !abnormal && !windows.in_normal(point.time) {
            continue;
        }
        let values = series
            .entry((point.service, point.instance, point.metric))
            .or_default();
        if abnormal {
            values.1.push(point.value);
        } else {
            values.0.push(point.value);
        }
    }
    let mut medians = Vec::new();
    let mut largest: HashMap<Name, f64> = HashMap::default();
    for ((service, instance, metric), (mut normal, mut abnormal)) in series {
        if normal.len() < MIN_SAMPLES as usize || abnormal.len() < 2 {
            continue;
        }
        let before = median(&mut normal);
        let mut deviations: Vec<f64> = normal.iter().map(|v| (v - before).abs()).collect();
        let mad = 1.4826 * median(&mut deviations);
        let after = median(&mut abnormal);
        let top = largest.entry(metric).or_default();
        *top = top.max(before.abs());
        medians.push((service, instance, metric, before, after, mad));
    }
    let mut findings = Vec::new();
    for (service, instance, metric, before, after, mad) in medians {
        let name = input.text(metric);
        let resource = is_resource(name);
        let weight = match (resource, with_traces) {
            (true, _) => 1.0,
            (false, false) => 0.5,
            (false, true) => continue,
        };
        let spread = mad
            .max(0.05 * before.abs())
            .max(0.01 * largest[&metric])
            .max(f64::MIN_POSITIVE);
        // Capped: a series flat at zero that moves would be infinitely far.
        let z = ((after - before) / spread).clamp(-MAX_Z, MAX_Z);
        if z.abs() < METRIC_Z || (resource && z < 0.0) {
            continue;
        }
        findings.push(Finding {
            service,
            instance,
            operation: None,
            kind: Kind::Metrics,
            amount: weight * z.abs(),
            evidence: Evidence::Metric {
                metric: name.to_owned(),
                instance: instance.map(|i| input.text(i).to_owned()),
                normal: before,
                abnormal: after,
                z,
                share: 0.0,
            },
            exemplars: Vec::new(),
        });
    }
    findings
}
