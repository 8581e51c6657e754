//! Routes from the control plane's watch stream. Each version is checked,
//! applied (endpoints keep their pools, load and health) and acknowledged;
//! a version that does not check out is acknowledged with the reason and
//! the last routes stay. When the control plane is unreachable the proxy
//! keeps what it has and reconnects with backoff; overrides still expire on
//! time, so a dead control plane never pins traffic.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use meshtwin_model::control::{AckRequest, RoutesUpdate, WatchRequest};
use meshtwin_model::routing::MeshRoutes;
use tokio::sync::watch;

use crate::control_client::ControlClient;
use crate::metrics::ProxyMetrics;
use crate::routes::{Routes, Scope};
use crate::server::stopped;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long to wait before asking again a control plane that has no routes.
const NO_ROUTES_RETRY: Duration = Duration::from_secs(30);

pub struct RoutesWatch {
    pub control: ControlClient,
    pub who: WatchRequest,
    pub trust_domain: String,
    pub routes: Arc<ArcSwap<Routes>>,
    pub metrics: Arc<ProxyMetrics>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Resolves when the next override in `mesh` expires (never without one).
async fn next_expiry(mesh: Option<&MeshRoutes>) {
    match mesh.and_then(|m| m.effective(now_ms()).1) {
        Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await,
        None => std::future::pending().await,
    }
}

impl RoutesWatch {
    /// Runs until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut mesh: Option<MeshRoutes> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            let connected = tokio::select! {
                result = self.control.watch(self.who.clone()) => result,
                () = stopped(&mut stop) => return,
            };
            let wait = match connected {
                Ok(mut stream) => {
                    backoff = Duration::from_secs(1);
                    loop {
                        tokio::select! {
                            message = stream.message() => match message {
                                Ok(Some(update)) => self.apply(update, &mut mesh).await,
                                Ok(None) => break,
                                Err(status) => {
                                    tracing::warn!(error = %status.message(), "routes stream broke; keeping the last routes");
                                    break;
                                }
                            },
                            () = next_expiry(mesh.as_ref()) => self.expire(mesh.as_ref()),
                            () = stopped(&mut stop) => return,
                        }
                    }
                    backoff
                }
                Err(status) if status.code() == tonic::Code::NotFound => {
                    tracing::debug!(reason = %status.message(), "no routes from the control plane; using the file's");
                    NO_ROUTES_RETRY
                }
                Err(status) => {
                    tracing::warn!(error = %status.message(), retry_in = ?backoff, "cannot watch routes; keeping the last routes");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            let pause = tokio::time::sleep(wait);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    () = next_expiry(mesh.as_ref()) => self.expire(mesh.as_ref()),
                    () = stopped(&mut stop) => return,
                }
            }
        }
    }

    /// Applies one version and acknowledges it.
    async fn apply(&self, update: RoutesUpdate, mesh: &mut Option<MeshRoutes>) {
        let result = serde_json::from_str::<MeshRoutes>(&update.routes_json)
            .map_err(|e| format!("routes do not parse: {e}"))
            .and_then(|routes| {
                let problems = routes.problems(&self.trust_domain);
                if problems.is_empty() {
                    self.install(&routes)?;
                    Ok(routes)
                } else {
                    Err(problems.join("; "))
                }
            });
        let error = match result {
            Ok(routes) => {
                tracing::info!(
                    version = update.version,
                    services = routes.services.len(),
                    "routes applied"
                );
                *mesh = Some(routes);
                self.metrics.routes_version.set(update.version as i64);
                self.metrics.routes_update("applied");
                String::new()
            }
            Err(error) => {
                tracing::error!(version = update.version, %error, "routes refused; keeping the last routes");
                self.metrics.routes_update("refused");
                error
            }
        };
        let ack = AckRequest {
            identity: self.who.identity.clone(),
            instance: self.who.instance.clone(),
            version: update.version,
            error,
        };
        if let Err(status) = self.control.ack(ack).await {
            tracing::warn!(error = %status.message(), "cannot acknowledge routes");
        }
    }

    /// Builds and swaps in the routes with the overrides in force now.
    fn install(&self, mesh: &MeshRoutes) -> Result<(), String> {
        let (services, _) = mesh.effective(now_ms());
        let scope = Scope {
            trust_domain: &self.trust_domain,
            locality: &self.who.locality,
        };
        let current = self.routes.load();
        let routes = Routes::build(&scope, &services, Some(&current))?;
        self.routes.store(Arc::new(routes));
        Ok(())
    }

    /// An override has expired: the same routes without it.
    fn expire(&self, mesh: Option<&MeshRoutes>) {
        let Some(mesh) = mesh else { return };
        tracing::info!("an override expired; routes rebuilt without it");
        self.metrics.routes_update("override_expired");
        if let Err(error) = self.install(mesh) {
            tracing::error!(%error, "routes could not be rebuilt after an override expired");
        }
    }
}
