//! The failover engine at work in `meshtwin serve`: once a second it reads
//! the twin, lets every rule decide, writes each decision to the audit
//! log, publishes the overrides in force to the routes stream, and calls
//! hooks when traffic moves (their results are audited when they end).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshtwin_failover::audit::AuditLog;
use meshtwin_failover::{Engine, Event, RuleSet, TwinSignals};
use meshtwin_model::routing::{MeshRoutes, Override};
use meshtwin_model::series::TwinView;
use tokio::sync::{mpsc, watch};

use crate::certificate_authority::unix_ms;
use crate::failover_hooks::{HookResult, fire};
use crate::failover_probe::Prober;
use crate::routes_api::Latest;

const TICK: Duration = Duration::from_secs(1);

/// What the loop runs with.
pub(crate) struct Armed {
    pub(crate) rules: RuleSet,
    pub(crate) audit: AuditLog,
    /// The engine's overrides, for the routes stream.
    pub(crate) overrides: watch::Sender<Vec<Override>>,
    /// The routes served, for the endpoints to probe.
    pub(crate) routes: Latest,
    pub(crate) prober: Prober,
}

/// The loop, until `stop`.
pub(crate) fn engine_loop(
    armed: Armed,
    twin: watch::Receiver<TwinView>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let Armed {
        rules,
        mut audit,
        overrides: overrides_tx,
        routes,
        prober,
    } = armed;
    let prober = Arc::new(prober);
    async move {
        let mut engine = Engine::new(rules);
        let mut signals = TwinSignals::default();
        let (hooks_tx, mut hooks_rx) = mpsc::channel::<(Event, Vec<HookResult>)>(64);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                Some((event, results)) = hooks_rx.recv() => {
                    let record = serde_json::json!({
                        "rule": event.rule(),
                        "for": event,
                        "results": results,
                    });
                    append(&mut audit, "hook_results", record);
                }
                _ = tick.tick() => {
                    let now = unix_ms(SystemTime::now());
                    let observed = signals.observe(&twin.borrow());
                    let events = engine.tick(now, &observed);
                    probe_moved_localities(&engine, &routes, &prober);
                    if events.is_empty() {
                        continue;
                    }
                    for event in &events {
                        if event.audited() {
                            append(&mut audit, event.kind(), serde_json::to_value(event).unwrap_or_default());
                        }
                        call_hooks(&engine, event, &twin.borrow(), &hooks_tx);
                    }
                    let _ = overrides_tx.send_if_modified(|current| {
                        let now = engine.overrides();
                        let changed = *current != now;
                        *current = now;
                        changed
                    });
                }
            }
        }
    }
}

/// One probe to each endpoint of every locality a rule has moved traffic
/// away from, so that its recovery shows in the twin.
fn probe_moved_localities(engine: &Engine, routes: &Latest, prober: &Arc<Prober>) {
    let active: Vec<_> = engine
        .status()
        .into_iter()
        .filter(|s| s.phase == "active")
        .filter_map(|s| engine.rules().rule(&s.rule).cloned())
        .filter(|r| r.shift_traffic.is_some())
        .collect();
    if active.is_empty() {
        return;
    }
    let Some(update) = routes.borrow().clone() else {
        return;
    };
    let Ok(served) = serde_json::from_str::<MeshRoutes>(&update.routes_json) else {
        return;
    };
    for rule in active {
        let Some(service) = served.services.iter().find(|s| s.name == rule.service) else {
            continue;
        };
        for endpoint in service
            .endpoints
            .iter()
            .filter(|e| e.locality == rule.locality)
        {
            let (prober, service, address) = (prober.clone(), service.clone(), endpoint.address);
            let path = rule.probe_path.clone();
            tokio::spawn(async move {
                if let Err(error) = prober.probe(&service, address, &path).await {
                    tracing::debug!(%error, %address, service = %service.name, "failover probe failed");
                }
            });
        }
    }
}

fn append(audit: &mut AuditLog, kind: &str, record: serde_json::Value) {
    let now = unix_ms(SystemTime::now());
    if let Err(error) = audit.append(kind, record, now) {
        tracing::error!(%error, kind, path = %audit.path().display(), "cannot write the audit log");
    }
}

/// Hooks run when traffic moves and when it moves back (not in dry runs);
/// they run beside the loop, which goes on deciding.
fn call_hooks(
    engine: &Engine,
    event: &Event,
    view: &TwinView,
    results: &mpsc::Sender<(Event, Vec<HookResult>)>,
) {
    let (what, decision) = match event {
        Event::Act { decision, .. } => ("failover", decision),
        Event::FailBack {
            decision,
            dry_run: false,
            ..
        } => ("failback", decision),
        _ => return,
    };
    let Some(rule) = engine.rules().rule(event.rule()).cloned() else {
        return;
    };
    if rule.webhooks.is_empty() && rule.exec.is_empty() {
        return;
    }
    let payload = serde_json::json!({
        "event": what,
        "rule": rule.name,
        "decision": decision,
        "service": rule.service,
        "locality": rule.locality,
        "to_locality": rule.shift_traffic.as_ref().map(|s| &s.to_locality),
        "details": event,
        // The open incidents that include the service, as the twin has them.
        "incidents": view
            .incidents
            .iter()
            .filter(|i| i.is_open() && i.nodes.iter().any(|n| names(n, &rule.service)))
            .collect::<Vec<_>>(),
    });
    let (event, decision, results) = (event.clone(), decision.clone(), results.clone());
    tokio::spawn(async move {
        let outcome = fire(&rule, what, &decision, &payload).await;
        let _ = results.send((event, outcome)).await;
    });
}

/// Whether node id `node` (`name` or `namespace/name`) is `service`.
fn names(node: &str, service: &str) -> bool {
    node == service
        || node
            .rsplit_once('/')
            .is_some_and(|(_, name)| name == service)
}
