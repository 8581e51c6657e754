//! `meshtwin failover test-hooks`: a webhook receiver on 127.0.0.1 gets a
//! body whose signature Python's own `hmac` accepts, and an exec hook runs
//! with the event on its standard input; a failing hook makes the command
//! fail. `meshtwin failover check` lists the rules.

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshtwin_tests::sandbox::meshtwin_bin;

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver answering `status`, keeping each signature header and body.
async fn receiver(status: u16) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/failover", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let signed = request
                            .headers()
                            .get("x-meshtwin-signature")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push((signed, body.to_vec()));
                        let reply = hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"noted")))
                            .unwrap();
                        Ok::<_, Infallible>(reply)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

fn rules(url: &str, out: &Path) -> String {
    format!(
        r#"
[[rules]]
name = "payments-region-a"
service = "payments"
locality = "region-a"
when = {{ signal = "error_ratio", above = 0.2, for_s = 5 }}
recover = {{ signal = "error_ratio", below = 0.01, for_s = 30 }}
shift_traffic = {{ to_locality = "region-b" }}
webhooks = [{{ url = "{url}", secret_env = "TEST_WEBHOOK_SECRET", max_attempts = 2 }}]
exec = [{{ argv = ["sh", "-c", "cat > \"$OUT\"; echo promoted $MESHTWIN_SERVICE"], env = {{ OUT = "{}" }} }}]
"#,
        out.display()
    )
}

/// `meshtwin ARGS` with the webhook secret set, off the async threads.
async fn meshtwin(args: Vec<String>, secret: Option<&'static str>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(meshtwin_bin());
        command.args(&args).env_remove("TEST_WEBHOOK_SECRET");
        if let Some(secret) = secret {
            command.env("TEST_WEBHOOK_SECRET", secret);
        }
        let output = command.output().expect("run meshtwin");
        (
            output.status.code().expect("exited"),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Python's hmac checks the signature header against the body.
fn python_accepts(secret: &str, header: &str, body: &[u8]) -> bool {
    let script = r#"
import hmac, hashlib, sys
secret, header = sys.argv[1].encode(), sys.argv[2]
body = sys.stdin.buffer.read()
parts = dict(p.split("=", 1) for p in header.split(","))
expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, parts["sha256"]) else 1)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, secret, header])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait().unwrap().success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_hooks_sends_a_signed_webhook_and_runs_the_exec_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = receiver(200).await;
    let out = dir.path().join("stdin.json");
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, rules(&url, &out)).unwrap();
    let file = file.display().to_string();

    let (code, stdout, stderr) = meshtwin(
        vec!["failover".into(), "test-hooks".into(), file.clone()],
        Some("s3cret"),
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{stdout}");
    assert!(
        results.iter().all(|r| r["result"]["ok"] == true),
        "{stdout}"
    );
    assert_eq!(
        results[1]["result"]["attempts"][0]["output"],
        "promoted payments\n"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (header, body) = &seen[0];
    assert!(python_accepts("s3cret", header, body), "{header}");
    assert!(!python_accepts("other", header, body));
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["event"], "test");
    assert_eq!(event["rule"], "payments-region-a");
    assert_eq!(event["to_locality"], "region-b");
    let stdin: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(stdin, event);

    let (code, stdout, _) = meshtwin(
        vec!["failover".into(), "check".into(), file.clone()],
        Some("s3cret"),
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains(
            "payments-region-a [dry_run] payments@region-a: moves to region-b, 2 hook(s)"
        ),
        "{stdout}"
    );

    // Without the secret in the environment the file is refused (64).
    let (code, _, stderr) = meshtwin(vec!["failover".into(), "check".into(), file], None).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("the signing secret $TEST_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_fails_the_test_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = receiver(503).await;
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, rules(&url, &dir.path().join("out.json"))).unwrap();
    let args = vec![
        "failover".into(),
        "test-hooks".into(),
        file.display().to_string(),
        "--rule".into(),
        "payments-region-a".into(),
    ];
    let (code, stdout, stderr) = meshtwin(args, Some("s3cret")).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("1 hook(s) failed"), "{stderr}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["result"]["attempts"][1]["status"], 503);
}
