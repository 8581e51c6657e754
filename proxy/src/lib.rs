//! meshtwin-proxy: the data plane. The local app's plaintext calls come in
//! on the outbound side and leave as mTLS to the destination's inbound
//! proxy, which hands them to its app with the caller's verified identity.
//! Both sides record spans (CLIENT, SERVER) into a bounded queue exported
//! over OTLP/gRPC to the collector; the identity comes from the control
//! plane's CA over the control API. No query engine, no dataframes.

pub mod admin;
pub mod balance;
pub mod body;
pub mod config;
pub mod control_client;
pub mod fault;
pub mod forward;
pub mod identity;
pub mod inbound;
pub mod listening;
pub mod metrics;
pub mod outbound;
pub mod outlier;
pub mod pool;
pub mod replay;
pub mod routes;
pub mod routes_watch;
pub mod scheduling;
pub mod server;
pub mod shard;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::config::ProxyConfig;
use crate::control_client::ControlClient;
use crate::identity::Identity;
use crate::inbound::Inbound;
use crate::listening::{Bound, Serving};
use crate::metrics::ProxyMetrics;
use crate::outbound::Outbound;
use crate::routes::Routes;
use crate::routes_watch::RoutesWatch;
use crate::server::Drain;
use crate::shard::Shards;
use crate::telemetry::{Exporter, Resource, Telemetry};
use meshtwin_model::control::WatchRequest;

/// A running proxy and the addresses it listens on.
pub struct Proxy {
    pub inbound: Option<SocketAddr>,
    pub outbound: SocketAddr,
    /// Per-service outbound ports: service name and address.
    pub service_ports: Vec<(String, SocketAddr)>,
    pub admin: SocketAddr,
    stop: watch::Sender<bool>,
    listeners: JoinSet<()>,
    /// Hears when the exporter thread has flushed its last spans.
    exporter: Option<tokio::sync::oneshot::Receiver<()>>,
    drain: Drain,
    shards: Shards,
}

impl Proxy {
    /// Binds every listener, then starts serving; the certificate is
    /// requested in the background (`/ready` says when it is there).
    pub async fn start(config: ProxyConfig) -> Result<Self, String> {
        let id = config.spiffe_id()?;
        let identity = Arc::new(
            Identity::new(id.clone(), &config.identity.trust_anchors).map_err(|e| e.to_string())?,
        );
        let control = ControlClient::new(&config.control_plane.address)?;
        let routes = Arc::new(ArcSwap::from_pointee(Routes::from_config(&config)?));
        let metrics = Arc::new(ProxyMetrics::default());
        let instance = if config.instance.is_empty() {
            format!("{}-{}", config.identity.service, std::process::id())
        } else {
            config.instance.clone()
        };
        let resource = Resource {
            service: config.identity.service.clone(),
            namespace: config.identity.namespace.clone(),
            instance: instance.clone(),
            locality: config.locality.clone(),
        };
        let (telemetry, exporter) = if config.telemetry.enabled {
            let (telemetry, exporter) =
                Exporter::new(&config.telemetry, &resource, metrics.red.clone())?;
            (Arc::new(telemetry), Some(exporter))
        } else {
            (Arc::new(Telemetry::disabled()), None)
        };

        let bound = Bound::bind(&config, &routes.load())?;
        let admin = shard::listen(config.admin.listen, 1, "the admin port")?.remove(0);
        let admin_address = admin.local_addr().map_err(|e| e.to_string())?;

        let mut registry = Registry::default();
        metrics.register(&mut registry);
        identity.register(&mut registry);
        telemetry.register(&mut registry);

        let (stop, stop_rx) = watch::channel(false);
        let (drain, drain_handle) = Drain::new(stop_rx.clone());
        let mut listeners = JoinSet::new();
        let watch = RoutesWatch {
            control: control.clone(),
            who: WatchRequest {
                identity: id.to_string(),
                instance: instance.clone(),
                locality: config.locality.clone(),
            },
            trust_domain: config.identity.trust_domain.clone(),
            routes: routes.clone(),
            metrics: metrics.clone(),
        };
        listeners.spawn(watch.run(stop_rx.clone()));
        listeners.spawn(identity::keep_certified(
            identity.clone(),
            control,
            stop_rx.clone(),
        ));
        let exporter = match exporter {
            Some(exporter) => Some(
                exporter
                    .spawn(stop_rx.clone())
                    .map_err(|e| format!("cannot start the telemetry thread: {e}"))?,
            ),
            None => None,
        };

        let outbound = Arc::new(Outbound {
            routes: routes.clone(),
            identity: identity.clone(),
            telemetry: telemetry.clone(),
            metrics: metrics.clone(),
        });
        let inbound = config.inbound.app.map(|app| {
            Arc::new(Inbound {
                identity: identity.clone(),
                telemetry: telemetry.clone(),
                metrics: metrics.clone(),
                app,
                opaque_app: config.inbound.opaque_app.unwrap_or(app),
                permissive: config.inbound.permissive,
                service: config.identity.service.clone(),
                locality: config.locality.as_str().into(),
                app_pool: Default::default(),
            })
        });
        let serving = Serving {
            outbound,
            inbound,
            drain: drain_handle.clone(),
            stop: stop_rx.clone(),
        };
        let shards = Shards::start(config.threads)?;
        for (sockets, handle) in bound.per_thread.into_iter().zip(shards.handles()) {
            sockets.serve(&serving, handle, &mut listeners)?;
        }
        let admin_listener = shard::on_runtime(admin, &shards.handles()[0])?;
        let admin = Arc::new(Admin { registry, identity });
        listeners.spawn(admin.serve(admin_listener, drain_handle, stop_rx));

        Ok(Self {
            inbound: bound.inbound,
            outbound: bound.outbound,
            service_ports: bound.service_ports,
            admin: admin_address,
            stop,
            listeners,
            exporter,
            drain,
            shards,
        })
    }

    /// Stops accepting, lets in-flight requests and tunnels finish (at most
    /// `drain_limit`), then flushes telemetry. Returns whether the drain
    /// completed in time.
    pub async fn shutdown(mut self, drain_limit: Duration) -> bool {
        let _ = self.stop.send(true);
        while self.listeners.join_next().await.is_some() {}
        let drained = self.drain.drain(drain_limit).await;
        self.shards.exit();
        if let Some(exporter) = self.exporter {
            let _ = tokio::time::timeout(Duration::from_secs(5), exporter).await;
        }
        drained
    }
}
