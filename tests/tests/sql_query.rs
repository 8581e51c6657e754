//! SQL over a live meshtwin: the real OpenTelemetry SDK (Python) sends
//! traces and metrics; `meshtwin query` and `POST /api/v1/query` answer
//! from the stored spans, the metrics, and the twin's history; wrong SQL
//! comes back with its line and column; the row limit and the timeout
//! hold; after the server stops, `--data-dir` reads the same store.

use std::process::{Command, Output};
use std::time::Duration;

use meshtwin_tests::client::post;
use meshtwin_tests::sandbox::{Meshtwin, eventually, meshtwin_bin};
use meshtwin_tests::tools;

const TRACES: u64 = 12;

fn python(script: &str, args: &[&str]) {
    tools::run_python(script, args);
}

fn query(args: &[&str]) -> Output {
    Command::new(meshtwin_bin())
        .arg("query")
        .args(args)
        .output()
        .expect("run meshtwin query")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "meshtwin query failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The nice value of each of `pid`'s threads named `query`.
fn query_thread_nice(pid: u32) -> Vec<i64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .unwrap_or_default()
                .trim()
                == "query"
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the command name; nice is the 19th field.
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(16)?
                .parse()
                .ok()
        })
        .collect()
}

async fn api(web: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let reply = post(
        &format!("{web}/api/v1/query"),
        "application/json",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    (reply.status.as_u16(), reply.json())
}

/// Calls per service pair: each CLIENT span joined to the SERVER span it
/// caused (the SDK sets no `peer.service`, so `peer` cannot say).
const PAIRS: &str = "SELECT c.service AS caller, s.service AS callee, count(*) AS calls, \
     sum(CASE WHEN s.error THEN 1 ELSE 0 END) AS errors \
     FROM spans c JOIN spans s ON s.trace_id = c.trace_id AND s.parent_span_id = c.span_id \
     WHERE c.kind = 'client' AND s.kind = 'server' GROUP BY 1, 2 ORDER BY 1";

#[tokio::test(flavor = "multi_thread")]
async fn sql_answers_from_stored_spans_metrics_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("meshtwin.toml");
    std::fs::write(
        &config,
        "[store]\nsegment_max_seconds = 1\nhistory_interval_seconds = 1\ntables_flush_seconds = 1\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let meshtwin = Meshtwin::serve_in(&data, &["--config", config.to_str().unwrap()]);
    python(
        "three_services.py",
        &[
            &meshtwin.otlp_grpc,
            &meshtwin.otlp_http,
            &TRACES.to_string(),
        ],
    );
    python("payments_metrics.py", &[&meshtwin.otlp_grpc]);

    // Spans: a segment is written within a second; a CLIENT span per call.
    let server = ["--server", meshtwin.web.as_str()];
    let csv = eventually(Duration::from_secs(20), "every span in SQL", || async {
        let text = stdout(&query(&[&server[..], &[PAIRS, "--format", "csv"]].concat()));
        text.contains(&format!("payments,ledger,{TRACES},1"))
            .then_some(text)
    })
    .await;
    assert_eq!(
        csv,
        format!(
            "caller,callee,calls,errors\r\ncheckout,payments,{TRACES},0\r\npayments,ledger,{TRACES},1\r\n"
        ),
    );
    let errors = stdout(&query(
        &[
            &server[..],
            &[
                "SELECT service, status_message FROM spans WHERE error",
                "--format",
                "json",
            ],
        ]
        .concat(),
    ));
    let errors: serde_json::Value = serde_json::from_str(&errors).unwrap();
    assert_eq!(
        errors,
        serde_json::json!([{"service": "ledger", "status_message": "insufficient funds"}])
    );

    // Metrics, as the SDK exported them (cumulative sums).
    let rows = eventually(Duration::from_secs(10), "the metrics table", || {
        let web = meshtwin.web.clone();
        async move {
            let (_, answer) = api(
                &web,
                serde_json::json!({"sql": "SELECT name, kind, region, attributes['currency'] AS currency, \
                    value, count, sum FROM metrics WHERE service = 'payments' ORDER BY name, currency"}),
            )
            .await;
            (answer["row_count"] == 3).then(|| answer["rows"].clone())
        }
    })
    .await;
    assert_eq!(
        rows,
        serde_json::json!([
            {"name": "payments.amount", "kind": "histogram", "region": "eu-west-1", "currency": null, "value": null, "count": 3, "sum": 90.0},
            {"name": "payments.processed", "kind": "sum", "region": "eu-west-1", "currency": "EUR", "value": 5.0, "count": null, "sum": null},
            {"name": "payments.processed", "kind": "sum", "region": "eu-west-1", "currency": "GBP", "value": 2.0, "count": null, "sum": null},
        ])
    );

    // The twin's history: the graph's two edges, with every call.
    let history = "SELECT source, target, max(total_requests) AS calls FROM edges \
        GROUP BY source, target ORDER BY source";
    eventually(
        Duration::from_secs(20),
        "both edges in the history",
        || async {
            let text = stdout(&query(
                &[&server[..], &[history, "--format", "csv"]].concat(),
            ));
            (text
            == format!(
                "source,target,calls\r\ncheckout,payments,{TRACES}\r\npayments,ledger,{TRACES}\r\n"
            ))
        .then_some(())
        },
    )
    .await;

    // Wrong SQL: exit 65, the message, and a caret under the column.
    let typo = query(&[&server[..], &["SELECT servce\nFROM spans"]].concat());
    assert_eq!(typo.status.code(), Some(65));
    let message = String::from_utf8_lossy(&typo.stderr);
    assert!(
        message.contains("servce") && message.contains("line 1, column 8"),
        "{message}"
    );
    assert!(
        message.contains("\n  SELECT servce\n         ^"),
        "{message}"
    );
    let (status, answer) = api(
        &meshtwin.web,
        serde_json::json!({"sql": "SELECT count(* FROM spans"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        (&answer["kind"], &answer["line"], &answer["column"]),
        (&"invalid".into(), &1.into(), &16.into()),
        "{answer}"
    );
    let (status, answer) = api(
        &meshtwin.web,
        serde_json::json!({"sql": "DROP TABLE spans"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("read-only"),
        "{answer}"
    );

    // The row limit cuts and says so; the timeout cancels.
    let (_, answer) = api(
        &meshtwin.web,
        serde_json::json!({"sql": "SELECT span_id FROM spans", "max_rows": 5}),
    )
    .await;
    assert_eq!(
        (&answer["row_count"], &answer["truncated"]),
        (&5.into(), &true.into())
    );
    let (status, answer) = api(
        &meshtwin.web,
        serde_json::json!({"sql": "SELECT count(*) FROM generate_series(1, 100000000000)", "timeout_seconds": 0.5}),
    )
    .await;
    assert_eq!(
        (status, &answer["kind"]),
        (504, &"timeout".into()),
        "{answer}"
    );

    // Queries ran on threads of their own, at the lowest CPU priority.
    let nice = query_thread_nice(meshtwin.pid());
    assert!(!nice.is_empty(), "no query threads");
    assert!(nice.iter().all(|n| *n == 19), "{nice:?}");

    // Stopped: the same answer straight from the data directory.
    let (status, _) = meshtwin.terminate();
    assert!(status.success());
    let offline = query(&[
        "--data-dir",
        data.to_str().unwrap(),
        PAIRS,
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&offline), csv);
}
