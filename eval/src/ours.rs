//! meshtwin's own root-cause ranking (`meshtwin_twin::rca`), from traces
//! and metrics together, and from each alone.

use meshtwin_twin::rca::{self, MetricPoint, RcaInput, Span, SpanKind};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;

use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window, ranked};

/// What the ranking is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    Both,
    TracesOnly,
    MetricsOnly,
}

pub struct Meshtwin(pub Sources);

/// Every variant, in report order.
pub fn all() -> Vec<Box<dyn Ranker>> {
    vec![
        Box::new(Meshtwin(Sources::Both)),
        Box::new(Meshtwin(Sources::TracesOnly)),
        Box::new(Meshtwin(Sources::MetricsOnly)),
    ]
}

fn kind(kind: OtlpKind) -> SpanKind {
    SpanKind::from_otlp(kind as i32)
}

/// The case as ranking input; names keep their numbers.
pub fn input(data: &CaseData, sources: Sources) -> RcaInput {
    let mut input = RcaInput::default();
    for name in &data.names {
        input.name(name);
    }
    if sources != Sources::MetricsOnly {
        input.spans = data
            .spans
            .iter()
            .map(|s| Span {
                trace: s.trace,
                span: s.span,
                parent: s.parent,
                service: s.service,
                instance: s.instance,
                operation: s.operation,
                kind: kind(s.kind),
                peer: s.peer,
                start: s.start,
                end: s.end,
                error: s.error,
                retries: s.retries,
                // The simulation has no proxies: nothing ejects or trips.
                ejections: 0,
                breaker_open: false,
            })
            .collect();
    }
    if sources != Sources::TracesOnly {
        input.metrics = data
            .metrics
            .iter()
            .map(|m| MetricPoint {
                service: m.service,
                instance: m.instance,
                metric: m.metric,
                time: m.time,
                value: m.value,
            })
            .collect();
    }
    input
}

impl Ranker for Meshtwin {
    fn name(&self) -> &'static str {
        match self.0 {
            Sources::Both => "meshtwin",
            Sources::TracesOnly => "meshtwin (traces only)",
            Sources::MetricsOnly => "meshtwin (metrics only)",
        }
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let scores = rca::rank_services(&input(data, self.0), window);
        let score_of = |name: Name| {
            scores
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0.0, |(_, s)| *s)
        };
        let candidates = data
            .candidates()
            .into_iter()
            .map(|name| (name, score_of(name)))
            .collect();
        ranked(data, candidates)
    }
}
