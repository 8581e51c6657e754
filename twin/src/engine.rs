//! The twin's async shell: the one task that owns the [`Twin`].
//!
//! In: span batches from ingest (a bounded `mpsc`). Out, every publish
//! interval: the latest [`TwinView`] on a `watch` channel (latest value
//! wins) and a [`GraphDelta`] on a `broadcast` channel when the graph
//! changed. Versions increase by one per published delta.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_model::delta::{GraphDelta, diff};
use meshtwin_model::graph::GraphSnapshot;
use meshtwin_model::incident::Incident;
use meshtwin_model::series::TwinView;
use meshtwin_model::span::SpanBatch;
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::TwinConfig;
use crate::twin::Twin;

/// How many deltas a slow subscriber may fall behind before it is told it lagged.
const DELTA_BACKLOG: usize = 256;

/// Where the engine publishes: subscribe to these.
#[derive(Clone)]
pub struct TwinChannels {
    pub view: watch::Receiver<TwinView>,
    pub deltas: broadcast::Sender<Arc<GraphDelta>>,
}

pub struct Engine {
    twin: Twin,
    spans: mpsc::Receiver<SpanBatch>,
    publish_every: Duration,
    view: watch::Sender<TwinView>,
    deltas: broadcast::Sender<Arc<GraphDelta>>,
    last: Arc<GraphSnapshot>,
    /// Alarms already sent in a delta.
    anomalies_sent: u64,
}

/// Wall-clock time in Unix nanoseconds.
pub fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Engine {
    pub fn new(config: &TwinConfig, spans: mpsc::Receiver<SpanBatch>) -> (Self, TwinChannels) {
        let last = Arc::new(GraphSnapshot::default());
        let (view, view_rx) = watch::channel(TwinView {
            snapshot: last.clone(),
            ..TwinView::default()
        });
        let (deltas, _) = broadcast::channel(DELTA_BACKLOG);
        let engine = Self {
            twin: Twin::new(config),
            spans,
            publish_every: Duration::from_millis(config.publish_interval_millis),
            view,
            deltas: deltas.clone(),
            last,
            anomalies_sent: 0,
        };
        let channels = TwinChannels {
            view: view_rx,
            deltas,
        };
        (engine, channels)
    }

    /// Continues from incidents kept before a restart.
    pub fn restore_incidents(&mut self, incidents: Vec<Incident>) {
        self.twin.restore_incidents(incidents);
        // Readers see them from the start, not only after the first tick.
        let kept = self.twin.incidents();
        self.view.send_modify(|view| view.incidents = kept);
    }

    /// Runs until `shutdown` resolves or every span sender is gone.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.publish_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => self.publish(wall_clock_nanos()),
                batch = self.spans.recv() => match batch {
                    Some(batch) => self.twin.ingest(&batch, wall_clock_nanos()),
                    None => break,
                },
            }
        }
        tracing::info!(version = self.last.version, "twin engine stopped");
    }

    /// Advances the twin and publishes its view, and a delta if it changed.
    fn publish(&mut self, wall: u64) {
        self.twin.advance(wall);
        let next = self.twin.snapshot(self.last.version + 1);
        let mut delta = diff(&self.last, &next);
        let anomalies = self.twin.anomalies();
        let counters = self.twin.counters();
        let unsent = (counters.anomalies - self.anomalies_sent) as usize;
        delta.anomalies = anomalies[anomalies.len().saturating_sub(unsent)..].to_vec();
        self.anomalies_sent = counters.anomalies;
        delta.incidents = self.twin.take_changed_incidents();
        if !delta.is_empty() {
            self.last = Arc::new(next);
            // No subscriber is fine: browsers come and go.
            let _ = self.deltas.send(Arc::new(delta));
        }
        self.view.send_replace(TwinView {
            snapshot: self.last.clone(),
            series: Arc::new(self.twin.series()),
            counters,
            anomalies,
            incidents: self.twin.incidents(),
        });
    }
}
