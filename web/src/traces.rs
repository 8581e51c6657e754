//! Traces from the span store.
//!
//! `GET /api/v1/traces/{trace_id}[?from=T&to=T]`: every stored span of the
//! trace, in start order, with its critical path (404 when none is
//! stored; `from`/`to` narrow the files read when the time is known).
//!
//! `GET /api/v1/traces?service=&operation=&caller=&peer=&min_duration_ms=
//! &max_duration_ms=&status=error|ok&from=&to=&order=recent|slowest&limit=`:
//! traces with a span matching every filter given, started in
//! `[from, to)`; by default the 15 minutes up to the twin's clock.
//! `caller` with `service` finds the calls on the edge `caller → service`.
//!
//! Times are RFC 3339 or Unix seconds. Errors are JSON `{error, kind}`:
//! 400 (bad parameters), 503 (no store), 504 (timed out).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshtwin_query::QueryError;
use meshtwin_query::traces::{SearchOrder, StatusFilter, TimeRange, TraceId, TraceSearch};
use serde::Deserialize;

use crate::WebState;
use crate::instant::parse_instant;
use crate::query::{error_response, unavailable};

/// How far back a search looks when `from` is not given.
const DEFAULT_LOOKBACK_NANOS: i64 = 15 * 60 * 1_000_000_000;
/// Spans arriving a little after the twin's clock still count.
const CLOCK_SLACK_NANOS: i64 = 60 * 1_000_000_000;
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceParams {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchParams {
    service: Option<String>,
    operation: Option<String>,
    caller: Option<String>,
    peer: Option<String>,
    min_duration_ms: Option<f64>,
    max_duration_ms: Option<f64>,
    status: Option<StatusFilter>,
    from: Option<String>,
    to: Option<String>,
    order: Option<SearchOrder>,
    limit: Option<usize>,
}

pub(crate) fn bad_request(state: &WebState, message: String) -> Response {
    let error = QueryError::Invalid {
        message,
        line: None,
        column: None,
    };
    state.query_metrics.count("invalid");
    error_response(&error).2
}

pub(crate) fn failure(state: &WebState, error: &QueryError) -> Response {
    let (_, kind, response) = error_response(error);
    state.query_metrics.count(kind);
    response
}

/// 503: `what` is read from the store, which is off.
pub(crate) fn no_store(state: &WebState, what: &str) -> Response {
    state.query_metrics.count("unavailable");
    unavailable(&format!(
        "{what} is read from the span store, which is off here; set [store] enabled = true"
    ))
}

/// `[from, to)` from the parameters; a missing end defaults from the other
/// (or the twin's clock).
fn time_range(state: &WebState, from: Option<&str>, to: Option<&str>) -> Result<TimeRange, String> {
    let from = from.map(|t| parse_instant("from", t)).transpose()?;
    let to = to.map(|t| parse_instant("to", t)).transpose()?;
    let clock = i64::try_from(state.view.borrow().snapshot.at_unix_nanos).unwrap_or(i64::MAX);
    let now = || {
        if clock > 0 {
            clock.saturating_add(CLOCK_SLACK_NANOS)
        } else {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            i64::try_from(wall.as_nanos()).unwrap_or(i64::MAX)
        }
    };
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, from.saturating_add(DEFAULT_LOOKBACK_NANOS)),
        (None, Some(to)) => (to.saturating_sub(DEFAULT_LOOKBACK_NANOS), to),
        (None, None) => {
            let to = now();
            (to.saturating_sub(DEFAULT_LOOKBACK_NANOS), to)
        }
    };
    if to <= from {
        return Err("from must be before to".to_owned());
    }
    Ok(TimeRange { from, to })
}

fn duration_ms(name: &str, ms: Option<f64>) -> Result<Option<Duration>, String> {
    match ms {
        None => Ok(None),
        Some(ms) if ms.is_finite() && (0.0..=86_400_000.0).contains(&ms) => {
            Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
        }
        Some(ms) => Err(format!(
            "{name} must be between 0 and 86400000 ms, not {ms}"
        )),
    }
}

/// `GET /api/v1/traces/{trace_id}`.
pub(crate) async fn trace(
    State(state): State<WebState>,
    Path(trace_id): Path<String>,
    params: Result<Query<TraceParams>, QueryRejection>,
) -> Response {
    let Some(engine) = state.query.clone() else {
        return no_store(&state, "a trace");
    };
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(&state, rejection.body_text()),
    };
    let id: TraceId = match trace_id.parse() {
        Ok(id) => id,
        Err(error) => return failure(&state, &error),
    };
    let range = if params.from.is_some() || params.to.is_some() {
        match time_range(&state, params.from.as_deref(), params.to.as_deref()) {
            Ok(range) => Some(range),
            Err(message) => return bad_request(&state, message),
        }
    } else {
        None
    };
    match engine.trace(&id, range).await {
        Ok(Some(trace)) => {
            state.query_metrics.count("ok");
            Json(trace).into_response()
        }
        Ok(None) => {
            state.query_metrics.count("not_found");
            let body = serde_json::json!({
                "error": format!(
                    "no span of trace {id} is in the store (spans are written within \
                     [store] segment_max_seconds of arriving; they may also be past retention)"
                ),
                "kind": "not_found",
            });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Err(error) => failure(&state, &error),
    }
}

/// `GET /api/v1/traces`: a search.
pub(crate) async fn search(
    State(state): State<WebState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let Some(engine) = state.query.clone() else {
        return no_store(&state, "a trace");
    };
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(&state, rejection.body_text()),
    };
    let search = match search_from(&state, params) {
        Ok(search) => search,
        Err(message) => return bad_request(&state, message),
    };
    match engine.search_traces(&search).await {
        Ok(traces) => {
            state.query_metrics.count("ok");
            Json(serde_json::json!({
                "from_unix_nanos": search.range.from,
                "to_unix_nanos": search.range.to,
                "traces": traces,
            }))
            .into_response()
        }
        Err(error) => failure(&state, &error),
    }
}

fn search_from(state: &WebState, params: SearchParams) -> Result<TraceSearch, String> {
    let range = time_range(state, params.from.as_deref(), params.to.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let max = meshtwin_query::traces::MAX_SEARCH_RESULTS;
    if !(1..=max).contains(&limit) {
        return Err(format!("limit must be between 1 and {max}, not {limit}"));
    }
    let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    Ok(TraceSearch {
        service: given(params.service),
        operation: given(params.operation),
        caller: given(params.caller),
        peer: given(params.peer),
        min_duration: duration_ms("min_duration_ms", params.min_duration_ms)?,
        max_duration: duration_ms("max_duration_ms", params.max_duration_ms)?,
        status: params.status,
        range,
        order: params.order.unwrap_or_default(),
        limit,
    })
}
