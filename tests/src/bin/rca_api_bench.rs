//! `rca-api-bench`: how long root causes take through the API of a
//! running meshtwin (release build), from the span store: for an incident
//! (`GET /api/v1/incidents/{id}/rca`) and for past windows
//! (`POST /api/v1/rca`). The peer, timed in the same run on the same
//! windows, is the query a dashboard would run instead: requests, errors
//! and p99 per service (`POST /api/v1/query`). The data is the anomalies
//! test's: ten minutes of Online Boutique from an hour ago, 60 % of
//! cart's calls failing from minute 7 for two minutes, replayed with
//! their own timestamps. Refuses to run on a busy machine unless
//! `--force`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use meshtwin_tests::client::{get, metric, post_json};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use meshtwin_tests::{bench_record, machine, stats, tools};

#[derive(Debug, Parser)]
#[command(
    name = "rca-api-bench",
    about = "Time root-cause ranking through the API against a per-service SQL summary"
)]
struct Args {
    /// Timed requests of each kind after the first.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the dataset and the data directory are written (replaced).
    #[arg(long, default_value = "target/rca-api-bench")]
    work: PathBuf,
    /// Write the table into this file (BENCHMARKS.md).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Run even if the machine is busy (the results are marked).
    #[arg(long)]
    force: bool,
}

const SECOND: i64 = 1_000_000_000;
const FAULT_START_S: i64 = 420;

fn meshtwin(args: &[&str]) {
    let mut command = Command::new(meshtwin_tests::sandbox::meshtwin_bin());
    command.args(args);
    tools::stdout_of(command, &format!("meshtwin {args:?}"));
}

/// The case, starting on a whole minute an hour ago; its start in Unix ns.
fn write_case(work: &Path) -> (PathBuf, i64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let start = (now.as_secs() as i64 / 60 * 60 - 3600) * SECOND;
    let path = work.join("case.toml");
    let text = format!(
        "topology = \"online-boutique\"\nduration_s = 600.0\n\n[options]\nseed = 3\n\
         start_unix_nano = {start}\n\n[[options.faults]]\ntype = \"error_returns\"\n\
         share = 0.6\nservice = \"cart\"\nstart_s = {FAULT_START_S}.0\nduration_s = 120.0\n"
    );
    std::fs::write(&path, text).unwrap();
    (path, start)
}

/// One timed request: wall seconds and the JSON answer.
async fn timed_rca(web: &str, request: &Request) -> (f64, serde_json::Value) {
    let started = Instant::now();
    let answer = match &request.window {
        None => {
            let reply = get(&format!("{web}/api/v1/incidents/{}/rca", request.incident)).await;
            assert!(reply.status.is_success(), "{}", reply.text());
            reply.json()
        }
        Some((from, to)) => {
            let body = serde_json::json!({"from": from / SECOND, "to": to / SECOND});
            let (status, answer) = post_json(&format!("{web}/api/v1/rca"), &body).await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };
    (started.elapsed().as_secs_f64(), answer)
}

/// The dashboard's query over `from..to`: wall seconds.
async fn timed_summary(web: &str, from: i64, to: i64) -> f64 {
    let sql = format!(
        "SELECT service, count(*) AS requests, sum(CASE WHEN error THEN 1 ELSE 0 END) AS errors, \
         approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) AS p99_ns \
         FROM spans WHERE kind = 'server' \
           AND start_time >= to_timestamp_nanos({from}) AND start_time < to_timestamp_nanos({to}) \
         GROUP BY service"
    );
    let started = Instant::now();
    let (status, answer) = post_json(
        &format!("{web}/api/v1/query"),
        &serde_json::json!({"sql": sql}),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(status, 200, "{answer}");
    let requests: u64 = answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|row| row["requests"].as_u64())
        .sum();
    assert!(requests > 0, "the summary found no requests: {answer}");
    wall
}

struct Request {
    what: &'static str,
    incident: u64,
    /// The abnormal window; `None` for the incident's own.
    window: Option<(i64, i64)>,
}

struct Row {
    what: &'static str,
    spans: u64,
    top: String,
    first: f64,
    median: f64,
    max: f64,
    summary: f64,
}

/// The abnormal window and the normal window before it, as the answer
/// gives them: the span the summary reads.
fn span_read(answer: &serde_json::Value) -> (i64, i64) {
    let nanos = |key: &str| answer[key].as_i64().expect(key);
    (nanos("normal_from_unix_nanos"), nanos("to_unix_nanos"))
}

async fn measure(web: &str, request: &Request, runs: usize) -> Row {
    let (first, answer) = timed_rca(web, request).await;
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(timed_rca(web, request).await.0);
    }
    let (from, to) = span_read(&answer);
    let mut summaries = Vec::new();
    for _ in 0..=runs {
        summaries.push(timed_summary(web, from, to).await);
    }
    Row {
        what: request.what,
        spans: answer["spans"].as_u64().unwrap_or(0),
        top: answer["causes"][0]["service"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        first,
        median: stats::median(times.clone()),
        max: times.iter().copied().fold(0.0, f64::max),
        summary: stats::median(summaries[1..].to_vec()),
    }
}

fn report(rows: &[Row], runs: usize, busy: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(reason) = busy {
        text.push_str(&format!("**Measured on a busy machine ({reason}).**\n\n"));
    }
    text.push_str(&format!(
        "Online Boutique, ten minutes from an hour ago, 60 % of cart's calls failing from \
         minute 7 for two minutes, replayed into `meshtwin serve` (release) with its own \
         timestamps. Each request once, then {runs} timed runs; the peer is the \
         per-service requests / errors / p99 query (`POST /api/v1/query`) over the same \
         normal and abnormal windows, in the same run.\n\n\
         | request | spans read | top cause | first ms | median ms | max ms | SQL summary median ms | ratio |\n\
         | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n"
    ));
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}× |\n",
            row.what,
            row.spans,
            row.top,
            row.first * 1e3,
            row.median * 1e3,
            row.max * 1e3,
            row.summary * 1e3,
            row.median / row.summary
        ));
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let busy = match machine::check_idle("rca-api-bench", args.force) {
        Ok(busy) => busy,
        Err(code) => return code,
    };
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work).unwrap();
    let (case, start) = write_case(&args.work);
    let dataset = args.work.join("dataset");
    eprintln!("rca-api-bench: generating the case");
    meshtwin(&[
        "generate",
        "--case",
        case.to_str().unwrap(),
        "--out",
        dataset.to_str().unwrap(),
    ]);
    let manifest = meshtwin_datasets::dataset::read_manifest(&dataset).unwrap();
    let config = args.work.join("meshtwin.toml");
    std::fs::write(&config, "[store]\ntables_flush_seconds = 1\n").unwrap();
    let server = Meshtwin::serve_in(
        &args.work.join("data"),
        &["--config", config.to_str().unwrap()],
    );
    eprintln!("rca-api-bench: replaying {} spans", manifest.spans);
    meshtwin(&[
        "replay",
        dataset.to_str().unwrap(),
        "--endpoint",
        &server.otlp_grpc,
        "--speed",
        "max",
        "--timestamps",
        "keep",
    ]);
    let web = server.web.clone();
    let spans = Some(manifest.spans as f64);
    eventually(Duration::from_secs(120), "every span in the store", || {
        let url = format!("{web}/metrics");
        async move {
            let page = get(&url).await.text();
            (metric(&page, "meshtwin_store_spans_in_segments_total") == spans).then_some(())
        }
    })
    .await;
    let incident = eventually(Duration::from_secs(60), "an incident on cart", || {
        let url = format!("{web}/api/v1/incidents");
        async move {
            let listing = get(&url).await.json();
            listing["incidents"].as_array()?.iter().find_map(|i| {
                let nodes = i["nodes"].as_array()?;
                nodes
                    .iter()
                    .any(|n| n == "boutique/cart")
                    .then(|| i["id"].as_u64())
                    .flatten()
            })
        }
    })
    .await;
    let fault = start + FAULT_START_S * SECOND;
    let requests = [
        Request {
            what: "incident (`GET /api/v1/incidents/{id}/rca`)",
            incident,
            window: None,
        },
        Request {
            what: "fault's first 2 minutes (`POST /api/v1/rca`)",
            incident,
            window: Some((fault, fault + 120 * SECOND)),
        },
        Request {
            what: "last 5 minutes, fault inside (`POST /api/v1/rca`)",
            incident,
            window: Some((start + 300 * SECOND, start + 600 * SECOND)),
        },
    ];
    let mut rows = Vec::new();
    for request in &requests {
        eprintln!("rca-api-bench: {}", request.what);
        rows.push(measure(&web, request, args.runs).await);
    }
    let (status, _) = server.terminate();
    assert!(status.success(), "meshtwin did not stop cleanly");
    let text = report(&rows, args.runs, busy.as_deref());
    print!("{text}");
    if let Some(path) = &args.record {
        let how = "`scripts/bench-rca-api` (builds the release binaries, runs \
                   `target/release/rca-api-bench --record BENCHMARKS.md`)";
        bench_record::record(path, "rca-api-bench", how, &text).expect("write BENCHMARKS.md");
    }
    ExitCode::SUCCESS
}
