//! Pairs the two halves of every call across services.
//!
//! A CLIENT (or PRODUCER) span and the SERVER (or CONSUMER) span it caused
//! are reported by different services, in different batches, in either
//! order. Every span is remembered by its own key for `pair_wait` of twin
//! time, as a possible parent; callee spans whose parent has not arrived
//! wait as orphans keyed by their parent. Whichever half comes second
//! completes the call. Expired callers with a hint of their callee
//! (`peer.service`, `db.system`, ...) become calls to a virtual node.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use foldhash::fast::RandomState;
use meshtwin_model::ids::SpanKey;
use meshtwin_model::series::TwinCounters;
use meshtwin_model::span::{PeerHint, ServiceIdentity, Span, SpanKind};

/// One side of a call, reduced to what the graph records.
#[derive(Debug, Clone)]
pub(crate) struct Half {
    pub(crate) service: Arc<ServiceIdentity>,
    pub(crate) kind: SpanKind,
    /// End time, capped at the arrival clock.
    pub(crate) end: u64,
    pub(crate) duration: u64,
    pub(crate) failed: bool,
}

impl Half {
    pub(crate) fn new(span: &Span, end: u64) -> Self {
        Self {
            service: span.service.clone(),
            kind: span.kind,
            end,
            duration: span.duration_nanos(),
            failed: span.failed,
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
    FromParent {
        parent: Arc<ServiceIdentity>,
        callee: Half,
    },
    /// A caller span whose callee reports no spans.
    Virtual { caller: Half, hint: PeerHint },
}

#[derive(Debug)]
struct Parent {
    half: Half,
    hint: Option<Box<PeerHint>>,
    inserted: u64,
    paired: bool,
}

#[derive(Debug)]
struct Orphans {
    inserted: u64,
    callees: Vec<Half>,
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Parents,
    Orphans,
}

/// The pending halves, bounded by `max_pending`.
pub(crate) struct Pairing {
    wait: u64,
    max_pending: usize,
    parents: HashMap<SpanKey, Parent, RandomState>,
    orphans: HashMap<SpanKey, Orphans, RandomState>,
    orphan_count: usize,
    /// Insertion order of both tables, for expiry and eviction.
    queue: VecDeque<(u64, SpanKey, Table)>,
}

impl Pairing {
    pub(crate) fn new(wait: u64, max_pending: usize) -> Self {
        Self {
            wait,
            max_pending,
            parents: HashMap::default(),
            orphans: HashMap::default(),
            orphan_count: 0,
            queue: VecDeque::new(),
        }
    }

    /// Spans waiting for their other half.
    pub(crate) fn pending(&self) -> usize {
        self.parents.len() + self.orphan_count
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
        if span.kind.is_callee()
            && let Some(caller_key) = span.caller_key()
        {
            self.offer_callee(caller_key, half.clone(), now, counters, calls);
        }
        self.offer_parent(span, half, now, counters, calls);
    }

    fn offer_callee(
        &mut self,
        caller_key: SpanKey,
        callee: Half,
        now: u64,
        counters: &mut TwinCounters,
        calls: &mut Vec<Call>,
    ) {
        let Some(parent) = self.parents.get_mut(&caller_key) else {
            self.make_room(counters, calls);
            let entry = self.orphans.entry(caller_key).or_insert_with(|| Orphans {
                inserted: now,
                callees: Vec::new(),
            });
            if entry.callees.is_empty() {
                self.queue.push_back((now, caller_key, Table::Orphans));
            }
            entry.callees.push(callee);
            self.orphan_count += 1;
            return;
        };
        resolve(parent, callee, counters, calls);
        if parent.half.kind == SpanKind::Client {
            self.parents.remove(&caller_key);
        }
    }

    /// Completes the orphans waiting for this span, then remembers it as a
    /// possible parent of spans still to come.
    fn offer_parent(
        &mut self,
        span: &Span,
        half: Half,
        now: u64,
        counters: &mut TwinCounters,
        calls: &mut Vec<Call>,
    ) {
        let key = span.key();
        let hint = span.peer.clone().map(Box::new);
        let mut parent = Parent {
            half,
            hint,
            inserted: now,
            paired: false,
        };
        if let Some(waiting) = self.orphans.remove(&key) {
            self.orphan_count -= waiting.callees.len();
            for callee in waiting.callees {
                resolve(&mut parent, callee, counters, calls);
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
        self.make_room(counters, calls);
        self.queue.push_back((now, key, Table::Parents));
        self.parents.insert(key, parent);
    }

    /// Expires every half that has waited `pair_wait` by twin time `now`.
    pub(crate) fn expire(&mut self, now: u64, counters: &mut TwinCounters, calls: &mut Vec<Call>) {
        while let Some(&(inserted, _, _)) = self.queue.front() {
            if inserted.saturating_add(self.wait) > now {
                break;
            }
            self.expire_front(counters, calls);
        }
    }

    /// Evicts the oldest pending half when the limit is reached.
    fn make_room(&mut self, counters: &mut TwinCounters, calls: &mut Vec<Call>) {
        while self.pending() >= self.max_pending && !self.queue.is_empty() {
            if self.expire_front(counters, calls) {
                counters.pending_evicted += 1;
            }
        }
    }

    /// Expires the oldest queue entry; false if it was already resolved.
    fn expire_front(&mut self, counters: &mut TwinCounters, calls: &mut Vec<Call>) -> bool {
        let Some((inserted, key, table)) = self.queue.pop_front() else {
            return false;
        };
        match table {
            Table::Parents => {
                let current = self.parents.get(&key).map(|p| p.inserted);
                if current != Some(inserted) {
                    return false;
                }
                let parent = self.parents.remove(&key).expect("checked above");
                if parent.half.kind.is_caller() && !parent.paired {
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
                true
            }
            Table::Orphans => {
                let current = self.orphans.get(&key).map(|o| o.inserted);
                if current != Some(inserted) {
                    return false;
                }
                let orphans = self.orphans.remove(&key).expect("checked above");
                self.orphan_count -= orphans.callees.len();
                counters.unpaired_callees_expired += orphans.callees.len() as u64;
                true
            }
        }
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
    } else if parent.half.service.node_id != callee.service.node_id {
        counters.pairs_internal_parent += 1;
        calls.push(Call::FromParent {
            parent: parent.half.service.clone(),
            callee,
        });
    }
}
