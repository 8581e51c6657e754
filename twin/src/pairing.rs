//! Pairs the two halves of every call across services.
//!
//! A CLIENT (or PRODUCER) span and the SERVER (or CONSUMER) span it caused
//! are reported by different services, in different batches, in either
//! order. Every span is remembered by its own key, as a possible parent;
//! callee spans whose parent has not arrived wait as orphans keyed by their
//! parent. Whichever half comes second completes the call. Halves wait
//! between one and two `pair_wait`s of twin time (two generations, see
//! ADR 002). Expired callers with a hint of their callee (`peer.service`,
//! `db.system`, ...) become calls to a virtual node.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use meshtwin_model::ids::SpanKey;
use meshtwin_model::series::TwinCounters;
use meshtwin_model::span::{PeerHint, Span, SpanKind};

use crate::graph::NodeRef;

/// One side of a call, reduced to what the graph records.
#[derive(Debug, Clone)]
pub(crate) struct Half {
    /// The node of the service that reported the span.
    pub(crate) node: NodeRef,
    pub(crate) kind: SpanKind,
    /// End time, capped at the arrival clock.
    pub(crate) end: u64,
    pub(crate) duration: u64,
    pub(crate) failed: bool,
    pub(crate) mtls: bool,
}

impl Half {
    pub(crate) fn new(span: &Span, node: NodeRef, end: u64) -> Self {
        Self {
            node,
            kind: span.kind,
            end,
            duration: span.duration_nanos(),
            failed: span.failed,
            mtls: span.mtls,
        }
    }
}

/// A call the pairing found.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// A CLIENT/PRODUCER span and its SERVER/CONSUMER span.
    Paired { caller: Half, callee: Half },
    /// A SERVER/CONSUMER span whose parent, in another service, is not a
    /// caller span (an INTERNAL span, or no span kind).
    FromParent { parent: NodeRef, callee: Half },
    /// A caller span whose callee reports no spans.
    Virtual { caller: Half, hint: PeerHint },
}

#[derive(Debug)]
struct Parent {
    half: Half,
    hint: Option<Box<PeerHint>>,
    paired: bool,
}

/// Callee spans waiting for one parent: almost always just one.
#[derive(Debug)]
enum Orphans {
    One(Half),
    Many(Vec<Half>),
}

impl Orphans {
    fn push(&mut self, callee: Half) {
        match self {
            Self::One(first) => {
                let first = first.clone();
                *self = Self::Many(vec![first, callee]);
            }
            Self::Many(all) => all.push(callee),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(all) => all.len(),
        }
    }

    fn into_vec(self) -> Vec<Half> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(all) => all,
        }
    }
}

/// The halves that arrived during one `pair_wait` period.
#[derive(Default)]
struct Generation {
    parents: HashMap<SpanKey, Parent, RandomState>,
    orphans: HashMap<SpanKey, Orphans, RandomState>,
    orphan_count: usize,
    /// Twin time of the latest insertion.
    newest: u64,
}

impl Generation {
    fn len(&self) -> usize {
        self.parents.len() + self.orphan_count
    }

    fn take_orphans(&mut self, key: &SpanKey) -> Option<Orphans> {
        let orphans = self.orphans.remove(key)?;
        self.orphan_count -= orphans.len();
        Some(orphans)
    }

    /// Empties the generation, turning unpaired callers into virtual calls
    /// and counting what expired; keeps the tables' memory for reuse.
    fn expire(&mut self, counters: &mut TwinCounters, calls: &mut Vec<Call>) -> usize {
        let expired = self.len();
        for (_, parent) in self.parents.drain() {
            if !parent.half.kind.is_caller() || parent.paired {
                continue;
            }
            match parent.hint {
                Some(hint) => {
                    counters.virtual_edges += 1;
                    calls.push(Call::Virtual {
                        caller: parent.half,
                        hint: *hint,
                    });
                }
                None => counters.unpaired_callers_expired += 1,
            }
        }
        counters.unpaired_callees_expired += self.orphan_count as u64;
        self.orphans.clear();
        self.orphan_count = 0;
        self.newest = 0;
        expired
    }
}

/// The pending halves in two generations. New halves join the current
/// one; after `pair_wait` it becomes the previous one, which expires as a
/// whole once its newest half has waited `pair_wait`. So every half waits
/// at least one `pair_wait` and about two at most. Reaching `max_pending`
/// expires the previous generation early.
pub(crate) struct Pairing {
    wait: u64,
    max_pending: usize,
    current: Generation,
    previous: Generation,
    /// Twin time at which `current` began.
    began: Option<u64>,
}

impl Pairing {
    pub(crate) fn new(wait: u64, max_pending: usize) -> Self {
        Self {
            wait,
            max_pending,
            current: Generation::default(),
            previous: Generation::default(),
            began: None,
        }
    }

    /// Spans waiting for their other half.
    pub(crate) fn pending(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Offers one span at twin time `now`; completed calls go to `calls`.
    pub(crate) fn offer(
        &mut self,
        span: &Span,
        half: Half,
        now: u64,
        counters: &mut TwinCounters,
        calls: &mut Vec<Call>,
    ) {
        self.began.get_or_insert(now);
        while self.pending() >= self.max_pending {
            if self.previous.len() == 0 {
                self.start_generation(now);
            }
            counters.pending_evicted += self.previous.expire(counters, calls) as u64;
        }
        self.current.newest = self.current.newest.max(now);
        if span.kind.is_callee()
            && let Some(caller_key) = span.caller_key()
        {
            self.offer_callee(caller_key, half.clone(), counters, calls);
        }
        self.offer_parent(span, half, counters, calls);
    }

    fn parent_mut(&mut self, key: &SpanKey) -> Option<(&mut Parent, bool)> {
        if let Some(parent) = self.current.parents.get_mut(key) {
            return Some((parent, true));
        }
        self.previous.parents.get_mut(key).map(|p| (p, false))
    }

    fn offer_callee(
        &mut self,
        caller_key: SpanKey,
        callee: Half,
        counters: &mut TwinCounters,
        calls: &mut Vec<Call>,
    ) {
        let Some((parent, in_current)) = self.parent_mut(&caller_key) else {
            let generation = &mut self.current;
            generation.orphan_count += 1;
            match generation.orphans.get_mut(&caller_key) {
                Some(waiting) => waiting.push(callee),
                None => {
                    generation.orphans.insert(caller_key, Orphans::One(callee));
                }
            }
            return;
        };
        resolve(parent, callee, counters, calls);
        if parent.half.kind == SpanKind::Client {
            let generation = if in_current {
                &mut self.current
            } else {
                &mut self.previous
            };
            generation.parents.remove(&caller_key);
        }
    }

    /// Completes the orphans waiting for this span, then remembers it as a
    /// possible parent of spans still to come.
    fn offer_parent(
        &mut self,
        span: &Span,
        half: Half,
        counters: &mut TwinCounters,
        calls: &mut Vec<Call>,
    ) {
        let key = span.key();
        let mut parent = Parent {
            half,
            hint: span.peer.clone().map(Box::new),
            paired: false,
        };
        for generation in [&mut self.current, &mut self.previous] {
            if let Some(waiting) = generation.take_orphans(&key) {
                for callee in waiting.into_vec() {
                    resolve(&mut parent, callee, counters, calls);
                }
            }
        }
        match (&parent.half.kind, &parent.hint) {
            (SpanKind::Client, _) if parent.paired => return,
            (SpanKind::Client, Some(hint)) if matches!(**hint, PeerHint::Database { .. }) => {
                // Databases report no spans: the call is complete now.
                counters.virtual_edges += 1;
                calls.push(Call::Virtual {
                    caller: parent.half,
                    hint: *parent.hint.expect("matched above"),
                });
                return;
            }
            _ => {}
        }
        self.current.parents.insert(key, parent);
    }

    /// Expires the previous generation once its newest half has waited
    /// `pair_wait` by twin time `now`, and starts a new generation once the
    /// current one is `pair_wait` old.
    pub(crate) fn expire(&mut self, now: u64, counters: &mut TwinCounters, calls: &mut Vec<Call>) {
        let wait = self.wait;
        let due = |generation: &Generation| generation.newest.saturating_add(wait) <= now;
        if due(&self.previous) {
            self.previous.expire(counters, calls);
        }
        let current_is_old = self
            .began
            .is_some_and(|began| began.saturating_add(self.wait) <= now);
        if current_is_old && self.previous.len() == 0 {
            self.start_generation(now);
            if due(&self.previous) {
                self.previous.expire(counters, calls);
            }
        }
    }

    /// The current generation becomes the previous one (which must be
    /// empty, and lends its tables' memory to the new current one).
    fn start_generation(&mut self, now: u64) {
        std::mem::swap(&mut self.previous, &mut self.current);
        self.began = Some(now);
    }
}

fn resolve(parent: &mut Parent, callee: Half, counters: &mut TwinCounters, calls: &mut Vec<Call>) {
    if parent.half.kind.is_caller() {
        parent.paired = true;
        counters.pairs_matched += 1;
        calls.push(Call::Paired {
            caller: parent.half.clone(),
            callee,
        });
    } else if parent.half.node != callee.node {
        counters.pairs_internal_parent += 1;
        calls.push(Call::FromParent {
            parent: parent.half.node,
            callee,
        });
    }
}

#[cfg(test)]
mod tests;
