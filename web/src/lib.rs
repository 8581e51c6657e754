//! The web stage: the twin's view out to people and tools.
//!
//! In: the latest [`TwinView`] (a `watch` channel) and graph deltas (a
//! `broadcast` channel) from the twin engine, and the metrics registry.
//! Out, on one port (default 8080): `GET /api/v1/graph` (snapshot JSON;
//! with `?at=T` the graph as it was, and `graph/diff` between two times:
//! `history`),
//! the websocket `GET /api/v1/stream` (a snapshot, then versioned
//! deltas), SQL `POST /api/v1/query` (`query`), root causes
//! `POST /api/v1/rca` and `GET /api/v1/incidents/{id}/rca` (`rca`), traces
//! `GET /api/v1/traces[/{id}]` (`traces`), Prometheus
//! `GET /metrics`, and the browser UI at `/`.

mod api;
mod assets;
mod history;
mod instant;
mod prometheus;
mod query;
mod rca;
mod stream;
mod traces;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use meshtwin_model::delta::GraphDelta;
use meshtwin_model::series::TwinView;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

pub use prometheus::{WebMetrics, register_twin_metrics};
pub use query::QueryMetrics;
pub use rca::CauseRanker;

/// What the web stage reads from.
#[derive(Clone)]
pub struct WebState {
    pub view: watch::Receiver<TwinView>,
    pub deltas: broadcast::Sender<Arc<GraphDelta>>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<WebMetrics>,
    /// SQL over the span store; `None` when the store is off.
    pub query: Option<Arc<meshtwin_query::QueryEngine>>,
    pub query_metrics: Arc<QueryMetrics>,
    /// Root-cause ranking over stored windows; `None` when the store is off.
    pub ranker: Option<Arc<dyn CauseRanker>>,
}

/// Every route of the web port.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/graph", get(history::graph))
        .route("/api/v1/anomalies", get(api::anomalies))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/incidents/{id}/rca", get(rca::incident))
        .route("/api/v1/rca", post(rca::rank))
        .route("/api/v1/graph/history", get(history::range))
        .route("/api/v1/graph/diff", get(history::diff))
        .route("/api/v1/stream", get(stream::upgrade))
        .route("/api/v1/query", post(query::query))
        .route("/api/v1/traces", get(traces::search))
        .route("/api/v1/traces/{trace_id}", get(traces::trace))
        .route("/metrics", get(prometheus::render))
        .route("/healthz", get(api::health))
        .fallback(assets::serve)
        .with_state(state)
}

/// Serves the web port on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
