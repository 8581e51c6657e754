use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::*;

/// What a receiver saw: the signature and delivery headers and the body.
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 answering with `statuses` in turn
/// (the last one from then on).
async fn receiver(statuses: Vec<u16>) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (log, statuses) = (log.clone(), statuses.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let (log, statuses) = (log.clone(), statuses.clone());
                    async move {
                        let header = |name: &str| {
                            request.headers().get(name).map_or(String::new(), |v| {
                                v.to_str().unwrap_or_default().to_owned()
                            })
                        };
                        let (signed, delivery) =
                            (header(signature::HEADER), header("x-meshtwin-delivery"));
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let mut log = log.lock().unwrap();
                        log.push((signed, delivery, body.to_vec()));
                        let status = statuses[(log.len() - 1).min(statuses.len() - 1)];
                        let response = hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(format!("answer {}", log.len()))))
                            .unwrap();
                        Ok::<_, Infallible>(response)
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

fn webhook(url: &str, attempts: u32) -> Webhook {
    Webhook {
        url: url.to_owned(),
        secret_env: "UNUSED".to_owned(),
        max_attempts: attempts,
        timeout_s: 5,
    }
}

#[tokio::test]
async fn a_webhook_is_signed_and_retried_until_it_succeeds() {
    let (url, seen) = receiver(vec![503, 200]).await;
    let body = Bytes::from_static(b"{\"event\":\"failover\",\"rule\":\"payments-a\"}");
    let result = deliver(
        &webhook(&url, 4),
        b"s3cret",
        body.clone(),
        "payments-a@5000/failover",
        1_700_000_000,
    )
    .await;
    assert!(result.ok, "{result:?}");
    let statuses: Vec<Option<i32>> = result.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
    assert_eq!(result.attempts[1].output, "answer 2");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (signed, delivery, received) in seen.iter() {
        assert_eq!(received, &body.to_vec());
        assert_eq!(delivery, "payments-a@5000/failover");
        assert_eq!(
            signature::verify(b"s3cret", signed, received),
            Ok(1_700_000_000)
        );
        assert!(signature::verify(b"wrong", signed, received).is_err());
    }
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (url, seen) = receiver(vec![400]).await;
    let result = deliver(&webhook(&url, 4), b"k", Bytes::from_static(b"{}"), "d", 1).await;
    assert!(!result.ok);
    assert_eq!(result.attempts.len(), 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_uses_every_attempt() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let result = deliver(&webhook(&url, 2), b"k", Bytes::from_static(b"{}"), "d", 1).await;
    assert!(!result.ok);
    assert_eq!(result.attempts.len(), 2);
    assert!(
        result
            .attempts
            .iter()
            .all(|a| a.status.is_none() && a.error.is_some())
    );
}

fn exec(argv: &[&str], timeout_s: u64) -> ExecHook {
    ExecHook {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: [("HOOK_SETTING".to_owned(), "from-the-rule".to_owned())].into(),
        timeout_s,
    }
}

#[tokio::test]
async fn an_exec_hook_gets_the_event_on_stdin_and_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdin.json");
    let script = "cat > \"$OUT\"; echo \"$HOOK_SETTING $MESHTWIN_RULE\"";
    let hook = exec(&["sh", "-c", script], 10);
    let input = b"{\"event\":\"failover\",\"incident\":{\"id\":\"inc-1\"}}";
    let env = [
        ("OUT", out.display().to_string()),
        ("MESHTWIN_RULE", "payments-a".to_owned()),
    ];
    let result = run(&hook, input, &env).await;
    assert!(result.ok, "{result:?}");
    assert_eq!(result.attempts[0].status, Some(0));
    assert_eq!(result.attempts[0].output, "from-the-rule payments-a\n");
    assert_eq!(std::fs::read(&out).unwrap(), input);
}

#[tokio::test]
async fn a_failing_or_slow_program_is_reported() {
    let result = run(&exec(&["sh", "-c", "echo no >&2; exit 3"], 10), b"", &[]).await;
    assert!(!result.ok);
    assert_eq!(result.attempts[0].status, Some(3));
    assert_eq!(result.attempts[0].output, "no\n");

    let result = run(&exec(&["sleep", "30"], 1), b"", &[]).await;
    assert!(!result.ok);
    let error = result.attempts[0].error.as_deref().unwrap();
    assert!(error.contains("did not finish within 1 s"), "{error}");
    assert!(result.attempts[0].elapsed_ms < 10_000);

    let result = run(&exec(&["/nonexistent/program"], 1), b"", &[]).await;
    assert!(
        result.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot start")
    );
}
