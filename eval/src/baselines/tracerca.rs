//! TraceRCA-style (Li et al., IWQoS 2021): a span of work is anomalous
//! when it failed or ran above `mean + 3σ` of its operation's normal
//! duration; in each trace, the anomalous spans with no anomalous work
//! below them are where the anomaly starts. A service's suspicion
//! combines *support* (the share of anomalous traces in which it starts
//! an anomaly) and *confidence* (the share of the traces it appears in
//! where it does), as their harmonic mean.

use foldhash::HashMap;

use crate::baselines::traces::{operation_baselines, too_slow, traces};
use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window, ranked};

pub struct TraceRca;

impl Ranker for TraceRca {
    fn name(&self) -> &'static str {
        "TraceRCA"
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let baselines = operation_baselines(&traces(data, window.normal.0, window.normal.1));
        let mut anomalous_traces = 0u64;
        let mut starts: HashMap<Name, u64> = HashMap::default();
        let mut appears: HashMap<Name, u64> = HashMap::default();
        for trace in traces(data, window.abnormal.0, window.abnormal.1) {
            let anomalous: Vec<bool> = trace
                .work
                .iter()
                .map(|w| {
                    w.error
                        || baselines
                            .get(&(w.service, w.operation))
                            .is_some_and(|b| too_slow(w.duration as f64, *b))
                })
                .collect();
            let mut below = vec![false; trace.work.len()];
            for (i, work) in trace.work.iter().enumerate() {
                if anomalous[i] {
                    let mut at = work.parent;
                    // Bounded by the trace's size (parents form a tree).
                    for _ in 0..trace.work.len() {
                        let Some(p) = at else { break };
                        below[p] = true;
                        at = trace.work[p].parent;
                    }
                }
            }
            let mut seen: Vec<Name> = trace.work.iter().map(|w| w.service).collect();
            seen.sort_unstable();
            seen.dedup();
            for service in &seen {
                *appears.entry(*service).or_default() += 1;
            }
            let mut origins: Vec<Name> = trace
                .work
                .iter()
                .enumerate()
                .filter(|(i, _)| anomalous[*i] && !below[*i])
                .map(|(_, w)| w.service)
                .collect();
            if origins.is_empty() {
                continue;
            }
            anomalous_traces += 1;
            origins.sort_unstable();
            origins.dedup();
            for service in origins {
                *starts.entry(service).or_default() += 1;
            }
        }
        let scores = data
            .candidates()
            .into_iter()
            .map(|service| {
                let hits = starts.get(&service).copied().unwrap_or(0) as f64;
                let support = hits / anomalous_traces.max(1) as f64;
                let confidence = hits / appears.get(&service).copied().unwrap_or(0).max(1) as f64;
                let score = if hits > 0.0 {
                    2.0 * support * confidence / (support + confidence)
                } else {
                    0.0
                };
                (service, score)
            })
            .collect();
        ranked(data, scores)
    }
}
