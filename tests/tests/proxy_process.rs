//! `meshtwin-proxy` as a process: bad config, a
//! graceful SIGTERM, certificate rotation under load, connections spread
//! over its serving threads, and the scheduling policy of its threads.

use std::process::Command;
use std::time::{Duration, Instant};

use meshtwin_tests::client;
use meshtwin_tests::mesh::{
    MeshProxy, Pair, ProxySpec, call, one_endpoint, sibling_bin, start_app,
};
use meshtwin_tests::sandbox::Meshtwin;

#[test]
fn a_bad_config_exits_64_listing_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, "colour = 1\n[identity]\nservice = \"Payments\"\n[[services]]\nname = \"db\"\nprotocol = \"tcp\"\n").expect("write");
    let output = Command::new(sibling_bin("meshtwin-proxy"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run meshtwin-proxy");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown key `colour`"), "{stderr}");
    // Fixing the unknown key shows the rest at once.
    std::fs::write(
        &path,
        "[identity]\nservice = \"Payments\"\n[[services]]\nname = \"db\"\nprotocol = \"tcp\"\n",
    )
    .expect("write");
    let output = Command::new(sibling_bin("meshtwin-proxy"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "invalid service name",
        "trust_anchors: required",
        "needs a local `port`",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let control_plane = Meshtwin::serve(&[]);
    let ca = control_plane.data_dir().join("ca.pem");
    let Pair {
        a,
        app: _app,
        b: _b,
    } = Pair::start(&control_plane.control, &control_plane.otlp_grpc, &ca).await;
    let url = format!("http://{}/delay/1500", a.outbound);
    let slow = tokio::spawn(async move {
        client::request(http::Method::GET, &url, &[("host", "ledger")], vec![]).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || a.process.terminate().0)
        .await
        .expect("join");
    let reply = slow.await.expect("join");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the proxy exited before the request finished"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_rotate_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("meshtwin.toml");
    // 6 s certificates: renewed every 4 s.
    std::fs::write(&config, "[identity]\ncertificate_lifetime_seconds = 6\n").expect("write");
    let control_plane = Meshtwin::serve(&["--config", config.to_str().expect("utf-8")]);
    let ca = control_plane.data_dir().join("ca.pem");
    let Pair { a, b, app: _app } =
        Pair::start(&control_plane.control, &control_plane.otlp_grpc, &ca).await;

    // 14 s of load from 4 callers (each request on a fresh client, so new
    // connections meet new certificates too), spanning three renewals.
    let url = format!("http://{}/echo", a.outbound);
    let deadline = Instant::now() + Duration::from_secs(14);
    let mut callers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        callers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while Instant::now() < deadline {
                let reply =
                    client::request(http::Method::GET, &url, &[("host", "ledger")], vec![]).await;
                if reply.status == 200 {
                    ok += 1;
                } else {
                    failed.push(reply.text());
                }
            }
            (ok, failed)
        }));
    }
    let mut total = 0;
    for caller in callers {
        let (ok, failed) = caller.await.expect("join");
        assert!(
            failed.is_empty(),
            "{} requests failed during rotation: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        total += ok;
    }
    assert!(total > 100, "only {total} requests were made");
    for proxy in [&a, &b] {
        let page = proxy.metrics().await;
        let rotations = client::metric(
            &page,
            "meshtwin_proxy_certificate_rotations_total{result=\"succeeded\"}",
        )
        .unwrap_or(0.0);
        assert!(
            rotations >= 4.0,
            "{rotations} certificates issued in 14 s of 6 s certificates"
        );
        let expiry = client::metric(&page, "meshtwin_proxy_certificate_expiry_seconds")
            .expect("expiry gauge");
        assert!(expiry > 0.0 && expiry <= 6.0, "expiry {expiry}");
    }
}

/// (thread name, scheduling policy, nice) of every thread of `pid`, from
/// fields 2, 41 and 19 of `/proc/PID/task/TID/stat`.
fn thread_scheduling(pid: u32) -> Vec<(String, u32, i32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list threads");
    let mut threads = Vec::new();
    for task in tasks {
        let stat = std::fs::read_to_string(task.expect("thread").path().join("stat"))
            .expect("read thread stat");
        let (name, rest) = stat.rsplit_once(')').expect("stat has a name");
        let name = name.split_once('(').expect("stat has a name").1.to_owned();
        // `rest` starts at field 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let nice = fields[16].parse().expect("nice");
        let policy = fields[38].parse().expect("policy");
        threads.push((name, policy, nice));
    }
    threads
}

const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;

#[tokio::test(flavor = "multi_thread")]
async fn serving_threads_run_under_the_configured_policy_and_telemetry_under_sched_idle() {
    let control_plane = Meshtwin::serve(&[]);
    let ca = control_plane.data_dir().join("ca.pem");
    let spec = |scheduling| {
        let mut spec = ProxySpec::new(
            "ledger",
            &control_plane.control,
            &control_plane.otlp_grpc,
            &ca,
        );
        spec.scheduling = scheduling;
        spec.threads = Some(2);
        spec
    };
    for (scheduling, serving_policy) in [
        (None, SCHED_BATCH),
        (Some("batch"), SCHED_BATCH),
        (Some("normal"), SCHED_OTHER),
    ] {
        let proxy = MeshProxy::start(&spec(scheduling)).await;
        let threads = thread_scheduling(proxy.process.pid());
        let serving: Vec<_> = threads
            .iter()
            .filter(|(name, ..)| name == "meshtwin-proxy" || name.starts_with("serve-"))
            .collect();
        assert_eq!(serving.len(), 2, "main and serve-1: {threads:?}");
        for thread in serving {
            assert_eq!(
                (thread.1, thread.2),
                (serving_policy, 0),
                "scheduling {scheduling:?}: {threads:?}"
            );
        }
        let telemetry = threads
            .iter()
            .find(|(name, ..)| name == "telemetry")
            .expect("the telemetry thread");
        assert_eq!(telemetry.1, SCHED_IDLE, "{threads:?}");
    }
}

/// Connections accepted on `listener` by serving thread `thread`.
fn accepted(page: &str, listener: &str, thread: usize) -> f64 {
    client::metric(
        page,
        &format!(
            "meshtwin_proxy_connections_accepted_total{{listener=\"{listener}\",thread=\"{thread}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_spread_over_every_serving_thread() {
    let control_plane = Meshtwin::serve(&[]);
    let ca = control_plane.data_dir().join("ca.pem");
    let spec = |service: &str| {
        let mut spec = ProxySpec::new(
            service,
            &control_plane.control,
            &control_plane.otlp_grpc,
            &ca,
        );
        spec.threads = Some(2);
        spec
    };
    let app = start_app("ledger", false);
    let mut ledger = spec("ledger");
    ledger.app = Some(app.address("http"));
    let ledger = MeshProxy::start(&ledger).await;
    let mut payments = spec("payments");
    let inbound = ledger.inbound.expect("an inbound side").port();
    payments
        .services
        .push(one_endpoint("ledger", "http", None, inbound));
    let payments = MeshProxy::start(&payments).await;

    // Each call is a new connection from the app; the kernel hashes each
    // to one of the two sockets on the outbound port.
    const CALLS: usize = 40;
    for i in 0..CALLS {
        let reply = call(payments.outbound, "ledger", &format!("/echo?call={i}")).await;
        assert_eq!(reply.status, 200, "call {i}: {}", reply.text());
    }
    let page = payments.metrics().await;
    let by_thread = [
        accepted(&page, "outbound", 0),
        accepted(&page, "outbound", 1),
    ];
    assert_eq!(by_thread.iter().sum::<f64>(), CALLS as f64, "{page}");
    // All 40 on one thread has odds of 2^-39 when the kernel spreads them.
    assert!(by_thread.iter().all(|n| *n > 0.0), "{by_thread:?}");
    // Each of payments' threads calls ledger on connections of its own.
    let page = ledger.metrics().await;
    let inbound = accepted(&page, "inbound", 0) + accepted(&page, "inbound", 1);
    assert!((2.0..CALLS as f64).contains(&inbound), "{inbound}: {page}");
}
