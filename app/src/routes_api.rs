//! The control API's `Routes` service (`model/proto/control.proto`): the
//! mesh routes file (`--mesh-routes`), re-read when it changes, served to
//! proxies as a versioned latest-value stream, and their acknowledgements.
//! A file that stops parsing is reported and counted, and the last good
//! version stays in force.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshtwin_model::config_file::{ConfigFile, ConfigProblems};
use meshtwin_model::control::{
    ACK_PATH, AckRequest, AckResponse, RoutesUpdate, WATCH_PATH, WatchRequest,
};
use meshtwin_model::routing::{MeshRoutes, Override};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, BoxStream, StdError, http};
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic_prost::ProstCodec;

use crate::grpc_service::{GrpcMethods, MAX_MESSAGE_BYTES, unimplemented};

/// How often the file's modification time and size are checked.
const POLL: Duration = Duration::from_secs(1);

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub(crate) struct RoutesMetrics {
    version: Gauge,
    reload_errors: Counter,
    watchers: Gauge,
    acked: Family<Labels, Gauge>,
    refused: Family<Labels, Counter>,
}

impl RoutesMetrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("meshtwin_control_routes");
        sub.register(
            "version",
            "Version of the mesh routes in force",
            self.version.clone(),
        );
        sub.register(
            "reload_errors",
            "Changes to the mesh routes file that did not parse; the last good version stays",
            self.reload_errors.clone(),
        );
        sub.register(
            "watchers",
            "Proxies watching the routes now",
            self.watchers.clone(),
        );
        sub.register(
            "acked_version",
            "The last routes version each proxy applied, by identity and instance",
            self.acked.clone(),
        );
        sub.register(
            "refused",
            "Routes versions a proxy could not apply, by identity and instance",
            self.refused.clone(),
        );
    }
}

/// Reads and checks a mesh routes file: `[[services]]` and `[[overrides]]`.
pub(crate) fn load(path: &Path, trust_domain: &str) -> Result<MeshRoutes, ConfigProblems> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigProblems(vec![format!("cannot read {at}: {e}")]))?;
    let defaults = MeshRoutes::default();
    let mut file = ConfigFile::parse(&text, &defaults, &[])
        .map_err(|e| ConfigProblems(e.0.into_iter().map(|p| format!("{at}: {p}")).collect()))?;
    let routes = MeshRoutes {
        services: file.section("services", defaults.services),
        overrides: file.section("overrides", defaults.overrides),
    };
    file.finish(&at)?;
    let problems = routes.problems(trust_domain);
    if problems.is_empty() {
        Ok(routes)
    } else {
        Err(ConfigProblems(
            problems.into_iter().map(|p| format!("{at}: {p}")).collect(),
        ))
    }
}

fn update(version: u64, routes: &MeshRoutes) -> Arc<RoutesUpdate> {
    Arc::new(RoutesUpdate {
        version,
        routes_json: serde_json::to_string(routes).expect("routes serialize"),
    })
}

/// What the watch stream serves: `None` when no routes file is configured.
pub(crate) type Latest = watch::Receiver<Option<Arc<RoutesUpdate>>>;

/// Loads `path` (an error stops start-up) and returns the stream's source
/// and the task that re-reads the file until `stop`. The failover engine's
/// overrides (`extra`) are served after the file's own; a new version goes
/// out when either changes.
pub(crate) fn watch_file(
    path: PathBuf,
    trust_domain: String,
    metrics: Arc<RoutesMetrics>,
    extra: Option<watch::Receiver<Vec<Override>>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Latest, impl std::future::Future<Output = ()>), String> {
    let routes = load(&path, &trust_domain).map_err(|e| e.to_string())?;
    let (tx, rx) = watch::channel(Some(update(1, &routes)));
    metrics.version.set(1);
    let (_none, quiet) = watch::channel(Vec::new());
    let mut extra = extra.unwrap_or(quiet);
    let task = async move {
        // Keeps the quiet channel open while the task runs.
        let _none = _none;
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        };
        let mut seen = stamp(&path);
        let mut file = routes.clone();
        let (mut version, mut current) = (1, routes);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                Ok(()) = extra.changed() => {}
                () = tokio::time::sleep(POLL) => {
                    let now = stamp(&path);
                    if now != seen {
                        seen = now;
                        match load(&path, &trust_domain) {
                            Ok(routes) => file = routes,
                            Err(problems) => {
                                metrics.reload_errors.inc();
                                tracing::error!(%problems, version, "mesh routes file rejected; version {version} stays in force");
                            }
                        }
                    }
                }
            }
            let mut routes = file.clone();
            routes
                .overrides
                .extend(extra.borrow_and_update().iter().cloned());
            if routes != current {
                version += 1;
                tracing::info!(version, path = %path.display(), overrides = routes.overrides.len(), "mesh routes changed");
                tx.send_replace(Some(update(version, &routes)));
                metrics.version.set(version as i64);
                current = routes;
            }
        }
    };
    Ok((rx, task))
}

#[derive(Clone)]
pub(crate) struct RoutesServer {
    latest: Latest,
    metrics: Arc<RoutesMetrics>,
}

impl RoutesServer {
    pub(crate) fn new(latest: Latest, metrics: Arc<RoutesMetrics>) -> Self {
        Self { latest, metrics }
    }
}

/// Counts a watcher until its stream is dropped.
struct Watching(Arc<RoutesMetrics>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers.dec();
    }
}

struct Watch(RoutesServer);

impl ServerStreamingService<WatchRequest> for Watch {
    type Response = RoutesUpdate;
    type ResponseStream = BoxStream<RoutesUpdate>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<WatchRequest>) -> Self::Future {
        let mut latest = self.0.latest.clone();
        let metrics = self.0.metrics.clone();
        Box::pin(async move {
            let who = request.into_inner();
            if latest.borrow().is_none() {
                return Err(tonic::Status::not_found(
                    "this control plane serves no mesh routes (start it with --mesh-routes FILE)",
                ));
            }
            tracing::info!(identity = %who.identity, instance = %who.instance, "proxy watching routes");
            metrics.watchers.inc();
            let watching = Watching(metrics);
            // The current version at once, then each newer one.
            latest.mark_changed();
            let stream = futures_util::stream::unfold(
                (latest, watching),
                |(mut latest, watching)| async move {
                    latest.changed().await.ok()?;
                    let update = latest.borrow_and_update().clone()?;
                    Some((Ok((*update).clone()), (latest, watching)))
                },
            );
            Ok(tonic::Response::new(
                Box::pin(stream) as BoxStream<RoutesUpdate>
            ))
        })
    }
}

struct Ack(Arc<RoutesMetrics>);

impl UnaryService<AckRequest> for Ack {
    type Response = AckResponse;
    type Future = BoxFuture<tonic::Response<AckResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<AckRequest>) -> Self::Future {
        let metrics = self.0.clone();
        Box::pin(async move {
            let ack = request.into_inner();
            let labels = vec![("identity", ack.identity), ("instance", ack.instance)];
            if ack.error.is_empty() {
                metrics.acked.get_or_create(&labels).set(ack.version as i64);
            } else {
                tracing::warn!(?labels, version = ack.version, error = %ack.error, "a proxy could not apply the routes");
                metrics.refused.get_or_create(&labels).inc();
            }
            Ok(tonic::Response::new(AckResponse {}))
        })
    }
}

impl GrpcMethods for RoutesServer {
    const NAME: &'static str = "meshtwin.control.v1.Routes";

    fn dispatch<B>(self, request: http::Request<B>) -> BoxFuture<http::Response<Body>, Infallible>
    where
        B: http_body::Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            Ok(match path.as_str() {
                WATCH_PATH => {
                    let mut grpc = Grpc::new(ProstCodec::default())
                        .max_decoding_message_size(MAX_MESSAGE_BYTES);
                    grpc.server_streaming(Watch(self), request).await
                }
                ACK_PATH => {
                    let mut grpc = Grpc::new(ProstCodec::default())
                        .max_decoding_message_size(MAX_MESSAGE_BYTES);
                    grpc.unary(Ack(self.metrics), request).await
                }
                _ => unimplemented(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mesh-routes.example.toml");
        let routes = load(&path, "meshtwin.local").unwrap();
        assert_eq!(routes.services.len(), 2);
        assert_eq!(routes.overrides.len(), 1);
    }

    fn problems(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, "meshtwin.local").unwrap_err().0
    }

    #[test]
    fn unknown_keys_and_every_bad_value_are_reported() {
        let unknown = problems("colour = 1\n[[services]]\nname = \"ledger\"\n");
        assert!(
            unknown.iter().any(|p| p.contains("unknown key `colour`")),
            "{unknown:?}"
        );
        let bad =
            problems("[[services]]\nname = \"Bad Name\"\n[[overrides]]\nservice = \"nowhere\"\n");
        for expected in [
            "Bad Name",
            "`nowhere` is not in services",
            "expires_unix_ms is required",
        ] {
            assert!(
                bad.iter().any(|p| p.contains(expected)),
                "{expected}: {bad:?}"
            );
        }
    }
}
