//! MicroRank-style (Yu et al., WWW 2021). Traces of the abnormal period
//! are split into normal and abnormal ones (an abnormal trace failed or
//! took longer than `mean + 3σ` of its root operation before the fault).
//! For each set, a personalised PageRank runs over a graph of operations
//! and traces (operation ↔ the traces that cover it, operation → the
//! operations it calls); abnormal traces that cover fewer operations get
//! more of the preference. Each operation's two PageRank weights then
//! scale the spectrum counts (covered by how many abnormal and normal
//! traces), and the Ochiai formula scores it. A service scores its best
//! operation.

use foldhash::{HashMap, HashSet};

use crate::baselines::traces::{Trace, root_baselines, too_slow, traces};
use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window, ranked};

pub struct MicroRank;

const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 30;

type Operation = (Name, Name);

/// PageRank weight of each operation over the graph of `set`.
fn pagerank(set: &[&Trace], abnormal: bool) -> HashMap<Operation, f64> {
    let mut operations: Vec<Operation> = Vec::new();
    let mut index: HashMap<Operation, usize> = HashMap::default();
    let mut covers: Vec<Vec<usize>> = Vec::new(); // per trace: its operations
    let mut calls: HashSet<(usize, usize)> = HashSet::default();
    for trace in set {
        let mut ops: Vec<usize> = Vec::new();
        for work in &trace.work {
            let key = (work.service, work.operation);
            let id = *index.entry(key).or_insert_with(|| {
                operations.push(key);
                operations.len() - 1
            });
            ops.push(id);
        }
        for work in &trace.work {
            if let Some(parent) = work.parent {
                let p = trace.work[parent];
                calls.insert((
                    index[&(p.service, p.operation)],
                    index[&(work.service, work.operation)],
                ));
            }
        }
        ops.sort_unstable();
        ops.dedup();
        covers.push(ops);
    }
    let (n_ops, n_traces) = (operations.len(), covers.len());
    if n_ops == 0 {
        return HashMap::default();
    }
    let mut traces_of: Vec<Vec<usize>> = vec![Vec::new(); n_ops];
    for (t, ops) in covers.iter().enumerate() {
        for &o in ops {
            traces_of[o].push(t);
        }
    }
    let mut callees: Vec<Vec<usize>> = vec![Vec::new(); n_ops];
    let mut sorted_calls: Vec<_> = calls.into_iter().collect();
    sorted_calls.sort_unstable();
    for (from, to) in sorted_calls {
        callees[from].push(to);
    }
    // Preference over trace nodes (indices n_ops..).
    let mut preference = vec![0.0; n_ops + n_traces];
    for (t, ops) in covers.iter().enumerate() {
        preference[n_ops + t] = if abnormal {
            1.0 / ops.len().max(1) as f64
        } else {
            1.0
        };
    }
    let total: f64 = preference.iter().sum();
    preference.iter_mut().for_each(|p| *p /= total);
    let mut rank = preference.clone();
    for _ in 0..ITERATIONS {
        let mut next = vec![0.0; n_ops + n_traces];
        let mut dangling = 0.0;
        for o in 0..n_ops {
            let mass = rank[o];
            let (to_traces, to_ops) = (&traces_of[o], &callees[o]);
            let share_ops = match (to_traces.is_empty(), to_ops.is_empty()) {
                (true, true) => {
                    dangling += mass;
                    continue;
                }
                (true, false) => 1.0,
                (false, true) => 0.0,
                (false, false) => 0.5,
            };
            for &c in to_ops {
                next[c] += mass * share_ops / to_ops.len() as f64;
            }
            for &t in to_traces {
                next[n_ops + t] += mass * (1.0 - share_ops) / to_traces.len() as f64;
            }
        }
        for (t, ops) in covers.iter().enumerate() {
            let mass = rank[n_ops + t];
            if ops.is_empty() {
                dangling += mass;
            }
            for &o in ops {
                next[o] += mass / ops.len() as f64;
            }
        }
        for (i, value) in next.iter_mut().enumerate() {
            *value =
                DAMPING * (*value + dangling * preference[i]) + (1.0 - DAMPING) * preference[i];
        }
        rank = next;
    }
    operations.into_iter().zip(rank).collect()
}

impl Ranker for MicroRank {
    fn name(&self) -> &'static str {
        "MicroRank"
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let expected = root_baselines(&traces(data, window.normal.0, window.normal.1));
        let during = traces(data, window.abnormal.0, window.abnormal.1);
        let (abnormal, normal): (Vec<&Trace>, Vec<&Trace>) = during.iter().partition(|t| {
            t.root_error
                || expected
                    .get(&t.root_operation)
                    .is_some_and(|b| too_slow(t.root_duration as f64, *b))
        });
        let weight_abnormal = pagerank(&abnormal, true);
        let weight_normal = pagerank(&normal, false);
        let count = |set: &[&Trace]| {
            let mut covered: HashMap<Operation, f64> = HashMap::default();
            for trace in set {
                let mut ops: Vec<Operation> = trace
                    .work
                    .iter()
                    .map(|w| (w.service, w.operation))
                    .collect();
                ops.sort_unstable();
                ops.dedup();
                for op in ops {
                    *covered.entry(op).or_default() += 1.0;
                }
            }
            covered
        };
        let (in_abnormal, in_normal) = (count(&abnormal), count(&normal));
        let n_abnormal = abnormal.len() as f64;
        let mut best: HashMap<Name, f64> = HashMap::default();
        for (op, &wa) in &weight_abnormal {
            let wn = weight_normal.get(op).copied().unwrap_or(0.0);
            let a = in_abnormal.get(op).copied().unwrap_or(0.0);
            let n = in_normal.get(op).copied().unwrap_or(0.0);
            let ef = wa * a;
            let nf = wa * (n_abnormal - a);
            let ep = wn * n;
            let ochiai = ef / ((ef + ep) * (ef + nf)).sqrt().max(1e-12);
            let slot = best.entry(op.0).or_insert(0.0);
            *slot = slot.max(ochiai);
        }
        let scores = data
            .candidates()
            .into_iter()
            .map(|s| (s, best.get(&s).copied().unwrap_or(0.0)))
            .collect();
        ranked(data, scores)
    }
}
