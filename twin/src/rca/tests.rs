//! Properties of the ranking on generated call trees: a fault on a leaf
//! ranks the leaf first whatever the tree, the ranking does not depend
//! on the order spans arrive in, and metrics alone point at the service
//! whose CPU rose.

use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::input::{Kind, MetricPoint, RcaInput, Span, Windows};
use super::{rank_services, root_causes};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;
const TRACES: u64 = 150;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Slow,
    Failing,
    /// Nothing in the leaf's spans; the mesh turns some calls away.
    TurnedAway,
}

/// A call tree: `callers[i]` calls service `i + 1`; service 0 is the entry.
#[derive(Debug, Clone)]
struct Tree {
    callers: Vec<usize>,
}

impl Tree {
    fn services(&self) -> usize {
        self.callers.len() + 1
    }

    fn callees(&self, of: usize) -> impl Iterator<Item = usize> + '_ {
        (1..self.services()).filter(move |&c| self.callers[c - 1] == of)
    }

    fn leaves(&self) -> Vec<usize> {
        (1..self.services())
            .filter(|&s| self.callees(s).next().is_none())
            .collect()
    }
}

struct Builder<'a> {
    tree: &'a Tree,
    input: RcaInput,
    rng: ChaCha8Rng,
    next_span: u64,
    fault: Option<(usize, Fault)>,
}

impl Builder<'_> {
    /// Spans of service `s`'s SERVER span starting at `start` under
    /// `parent`, its calls in sequence; returns its end and whether it failed.
    fn serve(&mut self, trace: u128, s: usize, parent: u64, start: u64) -> (u64, bool) {
        self.next_span += 1;
        let id = self.next_span;
        let mut own = (1.0 + s as f64 % 4.0) * MS as f64 * self.rng.random_range(0.8..1.2);
        let mut failed = false;
        if let Some((faulty, fault)) = self.fault
            && faulty == s
        {
            match fault {
                Fault::Slow => own *= 5.0,
                Fault::Failing => failed = self.rng.random_bool(0.5),
                Fault::TurnedAway => {}
            }
        }
        let mut at = start + own as u64 / 2;
        let callees: Vec<usize> = self.tree.callees(s).collect();
        for callee in callees {
            self.next_span += 1;
            let client = self.next_span;
            let (end, callee_failed) = self.serve(trace, callee, client, at + MS / 10);
            let end = end + MS / 10;
            self.push(
                trace,
                client,
                id,
                s,
                Kind::Client,
                Some(callee),
                at,
                end,
                callee_failed,
            );
            failed |= callee_failed;
            at = end;
        }
        let end = at + own as u64 / 2;
        self.push(trace, id, parent, s, Kind::Server, None, start, end, failed);
        (end, failed)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        trace: u128,
        span: u64,
        parent: u64,
        s: usize,
        kind: Kind,
        peer: Option<usize>,
        start: u64,
        end: u64,
        error: bool,
    ) {
        let service = self.input.name(&format!("svc-{s}"));
        let instance = Some(self.input.name(&format!("svc-{s}-0")));
        let operation = self.input.name(&format!("op-{s}"));
        let peer = peer.map(|p| self.input.name(&format!("svc-{p}")));
        self.input.spans.push(Span {
            trace,
            span,
            parent,
            service,
            instance,
            operation,
            kind,
            peer,
            start,
            end,
            error,
            retries: 0,
            ejections: 0,
            breaker_open: false,
        });
    }
}

/// Normal traffic for 100 s, then 100 s with `fault` on `leaf`.
fn case(tree: &Tree, leaf: usize, fault: Fault, seed: u64) -> (RcaInput, Windows) {
    let mut builder = Builder {
        tree,
        input: RcaInput::default(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        next_span: 0,
        fault: None,
    };
    for t in 0..2 * TRACES {
        builder.fault = (t >= TRACES).then_some((leaf, fault));
        let start = t * 100 * SECOND / TRACES;
        builder.serve(u128::from(t) + 1, 0, 0, start);
    }
    let windows = Windows {
        normal: (0, 100 * SECOND),
        abnormal: (100 * SECOND, 200 * SECOND),
    };
    let mut input = builder.input;
    if fault == Fault::TurnedAway {
        let to_leaf = input.name(&format!("svc-{leaf}"));
        let calls = input.spans.iter_mut().filter(|s| {
            s.kind == Kind::Client && s.peer == Some(to_leaf) && windows.in_abnormal(s.start)
        });
        for (i, call) in calls.enumerate() {
            call.breaker_open = i % 3 == 0;
            call.ejections = u32::from(i % 7 == 0);
        }
    }
    (input, windows)
}

fn trees() -> impl Strategy<Value = Tree> {
    (1usize..12)
        .prop_flat_map(|n| (0..n).map(|i| 0..=i).collect::<Vec<_>>())
        .prop_map(|callers| Tree { callers })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_fault_on_a_leaf_ranks_the_leaf_first(
        tree in trees(),
        pick in any::<prop::sample::Index>(),
        failing in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let leaves = tree.leaves();
        let leaf = leaves[pick.index(leaves.len())];
        let fault = if failing { Fault::Failing } else { Fault::Slow };
        let (input, windows) = case(&tree, leaf, fault, seed);
        let ranking = root_causes(&input, &windows);
        prop_assert_eq!(&ranking.causes[0].service, &format!("svc-{leaf}"));
        let path = &ranking.causes[0].path;
        prop_assert_eq!(path.last(), Some(&format!("svc-{leaf}")));
        prop_assert_eq!(path.first(), Some(&"svc-0".to_owned()), "{:?}", path);
        prop_assert!(!ranking.causes[0].exemplars.is_empty());
    }

    #[test]
    fn the_ranking_does_not_depend_on_span_order(
        tree in trees(),
        failing in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let leaf = tree.leaves()[0];
        let fault = if failing { Fault::Failing } else { Fault::Slow };
        let (input, windows) = case(&tree, leaf, fault, seed);
        let first = root_causes(&input, &windows);
        prop_assert_eq!(&first, &root_causes(&input, &windows));
        let mut shuffled = input.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
        for i in (1..shuffled.spans.len()).rev() {
            shuffled.spans.swap(i, rng.random_range(0..=i));
        }
        prop_assert_eq!(&first, &root_causes(&shuffled, &windows));
    }
}

#[test]
fn calls_the_mesh_turns_away_point_at_their_callee() {
    let tree = Tree {
        callers: vec![0, 0, 1, 1],
    };
    let (input, windows) = case(&tree, 4, Fault::TurnedAway, 11);
    let ranking = root_causes(&input, &windows);
    let top = &ranking.causes[0];
    assert_eq!(top.service, "svc-4", "{ranking:?}");
    assert!(
        top.evidence.iter().any(|e| matches!(
            e,
            meshtwin_model::rca::Evidence::Resilience { breaker_open, ejections, .. }
                if *breaker_open > 0 && *ejections > 0
        )),
        "{top:?}"
    );
}

#[test]
fn a_quiet_window_finds_nothing_and_says_so() {
    let tree = Tree {
        callers: vec![0, 0, 1],
    };
    let (input, _) = case(&tree, 3, Fault::Slow, 7);
    // Both windows before the fault.
    let windows = Windows {
        normal: (0, 50 * SECOND),
        abnormal: (50 * SECOND, 100 * SECOND),
    };
    let ranking = root_causes(&input, &windows);
    assert!(
        ranking.causes.iter().all(|c| c.evidence.is_empty()),
        "{ranking:?}"
    );
    assert_eq!(ranking.notes.len(), 1, "{:?}", ranking.notes);
}

#[test]
fn metrics_alone_point_at_the_service_whose_cpu_rose() {
    let mut input = RcaInput::default();
    let cpu = input.name("container.cpu.utilization");
    let latency = input.name("http.server.request.duration");
    for s in 0..5u64 {
        let service = input.name(&format!("svc-{s}"));
        for t in 0..40u64 {
            let abnormal = t >= 20;
            let wobble = 0.01 * ((t * 7 + s) % 5) as f64;
            let hot = abnormal && s == 3;
            let slow = abnormal && s <= 3;
            for (metric, value) in [
                (cpu, if hot { 0.9 } else { 0.2 } + wobble),
                (latency, if slow { 40.0 } else { 10.0 } + wobble),
            ] {
                input.metrics.push(MetricPoint {
                    service,
                    instance: None,
                    metric,
                    time: t * 10 * SECOND,
                    value,
                });
            }
        }
    }
    let windows = Windows {
        normal: (0, 200 * SECOND),
        abnormal: (200 * SECOND, 400 * SECOND),
    };
    let ranked = rank_services(&input, &windows);
    assert_eq!(input.text(ranked[0].0), "svc-3", "{ranked:?}");
}
