//! Routes from the control plane: `meshtwin serve --mesh-routes FILE`
//! serves the file's services and overrides to a real `meshtwin-proxy`
//! over the watch stream; the proxy applies and acknowledges each version,
//! ignores a broken file, keeps its routes when the control plane dies, and
//! drops an override at its expiry.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_tests::client::{self, metric};
use meshtwin_tests::mesh::{call, caller, instance, write_routes};
use meshtwin_tests::sandbox::{Meshtwin, eventually};

async fn answered_by(outbound: SocketAddr) -> String {
    let reply = call(outbound, "ledger", "/echo").await;
    if reply.status == 200 {
        reply.json()["app"].as_str().unwrap_or("?").to_owned()
    } else {
        format!("HTTP {}", reply.status)
    }
}

/// The version `payments` acknowledged, from the control plane's metrics.
async fn acked_by_payments(control_plane: &Meshtwin) -> Option<f64> {
    let page = client::get(&format!("{}/metrics", control_plane.web))
        .await
        .text();
    page.lines()
        .filter(|l| l.starts_with("meshtwin_control_routes_acked_version{"))
        .find(|l| l.contains("sa/payments"))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

fn control_metric(page: &str, name: &str) -> f64 {
    metric(page, name).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_versions_are_applied_acknowledged_and_outlive_the_control_plane() {
    let dir = tempfile::tempdir().expect("temp dir");
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "").expect("an empty routes file");
    let control_plane = Meshtwin::serve(&["--mesh-routes", routes.to_str().expect("utf-8")]);
    let (_app_a, ledger_a) = instance(&control_plane, "ledger", "region-a").await;
    let (_app_b, ledger_b) = instance(&control_plane, "ledger", "region-b").await;
    let endpoints = [
        (ledger_a.inbound.expect("inbound"), "region-a"),
        (ledger_b.inbound.expect("inbound"), "region-b"),
    ];
    write_routes(&routes, "ledger", &endpoints, "");

    // payments has no services in its file: everything comes from the stream.
    let payments = caller(&control_plane, "payments", "region-a").await;
    eventually(
        Duration::from_secs(15),
        "routes from the control plane",
        || async { (answered_by(payments.outbound).await == "ledger-region-a").then_some(()) },
    )
    .await;
    let first = eventually(Duration::from_secs(5), "an acknowledgement", || {
        acked_by_payments(&control_plane)
    })
    .await;
    assert_eq!(
        metric(&payments.metrics().await, "meshtwin_proxy_routes_version"),
        Some(first)
    );

    // A broken file is reported and counted; the version in force stays.
    std::fs::write(
        &routes,
        "[[services]]\nname = \"ledger\"\ncolour = \"blue\"\n",
    )
    .expect("write");
    let web_metrics = format!("{}/metrics", control_plane.web);
    eventually(
        Duration::from_secs(10),
        "the broken file to be counted",
        || async {
            let page = client::get(&web_metrics).await.text();
            (control_metric(&page, "meshtwin_control_routes_reload_errors_total") >= 1.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(answered_by(payments.outbound).await, "ledger-region-a");

    // A failover override, expiring in a few seconds, moves traffic to region-b.
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 6_000;
    let failover = format!(
        "[[overrides]]\nservice = \"ledger\"\nexpires_unix_ms = {expires}\nreason = \"test failover\"\n\
         [overrides.locality_priorities]\nregion-b = 0\nregion-a = 1\n"
    );
    write_routes(&routes, "ledger", &endpoints, &failover);
    eventually(Duration::from_secs(10), "the override to apply", || async {
        (answered_by(payments.outbound).await == "ledger-region-b").then_some(())
    })
    .await;
    let second = eventually(
        Duration::from_secs(5),
        "the new version acknowledged",
        || async {
            acked_by_payments(&control_plane)
                .await
                .filter(|v| *v > first)
        },
    )
    .await;
    assert!(second > first);

    // The control plane dies; the proxy keeps the override until it
    // expires, then goes back to its own locality on its own.
    let _ = control_plane.terminate();
    for i in 0..5 {
        assert_eq!(
            answered_by(payments.outbound).await,
            "ledger-region-b",
            "request {i} with the control plane gone"
        );
    }
    eventually(
        Duration::from_secs(15),
        "the override to expire",
        || async { (answered_by(payments.outbound).await == "ledger-region-a").then_some(()) },
    )
    .await;
    let page = payments.metrics().await;
    assert_eq!(
        metric(
            &page,
            "meshtwin_proxy_routes_updates_total{result=\"override_expired\"}"
        ),
        Some(1.0),
        "{page}"
    );
}
