//! Resilience with real processes on loopback: a `payments` proxy calls
//! `ledger` endpoints, each a real `mesh-app` behind its own
//! `meshtwin-proxy`, certificates from a real `meshtwin serve`. Endpoints
//! fail by losing their app, as a crashed service does.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::Method;
use meshtwin_tests::client::{self, metric};
use meshtwin_tests::mesh::{
    MeshProxy, ProxySpec, Service, Spawned, call, free_port, start_app, start_app_on,
};
use meshtwin_tests::sandbox::{Meshtwin, eventually};

/// A `ledger` instance: its app (if running) and its inbound proxy.
struct Ledger {
    app: Option<Spawned>,
    app_address: SocketAddr,
    proxy: MeshProxy,
}

impl Ledger {
    /// `app_running = false` fronts an address nothing listens on.
    async fn start(
        control_plane: &Meshtwin,
        name: &str,
        locality: &str,
        app_running: bool,
    ) -> Self {
        let (app, app_address) = if app_running {
            let app = start_app(name, false);
            let address = app.address("http");
            (Some(app), address)
        } else {
            (None, SocketAddr::from(([127, 0, 0, 1], free_port())))
        };
        let mut spec = spec(control_plane, "ledger");
        spec.app = Some(app_address);
        spec.locality = locality.to_owned();
        let proxy = MeshProxy::start(&spec).await;
        Self {
            app,
            app_address,
            proxy,
        }
    }

    fn endpoint(&self, locality: &str) -> (SocketAddr, String) {
        let inbound = self.proxy.inbound.expect("ledger has an inbound side");
        (inbound, locality.to_owned())
    }

    async fn requests_seen(&self) -> f64 {
        let page = self.proxy.metrics().await;
        page.lines()
            .filter(|l| l.starts_with("meshtwin_proxy_requests_total{direction=\"inbound\""))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }
}

fn spec(control_plane: &Meshtwin, service: &str) -> ProxySpec {
    let ca = control_plane.data_dir().join("ca.pem");
    ProxySpec::new(
        service,
        &control_plane.control,
        &control_plane.otlp_grpc,
        &ca,
    )
}

/// The `payments` proxy, in `locality`, calling `ledger` at `endpoints`.
async fn payments(
    control_plane: &Meshtwin,
    locality: &str,
    endpoints: Vec<(SocketAddr, String)>,
    policy: &str,
) -> MeshProxy {
    let mut spec = spec(control_plane, "payments");
    spec.locality = locality.to_owned();
    spec.services.push(Service {
        name: "ledger".to_owned(),
        protocol: "http",
        port: None,
        endpoints,
        policy: policy.to_owned(),
    });
    MeshProxy::start(&spec).await
}

fn events(page: &str, kind: &str) -> f64 {
    let series =
        format!("meshtwin_proxy_resilience_events_total{{service=\"ledger\",kind=\"{kind}\"}}");
    metric(page, &series).unwrap_or(0.0)
}

/// Which app answered a request to ledger, or why none did.
async fn answered_by(outbound: SocketAddr) -> String {
    let reply = call(outbound, "ledger", "/echo").await;
    if reply.status == 200 {
        reply.json()["app"].as_str().unwrap_or("?").to_owned()
    } else {
        format!("HTTP {}: {}", reply.status, reply.text().trim())
    }
}

/// `ledger-1` (healthy) and `ledger-2` (its app crashed), both in one
/// locality, and `payments` calling them with `policy`.
async fn one_healthy_one_crashed(policy: &str) -> (Meshtwin, Ledger, Ledger, MeshProxy) {
    // Spans reach queryable segments within a second or two.
    let control_plane = Meshtwin::serve_with_config("[store]\nsegment_max_seconds = 1\n");
    let healthy = Ledger::start(&control_plane, "ledger-1", "", true).await;
    let crashed = Ledger::start(&control_plane, "ledger-2", "", false).await;
    let endpoints = vec![healthy.endpoint(""), crashed.endpoint("")];
    let payments = payments(&control_plane, "", endpoints, policy).await;
    (control_plane, healthy, crashed, payments)
}

/// Runs `per_worker` requests on each of `workers` concurrent tasks (so
/// load spreads over endpoints) and returns every result.
async fn concurrently<T, F, Fut>(workers: usize, per_worker: usize, request: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let request = request.clone();
        tasks.spawn(async move {
            let mut results = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                results.push(request().await);
            }
            results
        });
    }
    let mut all = Vec::new();
    while let Some(results) = tasks.join_next().await {
        all.extend(results.expect("worker"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_ejection_hide_one_failing_endpoint() {
    let policy = "[services.outlier]\nconsecutive_failures = 3\nbase_ejection_ms = 60000";
    let (control_plane, healthy, crashed, payments) = one_healthy_one_crashed(policy).await;

    let outbound = payments.outbound;
    let answers = concurrently(8, 20, move || answered_by(outbound)).await;
    assert!(answers.iter().all(|a| a == "ledger-1"), "{answers:?}");
    let page = payments.metrics().await;
    assert_eq!(events(&page, "ejection"), 1.0, "{page}");
    let failed = crashed.requests_seen().await;
    assert!(
        (3.0..=3.0 + 8.0).contains(&failed),
        "3 consecutive failures eject, plus at most one in flight per worker: {failed}"
    );
    assert_eq!(events(&page, "retry"), failed, "each failure was retried");
    assert_eq!(healthy.requests_seen().await, 160.0);

    let answers = concurrently(8, 10, move || answered_by(outbound)).await;
    assert!(answers.iter().all(|a| a == "ledger-1"), "{answers:?}");
    assert_eq!(
        crashed.requests_seen().await,
        failed,
        "ejected: no more traffic"
    );

    // The ejection is on the span of the request whose failure caused it,
    // where root-cause ranking reads it as a mesh signal against ledger.
    let query = format!("{}/api/v1/query", control_plane.web);
    let sql = "SELECT peer, attributes['mesh.endpoint.ejections'] AS ejections FROM spans \
               WHERE service = 'payments' AND kind = 'client' \
               AND attributes['mesh.endpoint.ejections'] IS NOT NULL";
    let rows = eventually(Duration::from_secs(20), "the ejection's span", || {
        let query = query.clone();
        async move {
            let (status, answer) =
                client::post_json(&query, &serde_json::json!({"sql": sql})).await;
            (status == 200 && answer["row_count"] == 1).then(|| answer["rows"].clone())
        }
    })
    .await;
    assert_eq!(rows[0]["ejections"], "1", "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_leaves_a_failed_locality_and_comes_back_when_it_recovers() {
    let control_plane = Meshtwin::serve(&[]);
    let mut local = Ledger::start(&control_plane, "ledger-a", "region-a", true).await;
    let remote = Ledger::start(&control_plane, "ledger-b", "region-b", true).await;
    let policy = "[services.outlier]\nconsecutive_failures = 3\nbase_ejection_ms = 500\nmax_ejection_ms = 2000";
    let payments = payments(
        &control_plane,
        "region-a",
        vec![local.endpoint("region-a"), remote.endpoint("region-b")],
        policy,
    )
    .await;

    for i in 0..20 {
        assert_eq!(
            answered_by(payments.outbound).await,
            "ledger-a",
            "request {i} stays local"
        );
    }

    local.app.take().expect("running").terminate();
    for i in 0..40 {
        assert_eq!(
            answered_by(payments.outbound).await,
            "ledger-b",
            "request {i} while region-a is down"
        );
    }
    let page = payments.metrics().await;
    assert!(events(&page, "ejection") >= 1.0, "{page}");

    local.app = Some(start_app_on(
        "ledger-a",
        &local.app_address.to_string(),
        false,
    ));
    eventually(
        Duration::from_secs(15),
        "traffic back in region-a",
        || async { (answered_by(payments.outbound).await == "ledger-a").then_some(()) },
    )
    .await;
    for i in 0..20 {
        assert_eq!(
            answered_by(payments.outbound).await,
            "ledger-a",
            "request {i} after recovery stays local"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_delays_and_aborts_hit_their_share_of_requests() {
    const REQUESTS: usize = 400;
    const WORKERS: usize = 8;
    const DELAY: Duration = Duration::from_millis(200);
    let control_plane = Meshtwin::serve(&[]);
    let ledger = Ledger::start(&control_plane, "ledger-1", "", true).await;
    let policy = "[[services.faults]]\ndelay_ms = 200\ndelay_percent = 25\nabort_status = 503\nabort_percent = 10";
    let payments = payments(&control_plane, "", vec![ledger.endpoint("")], policy).await;

    let outbound = payments.outbound;
    let replies = concurrently(WORKERS, REQUESTS / WORKERS, move || async move {
        let started = Instant::now();
        let reply = call(outbound, "ledger", "/echo").await;
        let injected = reply
            .headers
            .get("meshtwin-proxy-error")
            .is_some_and(|v| v == "fault injected: abort");
        (reply.status.as_u16(), injected, started.elapsed())
    })
    .await;
    assert_eq!(replies.len(), REQUESTS);
    let aborted = replies.iter().filter(|(s, i, _)| *s == 503 && *i).count();
    let delayed = replies.iter().filter(|(_, _, t)| *t >= DELAY).count();
    let other = replies
        .iter()
        .filter(|(s, i, _)| !(*s == 200 || (*s == 503 && *i)))
        .count();
    assert_eq!(other, 0, "every request either succeeded or was aborted");

    // Binomial counts: 400 × 10 % = 40 aborts (σ = 6), 400 × 25 % = 100
    // delays (σ ≈ 8.7). The tolerance is 5 σ either side, so a correct
    // proxy fails this test about once in 1.7 million runs.
    eprintln!("{aborted} aborted and {delayed} delayed of {REQUESTS}");
    assert!(
        (10..=70).contains(&aborted),
        "{aborted} of {REQUESTS} aborted"
    );
    assert!(
        (57..=143).contains(&delayed),
        "{delayed} of {REQUESTS} delayed"
    );

    // The proxy counts exactly what the clients saw aborted, and at most
    // the requests that took longer than the delay.
    let page = payments.metrics().await;
    assert_eq!(events(&page, "fault_abort"), aborted as f64);
    assert!(events(&page, "fault_delay") <= delayed as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_are_replayed_with_their_body_and_others_are_not() {
    // Never eject, so the crashed endpoint keeps being picked.
    let policy = "[services.outlier]\nconsecutive_failures = 0";
    let (_control_plane, _healthy, _crashed, payments) = one_healthy_one_crashed(policy).await;
    let url = format!("http://{}/echo", payments.outbound);
    let send = |method: Method| {
        let url = url.clone();
        move || {
            let (method, url) = (method.clone(), url.clone());
            async move {
                let body = vec![b'x'; BODY];
                let reply = client::request(method, &url, &[("host", "ledger")], body).await;
                let arrived = (reply.status == 200).then(|| reply.json()["body_bytes"].clone());
                (reply.status.as_u16(), arrived)
            }
        }
    };
    const BODY: usize = 10 * 1024;
    let puts = concurrently(8, 10, send(Method::PUT)).await;
    for (status, arrived) in &puts {
        assert_eq!(*status, 200);
        assert_eq!(arrived.clone().unwrap(), BODY, "each PUT arrived whole");
    }
    let retries = events(&payments.metrics().await, "retry");
    assert!(retries > 0.0, "some PUTs met the crashed endpoint");

    let posts = concurrently(8, 10, send(Method::POST)).await;
    let failed_posts = posts.iter().filter(|(status, _)| *status == 502).count();
    assert!(posts.iter().all(|(status, _)| [200, 502].contains(status)));
    assert!(
        failed_posts > 0,
        "a POST that reached a failing app is not sent twice"
    );
    assert_eq!(events(&payments.metrics().await, "retry"), retries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_timeout_and_a_full_breaker_answer_at_once() {
    let control_plane = Meshtwin::serve(&[]);
    let ledger = Ledger::start(&control_plane, "ledger-1", "", true).await;
    let policy = "timeout_ms = 800\n[services.breaker]\nmax_concurrent = 2";
    let payments = payments(&control_plane, "", vec![ledger.endpoint("")], policy).await;

    let reply = call(payments.outbound, "ledger", "/delay/5000").await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(
        reply.text().contains("no response within 800 ms"),
        "{}",
        reply.text()
    );

    // Two slow requests fill the endpoint; a third is refused, not queued.
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(call(payments.outbound, "ledger", "/delay/600")))
        .collect();
    let series = "meshtwin_proxy_outbound_in_flight{service=\"ledger\"}";
    eventually(Duration::from_secs(5), "two requests in flight", || async {
        (metric(&payments.metrics().await, series) == Some(2.0)).then_some(())
    })
    .await;
    let refused = call(payments.outbound, "ledger", "/echo").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("circuit breaker open"),
        "{}",
        refused.text()
    );
    for request in slow {
        assert_eq!(request.await.expect("slow request").status, 200);
    }
    let page = payments.metrics().await;
    assert_eq!(events(&page, "breaker_open"), 1.0);
    assert_eq!(events(&page, "timeout"), 1.0);
}
