//! `query-bench`: the issue-5 group-by — count, error count and p99
//! duration per service pair over one hour — on ten million stored spans,
//! through a running meshtwin's `POST /api/v1/query`, against DuckDB
//! reading the same Parquet files in the same run; and the store's disk
//! bytes per span. The hour is simulated (the bank topology, one seed) and
//! written through meshtwin's own OTLP ingest and span store. Refuses to
//! run on a busy machine unless `--force`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use meshtwin_tests::client::post;
use meshtwin_tests::sandbox::Meshtwin;
use meshtwin_tests::stats::median;
use meshtwin_tests::{bench_record, machine, tools};

#[derive(Debug, Parser)]
#[command(
    name = "query-bench",
    about = "Time the per-service-pair group-by over stored spans"
)]
struct Args {
    /// Spans to store (about; the simulation's rate is set from a pilot run).
    #[arg(long, default_value_t = 10_000_000)]
    spans: u64,
    /// Timed runs after the first.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the dataset and the store are kept between runs.
    #[arg(long, default_value = "target/query-bench")]
    work: PathBuf,
    /// A Python with the `duckdb` package.
    #[arg(long, default_value = "target/bench-venv/bin/python")]
    duckdb_python: PathBuf,
    /// Write the table into this file (BENCHMARKS.md).
    #[arg(long)]
    record: Option<PathBuf>,
    #[arg(long)]
    force: bool,
}

const HOUR_S: f64 = 3600.0;

fn meshtwin(args: &[&str]) -> String {
    let mut command = Command::new(meshtwin_tests::sandbox::meshtwin_bin());
    command.args(args);
    let stdout = tools::stdout_of(command, &format!("meshtwin {args:?}"));
    String::from_utf8_lossy(&stdout).into_owned()
}

fn case_file(dir: &Path, rate: f64, duration_s: f64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("case-{rate:.1}-{duration_s}.toml"));
    let text = format!(
        "topology = \"bank\"\nduration_s = {duration_s:.1}\n\n[options]\nseed = 1\nrate = {rate:.1}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn spans_in(dataset: &Path) -> u64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dataset.join("manifest.json")).unwrap()).unwrap();
    manifest["spans"].as_u64().expect("manifest spans")
}

/// Simulates an hour of the bank at the rate that gives about `spans`.
fn dataset(work: &Path, spans: u64) -> PathBuf {
    let pilot = work.join("pilot");
    if !pilot.join("manifest.json").exists() {
        let case = case_file(work, 20.0, 60.0);
        meshtwin(&[
            "generate",
            "--case",
            case.to_str().unwrap(),
            "--out",
            pilot.to_str().unwrap(),
        ]);
    }
    let per_rate_second = spans_in(&pilot) as f64 / (20.0 * 60.0);
    // A little over: a pilot minute extrapolates to an hour within a few %.
    let rate = (spans as f64 * 1.04 / (per_rate_second * HOUR_S) * 10.0).ceil() / 10.0;
    let out = work.join(format!("bank-{rate:.1}"));
    if !out.join("manifest.json").exists() {
        let case = case_file(work, rate, HOUR_S);
        eprintln!("query-bench: simulating an hour of the bank at {rate} requests/s");
        meshtwin(&[
            "generate",
            "--case",
            case.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    out
}

async fn query(web: &str, sql: &str) -> (f64, serde_json::Value) {
    let body = serde_json::json!({"sql": sql, "timeout_seconds": 600});
    let started = Instant::now();
    let reply = post(
        &format!("{web}/api/v1/query"),
        "application/json",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let answer = reply.json();
    assert!(reply.status.is_success(), "query failed: {answer}");
    (wall, answer)
}

const GROUP_BY: &str = "SELECT service, peer, count(*) AS calls, \
    sum(CASE WHEN error THEN 1 ELSE 0 END) AS errors, \
    approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) AS p99_ns \
    FROM spans WHERE kind = 'client' AND start_time >= {from} AND start_time < {to} \
    GROUP BY service, peer";

const DUCKDB: &str = r#"
import json, sys, time, duckdb
glob, sql, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet('{glob}')")
times, rows = [], 0
for _ in range(runs + 1):
    t = time.perf_counter()
    rows = len(con.execute(sql).fetchall())
    times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0], "runs": times[1:], "rows": rows}))
"#;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let busy = match machine::check_idle("query-bench", args.force) {
        Ok(busy) => busy,
        Err(code) => return code,
    };
    let dataset = dataset(&args.work, args.spans);
    let data = args.work.join("data");
    let stored_marker = data.join(format!(
        "stored-{}",
        dataset.file_name().unwrap().to_string_lossy()
    ));
    let mut ingest = None;
    if !stored_marker.exists() {
        let _ = std::fs::remove_dir_all(&data);
        let server = Meshtwin::serve_in(&data, &[]);
        let started = Instant::now();
        meshtwin(&[
            "replay",
            dataset.to_str().unwrap(),
            "--endpoint",
            &server.otlp_grpc,
            "--speed",
            "max",
            // Moved to now: the store's retention keeps them.
            "--timestamps",
            "shift",
        ]);
        ingest = Some(started.elapsed().as_secs_f64());
        let (status, _) = server.terminate();
        assert!(status.success(), "meshtwin did not stop cleanly");
        std::fs::write(&stored_marker, "").unwrap();
    }
    let server = Meshtwin::serve_in(&data, &[]);
    let (_, count) = query(
        &server.web,
        "SELECT count(*) AS n, min(start_time) AS t0 FROM spans",
    )
    .await;
    let spans = count["rows"][0]["n"].as_u64().unwrap();
    let t0 = count["rows"][0]["t0"].as_str().unwrap().to_owned();
    let from = format!("TIMESTAMP '{t0}'");
    let to = format!("TIMESTAMP '{t0}' + INTERVAL '1 hour'");
    let sql = GROUP_BY.replace("{from}", &from).replace("{to}", &to);
    let (first, answer) = query(&server.web, &sql).await;
    let pairs = answer["row_count"].as_u64().unwrap();
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(query(&server.web, &sql).await.0);
    }
    let (status, _) = server.terminate();
    assert!(status.success());

    let spans_dir = data.join("store/spans");
    let glob = format!("{}/**/*.parquet", spans_dir.display());
    let duck_sql = sql.replace(
        "approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns)",
        "approx_quantile(duration_ns, 0.99)",
    );
    let output = Command::new(&args.duckdb_python)
        .args(["-c", DUCKDB, &glob, &duck_sql, &args.runs.to_string()])
        .output()
        .expect("run duckdb");
    assert!(
        output.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let duck: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let duck_runs: Vec<f64> = serde_json::from_value(duck["runs"].clone()).unwrap();
    assert_eq!(
        duck["rows"].as_u64(),
        Some(pairs),
        "both engines find the same pairs"
    );

    let bytes = tools::bytes_under(&spans_dir, Some("parquet"));
    let (ours, theirs) = (median(runs), median(duck_runs));
    let mut report = format!(
        "{spans} spans of one simulated hour (bank topology; asked for at least {}), \
         {pairs} service pairs; {} of Parquet, {:.1} bytes per span.\n\n",
        args.spans,
        format_args!("{:.0} MB", bytes as f64 / 1e6),
        bytes as f64 / spans as f64
    );
    report.push_str("| engine | first run (s) | median of next runs (s) |\n|---|---|---|\n");
    report.push_str(&format!(
        "| meshtwin (`POST /api/v1/query`, DataFusion) | {first:.2} | {ours:.2} |\n"
    ));
    report.push_str(&format!(
        "| DuckDB (Python, same files, 2 threads) | {:.2} | {theirs:.2} |\n",
        duck["first"].as_f64().unwrap()
    ));
    report.push_str(&format!(
        "\nmeshtwin / DuckDB (median): **{:.2}×**. Target: under 2 s on at least {} spans — {}.\n",
        ours / theirs,
        args.spans,
        if ours < 2.0 && spans >= args.spans {
            "met"
        } else {
            "NOT met"
        }
    ));
    if let Some(seconds) = ingest {
        report.push_str(&format!(
            "\nStoring them (`meshtwin replay --speed max` into `meshtwin serve`): {seconds:.0} s.\n"
        ));
    }
    if let Some(reason) = busy {
        report.push_str(&format!(
            "\n**Suspect: the machine was busy ({reason}).**\n"
        ));
    }
    println!("{report}");
    if let Some(path) = &args.record {
        let how = format!(
            "`scripts/bench-query` on {} ({} timed runs after the first)",
            machine::describe(),
            args.runs
        );
        bench_record::record(path, "query-bench", &how, &report).expect("write the record");
    }
    ExitCode::SUCCESS
}
