//! Traces of a period as call trees of *work*: each node a span that
//! measures one service's work (see `SpanRow::worker`), linked to the
//! nearest such span above it.

use foldhash::HashMap;

use crate::case_data::{CaseData, Name, SpanRow};

/// A span of work in a trace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Work {
    pub(crate) service: Name,
    pub(crate) operation: Name,
    pub(crate) duration: u64,
    pub(crate) error: bool,
    /// Index (in the trace's `work`) of the nearest work span above.
    pub(crate) parent: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Trace {
    pub(crate) work: Vec<Work>,
    /// Duration and error of the trace's first span (its root, or the
    /// earliest span where propagation broke), and its operation.
    pub(crate) root_duration: u64,
    pub(crate) root_error: bool,
    pub(crate) root_operation: Name,
}

/// Traces whose first span starts in `[from, to)`.
pub(crate) fn traces(data: &CaseData, from: u64, to: u64) -> Vec<Trace> {
    let mut by_trace: HashMap<u128, Vec<&SpanRow>> = HashMap::default();
    for span in &data.spans {
        by_trace.entry(span.trace).or_default().push(span);
    }
    let mut out = Vec::new();
    let mut ids: Vec<u128> = by_trace.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let spans = &by_trace[&id];
        let Some(root) = spans.iter().min_by_key(|s| (s.parent != 0, s.start)) else {
            continue;
        };
        if root.start < from || root.start >= to {
            continue;
        }
        let index: HashMap<u64, &SpanRow> = spans.iter().map(|s| (s.span, *s)).collect();
        let mut work_index: HashMap<u64, usize> = HashMap::default();
        let mut work = Vec::new();
        for span in spans {
            if let Some(service) = span.worker(&data.reports_spans) {
                work_index.insert(span.span, work.len());
                work.push((
                    span.span,
                    Work {
                        service,
                        operation: span.operation,
                        duration: span.duration(),
                        error: span.error,
                        parent: None,
                    },
                ));
            }
        }
        let mut parents = Vec::with_capacity(work.len());
        for (span_id, _) in &work {
            let mut at = index.get(span_id).map(|s| s.parent).unwrap_or(0);
            let mut parent = None;
            // Bounded: a corrupt parent cycle cannot loop forever.
            for _ in 0..spans.len() {
                if at == 0 {
                    break;
                }
                if let Some(&w) = work_index.get(&at) {
                    parent = Some(w);
                    break;
                }
                at = index.get(&at).map(|s| s.parent).unwrap_or(0);
            }
            parents.push(parent);
        }
        for ((_, w), parent) in work.iter_mut().zip(parents) {
            w.parent = parent;
        }
        out.push(Trace {
            work: work.into_iter().map(|(_, w)| w).collect(),
            root_duration: root.duration(),
            root_error: root.error,
            root_operation: root.operation,
        });
    }
    out
}

/// Per `(service, operation)`: mean and standard deviation of the
/// duration of its work in `traces`.
pub(crate) fn operation_baselines(traces: &[Trace]) -> HashMap<(Name, Name), (f64, f64)> {
    let mut samples: HashMap<(Name, Name), Vec<f64>> = HashMap::default();
    for work in traces.iter().flat_map(|t| &t.work) {
        samples
            .entry((work.service, work.operation))
            .or_default()
            .push(work.duration as f64);
    }
    samples
        .into_iter()
        .map(|(key, values)| (key, super::stats::mean_std(&values)))
        .collect()
}

/// Per root operation: mean and standard deviation of trace duration.
pub(crate) fn root_baselines(traces: &[Trace]) -> HashMap<Name, (f64, f64)> {
    let mut samples: HashMap<Name, Vec<f64>> = HashMap::default();
    for trace in traces {
        samples
            .entry(trace.root_operation)
            .or_default()
            .push(trace.root_duration as f64);
    }
    samples
        .into_iter()
        .map(|(key, values)| (key, super::stats::mean_std(&values)))
        .collect()
}

/// Above `mean + 3σ`, with σ at least 5 % of the mean (a constant
/// baseline would otherwise flag any jitter).
pub(crate) fn too_slow(duration: f64, (mean, std): (f64, f64)) -> bool {
    duration > mean + 3.0 * std.max(0.05 * mean)
}
