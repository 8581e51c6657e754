//! One pass over the traces of both windows, counting what the evidence
//! is computed from: per service, instance and operation the *work* done
//! (own time, errors that start there), per pair of instances the time a
//! call spends outside its callee, and per operation the calls it makes.
//!
//! A span of work is a SERVER or CONSUMER span, or a CLIENT or PRODUCER
//! span to a callee that left no span of its own (a database, a broker, a
//! service that never got the call): that callee's work, as its caller saw it.

use foldhash::{HashMap, HashMapExt};

use super::input::{Kind, Name, RcaInput, Span, Windows};

/// Running count, sum and sum of squares.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Moments {
    pub(crate) n: u64,
    pub(crate) sum: f64,
    pub(crate) sum_sq: f64,
}

impl Moments {
    pub(crate) fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    pub(crate) fn std(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let mean = self.mean();
        ((self.sum_sq / self.n as f64 - mean * mean).max(0.0) * self.n as f64 / (self.n - 1) as f64)
            .sqrt()
    }
}

/// The two windows' values of one quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Pair<T> {
    pub(crate) normal: T,
    pub(crate) abnormal: T,
}

impl<T> Pair<T> {
    fn get(&mut self, abnormal: bool) -> &mut T {
        if abnormal {
            &mut self.abnormal
        } else {
            &mut self.normal
        }
    }
}

/// `(service, instance, operation)` of work.
pub(crate) type WorkKey = (Name, Option<Name>, Name);
/// `(caller service, caller instance, callee service, callee instance)`.
pub(crate) type CallKey = (Name, Option<Name>, Name, Option<Name>);

/// Up to three traces, the ones with the largest value first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Exemplars(pub(crate) Vec<(f64, u128)>);

impl Exemplars {
    fn offer(&mut self, value: f64, trace: u128) {
        if self.0.iter().any(|(_, t)| *t == trace) {
            return;
        }
        self.0.push((value, trace));
        self.0
            .sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        self.0.truncate(3);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WorkTally {
    /// Own time in ms.
    pub(crate) own_ms: Pair<Moments>,
    /// Measured by callers' CLIENT spans (a callee without spans): its
    /// time is judged per calling instance, in `calls`, not here.
    pub(crate) seen_by_callers: bool,
    /// Errors that start in this work.
    pub(crate) error_origins: Pair<u64>,
    pub(crate) slowest: Exemplars,
    pub(crate) failing: Exemplars,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CallTally {
    /// Time outside the callee, in ms.
    pub(crate) outside_ms: Pair<Moments>,
    pub(crate) slowest: Exemplars,
}

/// Calls to one service and what the mesh did about them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MeshTally {
    pub(crate) calls: u64,
    pub(crate) retries: u64,
    pub(crate) ejections: u64,
    pub(crate) breaker_open: u64,
}

/// Per service: how its work went as a whole (the symptoms a path follows).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ServiceTally {
    pub(crate) duration_ms: Pair<Moments>,
    pub(crate) errors: Pair<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Tallies {
    pub(crate) work: HashMap<WorkKey, WorkTally>,
    pub(crate) calls: HashMap<CallKey, CallTally>,
    /// `(service, operation)`: requests, per window.
    pub(crate) requests: HashMap<(Name, Name), Pair<u64>>,
    /// `(service, operation, callee)`: calls made by those requests (a
    /// call that failed still counts as made).
    pub(crate) fan_out: HashMap<(Name, Name, Name), Pair<u64>>,
    /// Per callee: calls, and the mesh's resilience events on them.
    pub(crate) mesh: HashMap<Name, Pair<MeshTally>>,
    pub(crate) services: HashMap<Name, ServiceTally>,
    /// `(caller, callee)` services with calls in the abnormal window.
    pub(crate) edges: HashMap<(Name, Name), u64>,
    pub(crate) traces: u64,
    pub(crate) spans: u64,
}

impl Tallies {
    /// How much of the abnormal window a kind of evidence is measured
    /// against: requests (errors), milliseconds of work and of calls
    /// (latency), calls (missing calls, mesh signals); `None` for metrics.
    pub(crate) fn extent(&self, kind: super::findings::Kind) -> Option<f64> {
        use super::findings::Kind;
        match kind {
            Kind::Errors => Some(self.work.values().map(|w| w.own_ms.abnormal.n as f64).sum()),
            Kind::Latency => Some(
                self.work
                    .values()
                    .map(|w| w.own_ms.abnormal.sum)
                    .sum::<f64>()
                    + self
                        .calls
                        .values()
                        .map(|c| c.outside_ms.abnormal.sum)
                        .sum::<f64>(),
            ),
            Kind::MissingCalls => Some(self.fan_out.values().map(|c| c.abnormal as f64).sum()),
            Kind::Mesh => Some(self.mesh.values().map(|m| m.abnormal.calls as f64).sum()),
            Kind::Metrics => None,
        }
    }
}

/// Length of the union of `intervals` clipped to `[from, to)`.
fn covered(intervals: &mut [(u64, u64)], from: u64, to: u64) -> u64 {
    intervals.sort_unstable();
    let mut total = 0;
    let mut reach = from;
    for &(start, end) in intervals.iter() {
        let (start, end) = (start.max(reach), end.min(to));
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One trace's spans, with what each is.
struct TraceSpans<'a> {
    spans: Vec<&'a Span>,
    /// Per span: whose work it is, if it is work.
    worker: Vec<Option<(Name, Option<Name>)>>,
    /// Per span: the nearest work above it.
    owner: Vec<Option<usize>>,
    /// Per caller span: the callee spans under it.
    answers: Vec<Vec<usize>>,
}

impl<'a> TraceSpans<'a> {
    fn new(spans: Vec<&'a Span>) -> Self {
        let index: HashMap<u64, usize> =
            spans.iter().enumerate().map(|(i, s)| (s.span, i)).collect();
        let parent = |i: usize| -> Option<usize> {
            let p = spans[i].parent;
            (p != 0).then(|| index.get(&p).copied()).flatten()
        };
        let mut answers = vec![Vec::new(); spans.len()];
        for i in 0..spans.len() {
            if spans[i].kind.is_callee()
                && let Some(p) = parent(i)
                && spans[p].kind.is_caller()
            {
                answers[p].push(i);
            }
        }
        let worker: Vec<Option<(Name, Option<Name>)>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| match s.kind {
                Kind::Server | Kind::Consumer => Some((s.service, s.instance)),
                Kind::Client | Kind::Producer => {
                    s.peer.filter(|_| answers[i].is_empty()).map(|p| (p, None))
                }
                Kind::Internal => None,
            })
            .collect();
        let owner = (0..spans.len())
            .map(|i| {
                let mut at = parent(i);
                // Bounded: a corrupt parent cycle cannot loop forever.
                for _ in 0..spans.len() {
                    match at {
                        Some(p) if worker[p].is_some() => return Some(p),
                        Some(p) => at = parent(p),
                        None => return None,
                    }
                }
                None
            })
            .collect();
        Self {
            spans,
            worker,
            owner,
            answers,
        }
    }
}

impl Tallies {
    /// Counts every trace whose first span starts in one of `windows`.
    pub(crate) fn count(input: &RcaInput, windows: &Windows) -> Self {
        let mut order: Vec<&Span> = input.spans.iter().collect();
        order.sort_unstable_by_key(|s| (s.trace, s.start, s.span));
        let mut tallies = Tallies {
            work: HashMap::with_capacity(256),
            ..Tallies::default()
        };
        for trace in order.chunk_by(|a, b| a.trace == b.trace) {
            let Some(root) = trace.iter().min_by_key(|s| (s.parent != 0, s.start)) else {
                continue;
            };
            let abnormal = if windows.in_abnormal(root.start) {
                true
            } else if windows.in_normal(root.start) {
                false
            } else {
                continue;
            };
            tallies.traces += u64::from(abnormal);
            tallies.spans += trace.len() as u64;
            tallies.add_trace(TraceSpans::new(trace.to_vec()), abnormal);
        }
        tallies
    }

    fn add_trace(&mut self, trace: TraceSpans<'_>, abnormal: bool) {
        let n = trace.spans.len();
        let mut calls_of: Vec<Vec<(u64, u64)>> = vec![Vec::new(); n];
        let mut child_failed = vec![false; n];
        let mut callee_origin: Vec<bool> = vec![false; n];
        for (i, span) in trace.spans.iter().enumerate() {
            let Some(owner) = trace.owner[i] else {
                continue;
            };
            if trace.worker[i].is_some() && span.error {
                child_failed[owner] = true;
            }
            if !span.kind.is_caller() {
                continue;
            }
            calls_of[owner].push((span.start, span.end));
            if span.error {
                child_failed[owner] = true;
            }
            let owner_span = trace.spans[owner];
            let Some((owner_service, owner_instance)) = trace.worker[owner] else {
                continue;
            };
            let answers = &trace.answers[i];
            let callee = match answers.first() {
                Some(&a) => Some(trace.spans[a].service),
                None => span.peer,
            };
            if let Some(callee) = callee {
                let key = (owner_service, owner_span.operation, callee);
                *self.fan_out.entry(key).or_default().get(abnormal) += 1;
                let mesh = self.mesh.entry(callee).or_default().get(abnormal);
                mesh.calls += 1;
                mesh.retries += u64::from(span.retries);
                mesh.ejections += u64::from(span.ejections);
                mesh.breaker_open += u64::from(span.breaker_open);
                if abnormal {
                    *self.edges.entry((owner_service, callee)).or_default() += 1;
                }
            }
            if answers.is_empty()
                && let Some(callee) = span.peer
            {
                // A callee without spans of its own (a database): the whole
                // call is all that is seen of it, per calling instance, so
                // a slow caller instance is told from a slow callee.
                let key = (owner_service, owner_instance, callee, None);
                let tally = self.calls.entry(key).or_default();
                tally.outside_ms.get(abnormal).add(ms(duration(span)));
                if abnormal {
                    tally.slowest.offer(ms(duration(span)), span.trace);
                }
            }
            if let Some(&first) = answers.first() {
                let inside: u64 = answers.iter().map(|&a| duration(trace.spans[a])).sum();
                let outside = ms(duration(span).saturating_sub(inside));
                let callee_span = trace.spans[first];
                let key = (
                    owner_service,
                    owner_instance,
                    callee_span.service,
                    callee_span.instance,
                );
                let tally = self.calls.entry(key).or_default();
                tally.outside_ms.get(abnormal).add(outside);
                if abnormal {
                    tally.slowest.offer(outside, span.trace);
                }
                // A call that failed while its callee answered without
                // failing: timed out or lost on the way; the callee's.
                if span.error && answers.iter().all(|&a| !trace.spans[a].error) {
                    callee_origin[first] = true;
                    child_failed[owner] = true;
                }
            }
        }
        for (i, span) in trace.spans.iter().enumerate() {
            let Some((service, instance)) = trace.worker[i] else {
                continue;
            };
            let own =
                duration(span).saturating_sub(covered(&mut calls_of[i], span.start, span.end));
            let key = (service, instance, span.operation);
            let tally = self.work.entry(key).or_default();
            tally.own_ms.get(abnormal).add(ms(own));
            tally.seen_by_callers |= span.kind.is_caller();
            let origin = (span.error && !child_failed[i]) || callee_origin[i];
            if origin {
                *tally.error_origins.get(abnormal) += 1;
            }
            if abnormal {
                tally.slowest.offer(ms(own), span.trace);
                if origin {
                    tally.failing.offer(1.0, span.trace);
                }
            }
            *self
                .requests
                .entry((service, span.operation))
                .or_default()
                .get(abnormal) += 1;
            let service_tally = self.services.entry(service).or_default();
            service_tally
                .duration_ms
                .get(abnormal)
                .add(ms(duration(span)));
            *service_tally.errors.get(abnormal) += u64::from(span.error);
        }
    }
}

fn duration(span: &Span) -> u64 {
    span.end.saturating_sub(span.start)
}
