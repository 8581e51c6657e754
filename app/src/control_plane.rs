//! Wires the stages: OTLP receivers → span channel → twin engine →
//! (watch view, broadcast deltas) → web; one registry for `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshtwin_collector::{CollectorMetrics, Ingest};
use meshtwin_twin::Engine;
use meshtwin_web::{CauseRanker, QueryMetrics, WebMetrics, WebState};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::certificate_authority::{self, CertificateAuthority};
use crate::control_api;
use crate::data_dir::DataDir;
use crate::incident_log;
use crate::routes_api::{self, RoutesMetrics, RoutesServer};
use crate::settings::Settings;
use crate::store_stage::StoreStage;

/// A running control plane.
pub(crate) struct ControlPlane {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) web: SocketAddr,
    pub(crate) control: SocketAddr,
    pub(crate) data_dir: DataDir,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

async fn bind(
    address: std::net::IpAddr,
    port: u16,
    what: &str,
    key: &str,
) -> Result<TcpListener, String> {
    TcpListener::bind((address, port)).await.map_err(|e| {
        format!("cannot listen on {address}:{port} for {what}: {e}; pick another port with --{} or listen.{key}", key.replace('_', "-"))
    })
}

/// A future that resolves when `stop` is set.
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone: stop as well.
    let _ = stop.wait_for(|stop| *stop).await;
}

impl ControlPlane {
    /// Binds every port, then starts every stage.
    pub(crate) async fn start(settings: &Settings) -> Result<Self, String> {
        let data_dir = DataDir::open(&settings.data_dir)?;
        let armed = match &settings.failover_rules {
            Some(rules) => Some(crate::failover_stage::arm(rules, &data_dir.path)?),
            None => None,
        };
        let l = &settings.listen;
        let grpc_listener =
            bind(l.address, l.otlp_grpc_port, "OTLP/gRPC", "otlp_grpc_port").await?;
        let http_listener =
            bind(l.address, l.otlp_http_port, "OTLP/HTTP", "otlp_http_port").await?;
        let web_listener = bind(l.address, l.web_port, "the web UI", "web_port").await?;
        let control_listener =
            bind(l.address, l.control_port, "the control API", "control_port").await?;
        let ca = Arc::new(CertificateAuthority::load_or_create(
            &data_dir.path,
            &settings.identity.trust_domain,
            Duration::from_secs(settings.identity.certificate_lifetime_seconds),
        )?);
        let local = |listener: &TcpListener| listener.local_addr().map_err(|e| e.to_string());
        let (grpc, http, web, control) = (
            local(&grpc_listener)?,
            local(&http_listener)?,
            local(&web_listener)?,
            local(&control_listener)?,
        );

        let (spans_tx, spans_rx) = mpsc::channel(settings.collector.queue_batches);
        let (mut engine, channels) = Engine::new(&settings.twin, spans_rx);
        engine.restore_incidents(incident_log::load(&data_dir.path));

        let mut registry = Registry::default();
        let collector_metrics = Arc::new(CollectorMetrics::default());
        collector_metrics.register(&mut registry);
        let web_metrics = Arc::new(WebMetrics::default());
        web_metrics.register(&mut registry);
        let routes_metrics = Arc::new(RoutesMetrics::default());
        routes_metrics.register(&mut registry);
        meshtwin_web::register_twin_metrics(&mut registry, channels.view.clone());

        let query_metrics = Arc::new(QueryMetrics::default());
        query_metrics.register(&mut registry);

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut ingest = Ingest::new(spans_tx, collector_metrics);
        let mut query = None;
        if settings.store.enabled {
            let store = StoreStage::open(settings, &data_dir.path, &mut registry)?;
            tasks.spawn(store.keep_history(channels.view.clone(), stopped(stop_rx.clone())));
            ingest = ingest
                .with_store(store.spans.clone())
                .with_metric_table(store.metrics.clone());
            query = Some(store.query.clone());
        }
        let web_state = WebState {
            view: channels.view,
            deltas: channels.deltas,
            registry: Arc::new(registry),
            metrics: web_metrics,
            ranker: query
                .is_some()
                .then(|| Arc::new(crate::cause_ranker::TwinRanker) as Arc<dyn CauseRanker>),
            query,
            query_metrics,
        };
        let max_request_bytes = settings.collector.max_request_bytes;
        let (overrides_tx, overrides) = watch::channel(Vec::new());
        let latest_routes = match &settings.mesh_routes {
            Some(path) => {
                let (latest, reload) = routes_api::watch_file(
                    path.clone(),
                    settings.identity.trust_domain.clone(),
                    routes_metrics.clone(),
                    armed.is_some().then_some(overrides),
                    stopped(stop_rx.clone()),
                )?;
                tasks.spawn(reload);
                latest
            }
            None => watch::channel(None).1,
        };
        if let Some((rules, audit)) = armed {
            if settings.mesh_routes.is_none()
                && rules.rules.iter().any(|r| r.shift_traffic.is_some())
            {
                tracing::warn!(
                    "failover rules move traffic, but no --mesh-routes file is served: proxies will not see their overrides"
                );
            }
            let armed = crate::failover_loop::Armed {
                rules,
                audit,
                overrides: overrides_tx,
                routes: latest_routes.clone(),
                prober: crate::failover_probe::Prober::new(
                    ca.clone(),
                    &settings.identity.trust_domain,
                )?,
            };
            tasks.spawn(crate::failover_loop::engine_loop(
                armed,
                web_state.view.clone(),
                stopped(stop_rx.clone()),
            ));
        }
        let routes_server = RoutesServer::new(latest_routes, routes_metrics);
        tasks.spawn(engine.run(stopped(stop_rx.clone())));
        tasks.spawn(incident_log::keep(
            web_state.view.clone(),
            data_dir.path.clone(),
            stopped(stop_rx.clone()),
        ));
        let grpc_stop = stopped(stop_rx.clone());
        let grpc_ingest = ingest.clone();
        tasks.spawn(async move {
            if let Err(error) = meshtwin_collector::grpc::serve(
                grpc_listener,
                grpc_ingest,
                max_request_bytes,
                grpc_stop,
            )
            .await
            {
                tracing::error!(%error, "OTLP/gRPC receiver stopped");
            }
        });
        let http_stop = stopped(stop_rx.clone());
        tasks.spawn(async move {
            if let Err(error) =
                meshtwin_collector::http::serve(http_listener, ingest, max_request_bytes, http_stop)
                    .await
            {
                tracing::error!(%error, "OTLP/HTTP receiver stopped");
            }
        });
        let control_stop = stopped(stop_rx.clone());
        tasks.spawn(async move {
            if let Err(error) =
                control_api::serve(control_listener, ca, routes_server, control_stop).await
            {
                tracing::error!(%error, "control API stopped");
            }
        });
        let web_stop = stopped(stop_rx);
        tasks.spawn(async move {
            if let Err(error) = meshtwin_web::serve(web_listener, web_state, web_stop).await {
                tracing::error!(%error, "web server stopped");
            }
        });
        Ok(Self {
            grpc,
            http,
            web,
            control,
            data_dir,
            stop,
            tasks,
        })
    }

    /// Prints where everything is, in lines scripts and tests can read.
    pub(crate) fn print_addresses(&self) {
        println!("meshtwin {} serving", env!("CARGO_PKG_VERSION"));
        println!("  ui:        http://{}/", self.web);
        println!("  metrics:   http://{}/metrics", self.web);
        println!("  otlp grpc: http://{}", self.grpc);
        println!("  otlp http: http://{}", self.http);
        println!("  control:   http://{}", self.control);
        println!(
            "  mesh CA:   {}",
            self.data_dir
                .path
                .join(certificate_authority::CA_FILE)
                .display()
        );
        println!("  data dir:  {}", self.data_dir.path.display());
    }

    /// Stops every stage and waits for them.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when it is first polled: call it before announcing readiness,
/// or a signal sent in between takes the default action and kills the process.
pub(crate) fn termination() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {}
            () = wait(interrupt) => {}
        }
    }
}
