//! Root-cause ranking over the span store.
//!
//! `POST /api/v1/rca` with `{"from": T, "to": T}` (RFC 3339 or Unix
//! seconds; optional `normal_from`/`normal_to`): ranks the candidates of
//! `[from, to)` against a normal window, by default the one just before
//! it, as long as the abnormal window (at least 5, at most 30 minutes).
//! Answered from the spans and metrics stored for those times, however
//! old. `GET /api/v1/incidents/{id}/rca` does the same over an incident:
//! from a minute before it opened to when it was last updated.
//!
//! Each cause also lists the detectors' alarms on its node in the window
//! (of the latest 1,000 the twin holds).
//!
//! Errors are JSON `{error, kind}`: 400, 404 (no such incident), 503 (no
//! store), 504 (the store read timed out).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshtwin_model::anomaly::Subject;
use meshtwin_model::rca::RootCauses;
use meshtwin_query::traces::TimeRange;
use meshtwin_query::window_rows::{WindowPoint, WindowSpan};
use serde::Deserialize;

use crate::WebState;
use crate::instant::parse_instant;
use crate::query::{error_response, unavailable};

const MINUTE: i64 = 60 * 1_000_000_000;
/// The longest abnormal window one request ranks.
const MAX_WINDOW: i64 = 60 * MINUTE;
/// Spans read per window, metric points over both.
const MAX_SPANS: usize = 300_000;
const MAX_POINTS: usize = 200_000;

/// The ranking itself, done by the composition root with the twin's RCA.
pub trait CauseRanker: Send + Sync {
    /// Ranks from the rows of both windows (`[from, to)` Unix nanoseconds).
    fn rank(
        &self,
        spans: Vec<WindowSpan>,
        points: Vec<WindowPoint>,
        normal: (i64, i64),
        abnormal: (i64, i64),
    ) -> RootCauses;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RcaRequest {
    from: serde_json::Value,
    to: serde_json::Value,
    normal_from: Option<serde_json::Value>,
    normal_to: Option<serde_json::Value>,
}

fn bad_request(message: String) -> Response {
    let body = serde_json::json!({"error": message, "kind": "invalid"});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn instant(name: &str, value: &serde_json::Value) -> Result<i64, String> {
    match value {
        serde_json::Value::String(text) => parse_instant(name, text),
        serde_json::Value::Number(n) => parse_instant(name, &n.to_string()),
        other => Err(format!(
            "{name} must be an RFC 3339 time or Unix seconds, not {other}"
        )),
    }
}

/// The normal window before `from`, as long as `[from, to)` within bounds.
fn normal_before(from: i64, to: i64) -> Interval {
    let length = (to - from).clamp(5 * MINUTE, 30 * MINUTE);
    (from - length, from)
}

/// `[from, to)` in Unix nanoseconds.
type Interval = (i64, i64);

/// The normal and the abnormal window asked for.
fn windows(request: &RcaRequest) -> Result<(Interval, Interval), String> {
    let from = instant("from", &request.from)?;
    let to = instant("to", &request.to)?;
    if to <= from {
        return Err("to must be after from".to_owned());
    }
    if to - from > MAX_WINDOW {
        return Err("the window is longer than an hour; rank a shorter one".to_owned());
    }
    let normal = match (&request.normal_from, &request.normal_to) {
        (None, None) => normal_before(from, to),
        (Some(nf), Some(nt)) => {
            let normal = (instant("normal_from", nf)?, instant("normal_to", nt)?);
            if normal.1 <= normal.0 || normal.1 - normal.0 > MAX_WINDOW {
                return Err("normal_to must be after normal_from, within an hour".to_owned());
            }
            normal
        }
        _ => return Err("give both normal_from and normal_to, or neither".to_owned()),
    };
    Ok((normal, (from, to)))
}

/// The detectors' alarms on each cause's node (`namespace/service` or
/// `service`) within the abnormal window, from those the twin holds.
fn attach_alarms(state: &WebState, causes: &mut RootCauses) {
    let (from, to) = (causes.from_unix_nanos, causes.to_unix_nanos);
    let view = state.view.borrow();
    for cause in &mut causes.causes {
        let on_node = |id: &str| id.rsplit('/').next() == Some(cause.service.as_str());
        cause.alarms = view
            .anomalies
            .iter()
            .filter(|a| a.subject == Subject::Node && on_node(&a.id))
            .filter(|a| from <= a.at_unix_nanos && a.at_unix_nanos < to)
            .cloned()
            .collect();
    }
}

/// `POST /api/v1/rca`.
pub(crate) async fn rank(State(state): State<WebState>, body: axum::body::Bytes) -> Response {
    let request: RcaRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return bad_request(format!(
                "the body must be JSON {{\"from\": T, \"to\": T}}: {error}"
            ));
        }
    };
    match windows(&request) {
        Ok((normal, abnormal)) => ranked(&state, normal, abnormal).await,
        Err(message) => bad_request(message),
    }
}

/// `GET /api/v1/incidents/{id}/rca`.
pub(crate) async fn incident(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return bad_request(format!("{id:?} is not an incident id (a number)"));
    };
    let found = state
        .view
        .borrow()
        .incidents
        .iter()
        .find(|i| i.id == id)
        .map(|i| {
            (
                i.opened_unix_nanos,
                i.resolved_unix_nanos.unwrap_or(i.updated_unix_nanos),
            )
        });
    let Some((opened, last)) = found else {
        let body = serde_json::json!({
            "error": format!("no incident {id} (the latest 500 are kept)"),
            "kind": "not_found",
        });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    let from = i64::try_from(opened).unwrap_or(i64::MAX) - MINUTE;
    let to = (i64::try_from(last).unwrap_or(i64::MAX) + 10_000_000_000).min(from + MAX_WINDOW);
    ranked(&state, normal_before(from, to), (from, to)).await
}

async fn ranked(state: &WebState, normal: Interval, abnormal: Interval) -> Response {
    let (Some(query), Some(ranker)) = (&state.query, &state.ranker) else {
        return unavailable("the span store is off (store.enabled = false): nothing to rank from");
    };
    let range = |(from, to)| TimeRange { from, to };
    let started = std::time::Instant::now();
    let reads = tokio::try_join!(
        query.spans_between(range(normal), MAX_SPANS),
        query.spans_between(range(abnormal), MAX_SPANS),
        query.metric_points_between(range((normal.0, abnormal.1)), MAX_POINTS),
    );
    let (before, during, points) = match reads {
        Ok(rows) => rows,
        Err(error) => return error_response(&error).2,
    };
    let mut notes = Vec::new();
    for (truncated, what) in [
        (before.truncated, "the normal window's spans"),
        (during.truncated, "the abnormal window's spans"),
        (points.truncated, "the metric points"),
    ] {
        if truncated {
            notes.push(format!(
                "{what} were cut at the read limit; ranked from those read"
            ));
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let mut spans = before.rows;
    spans.extend(during.rows);
    let ranker = Arc::clone(ranker);
    let work =
        tokio::task::spawn_blocking(move || ranker.rank(spans, points.rows, normal, abnormal));
    match work.await {
        Ok(mut causes) => {
            tracing::info!(
                spans = causes.spans,
                metric_points = causes.metric_points,
                read_seconds,
                rank_seconds = started.elapsed().as_secs_f64() - read_seconds,
                "root causes ranked"
            );
            causes.notes.extend(notes);
            attach_alarms(state, &mut causes);
            Json(causes).into_response()
        }
        Err(error) => {
            let body =
                serde_json::json!({"error": format!("ranking failed: {error}"), "kind": "failed"});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}
