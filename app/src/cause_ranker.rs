//! The web stage's root-cause ranking: rows read from the store, made the
//! twin's RCA input, ranked.

use meshtwin_model::rca::RootCauses;
use meshtwin_query::window_rows::{WindowPoint, WindowSpan};
use meshtwin_twin::rca::{self, MetricPoint, RcaInput, Span, SpanKind, Windows};
use meshtwin_web::CauseRanker;

pub(crate) struct TwinRanker;

fn kind(text: &str) -> SpanKind {
    match text {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

fn hex<T: TryFrom<u128>>(text: &str) -> Option<T> {
    u128::from_str_radix(text, 16)
        .ok()
        .and_then(|n| T::try_from(n).ok())
}

/// `server.address` without a port: the callee's name.
fn host(peer: &str) -> &str {
    match peer.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => peer,
    }
}

/// An attribute holding a count, 0 when absent or unreadable.
fn count(text: Option<&str>) -> u32 {
    text.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

fn nanos(at: i64) -> u64 {
    u64::try_from(at).unwrap_or(0)
}

/// The rows as ranking input; rows with unreadable IDs are left out.
fn input(spans: &[WindowSpan], points: &[WindowPoint]) -> RcaInput {
    let mut input = RcaInput::default();
    for row in spans {
        let (Some(trace), Some(span)) = (hex::<u128>(&row.trace_id), hex::<u64>(&row.span_id))
        else {
            continue;
        };
        let span = Span {
            trace,
            span,
            parent: row.parent_span_id.as_deref().and_then(hex).unwrap_or(0),
            service: input.name(&row.service),
            instance: row.instance.as_deref().map(|i| input.name(i)),
            operation: input.name(&row.name),
            kind: kind(&row.kind),
            peer: row.peer.as_deref().map(|p| input.name(host(p))),
            start: nanos(row.start_unix_nanos),
            end: nanos(row.end_unix_nanos),
            error: row.error,
            retries: count(row.retries.as_deref()),
            ejections: count(row.ejections.as_deref()),
            breaker_open: row.breaker.as_deref() == Some("open"),
        };
        input.spans.push(span);
    }
    for row in points {
        let point = MetricPoint {
            service: input.name(&row.service),
            instance: row.instance.as_deref().map(|i| input.name(i)),
            metric: input.name(&row.name),
            time: nanos(row.time_unix_nanos),
            value: row.value,
        };
        input.metrics.push(point);
    }
    input
}

impl CauseRanker for TwinRanker {
    fn rank(
        &self,
        spans: Vec<WindowSpan>,
        points: Vec<WindowPoint>,
        normal: (i64, i64),
        abnormal: (i64, i64),
    ) -> RootCauses {
        let windows = Windows {
            normal: (nanos(normal.0), nanos(normal.1)),
            abnormal: (nanos(abnormal.0), nanos(abnormal.1)),
        };
        rca::root_causes(&input(&spans, &points), &windows)
    }
}
