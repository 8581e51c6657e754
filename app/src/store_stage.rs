//! The store stage: the span store, the tables beside it (`metrics`,
//! `edges`, `nodes`), the task that keeps the twin's history, and the SQL
//! engine over all of them.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshtwin_model::series::TwinView;
use meshtwin_query::QueryEngine;
use meshtwin_store::SpanStore;
use meshtwin_store::history::{EDGES, NODES, edge_rows, node_rows};
use meshtwin_store::table::TableAppender;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::settings::Settings;

pub(crate) struct StoreStage {
    pub(crate) spans: Arc<SpanStore>,
    pub(crate) metrics: Arc<TableAppender>,
    pub(crate) query: Arc<QueryEngine>,
    edges: Arc<TableAppender>,
    nodes: Arc<TableAppender>,
    history_every: Duration,
}

/// Opens the span store, writing out what a crash left in its log.
fn open_spans(settings: &Settings, data_dir: &Path) -> Result<Arc<SpanStore>, String> {
    let config = settings.store.config(data_dir);
    let dir = config.dir.display().to_string();
    let (store, recovery) =
        SpanStore::open(config).map_err(|e| format!("cannot open the span store in {dir}: {e}"))?;
    if recovery.requests > 0 || recovery.torn_bytes > 0 {
        tracing::warn!(
            requests = recovery.requests,
            spans = recovery.spans,
            torn_bytes = recovery.torn_bytes,
            "span store: recovered the log of an unclean stop into segments"
        );
    }
    if let Some(max_spans) = store.memory_only_max_spans() {
        tracing::info!(
            max_spans,
            "span store: spans are kept in memory only; none survive a restart"
        );
    }
    Ok(Arc::new(store))
}

impl StoreStage {
    pub(crate) fn open(
        settings: &Settings,
        data_dir: &Path,
        registry: &mut Registry,
    ) -> Result<Self, String> {
        let spans = open_spans(settings, data_dir)?;
        let table = |name: &'static str, schema| {
            let config = settings.store.table(data_dir, name, schema);
            let root = config.root.display().to_string();
            TableAppender::start(config)
                .map(Arc::new)
                .map_err(|e| format!("cannot open the {name} table in {root}: {e}"))
        };
        let metrics = table("metrics", meshtwin_store::metric_rows::SCHEMA.clone())?;
        let edges = table("edges", EDGES.clone())?;
        let nodes = table("nodes", NODES.clone())?;
        let store_dir = settings.store.config(data_dir).dir;
        let mut query = QueryEngine::start(settings.query.config(store_dir))
            .map_err(|e| format!("cannot start the query engine: {e}"))?;
        if spans.memory_only_max_spans().is_some() {
            let store = Arc::downgrade(&spans);
            query = query.with_spans_in_memory(Arc::new(move || {
                store
                    .upgrade()
                    .map(|s| s.spans_in_memory())
                    .unwrap_or_default()
            }));
        }
        let query = Arc::new(query);
        crate::store_metrics::register(
            registry,
            spans.clone(),
            vec![
                ("metrics", metrics.clone()),
                ("edges", edges.clone()),
                ("nodes", nodes.clone()),
            ],
        );
        Ok(Self {
            spans,
            metrics,
            query,
            edges,
            nodes,
            history_every: Duration::from_secs(settings.store.history_interval_seconds),
        })
    }

    /// Keeps the twin's nodes and edges every history interval, whenever
    /// the graph changed since the last time, until `stop` resolves; then
    /// writes what is queued.
    pub(crate) fn keep_history(
        &self,
        mut view: watch::Receiver<TwinView>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (edges, nodes) = (self.edges.clone(), self.nodes.clone());
        let mut ticker = tokio::time::interval(self.history_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        async move {
            tokio::pin!(stop);
            let mut kept_version = 0;
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = ticker.tick() => {}
                }
                let snapshot = view.borrow_and_update().snapshot.clone();
                if snapshot.version == kept_version || snapshot.nodes.is_empty() {
                    continue;
                }
                kept_version = snapshot.version;
                match (edge_rows(&snapshot), node_rows(&snapshot)) {
                    (Ok(e), Ok(n)) => {
                        edges.append(e);
                        nodes.append(n);
                    }
                    (Err(error), _) | (_, Err(error)) => {
                        tracing::warn!(%error, "the twin's history could not be kept")
                    }
                }
            }
            let tables = [edges, nodes];
            let flushed =
                tokio::task::spawn_blocking(move || tables.iter().try_for_each(|t| t.flush()))
                    .await;
            if let Ok(Err(error)) = flushed {
                tracing::warn!(%error, "the twin's last history was not written");
            }
        }
    }
}
