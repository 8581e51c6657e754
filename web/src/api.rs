//! REST endpoints under `/api/v1/`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::WebState;

/// `GET /api/v1/graph`: the latest snapshot, with its version.
pub(crate) async fn graph(State(state): State<WebState>) -> Response {
    let snapshot = state.view.borrow().snapshot.clone();
    Json(snapshot.as_ref()).into_response()
}

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}
