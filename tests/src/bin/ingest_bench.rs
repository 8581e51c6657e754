//! Ingest benchmark: OTLP requests of 512 spans into `meshtwin serve` (with
//! the twin updating) over OTLP/gRPC and OTLP/HTTP, against two peers
//! measured in the same run: prost decoding the same payloads (the physical
//! limit) and rotel, a Rust OTLP collector, with its blackhole exporter.
//!
//! CPU is read from /proc for the receiving process only, so the load
//! generator (this process) does not count. Refuses to run while a build or
//! other load is on the machine, unless `--force` (the results then say so).
//!
//! Run it with `scripts/bench-ingest`.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshtwin_datasets::generator::request_for;
use meshtwin_datasets::{Topology, TraceGenerator};
use meshtwin_tests::client::{get, metric};
use meshtwin_tests::machine;
use meshtwin_tests::otlp::{RawCodec, TRACE_EXPORT_PATH};
use meshtwin_tests::sandbox::Meshtwin;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

const SPANS_PER_REQUEST: usize = 512;
/// Enough spans to fill the twin's pending tables (500 000 by default), so
/// the measured phase is steady state, not their one-off growth.
const WARMUP_REQUESTS: usize = 1_100;
/// A request refused as overloaded is retried at most this often.
const MAX_RETRIES: u32 = 10_000;

#[derive(Debug, Parser)]
#[command(about = "OTLP ingest benchmark: meshtwin vs prost decode-only vs rotel")]
struct Args {
    /// Spans sent per measured run (rounded up to whole requests of 512).
    #[arg(long, default_value_t = 2_048_000)]
    spans: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Run even on a busy machine; the results say it was busy.
    #[arg(long)]
    force: bool,
    /// Write the results into this Markdown file, between the
    /// `<!-- ingest-bench:begin -->` and `<!-- ingest-bench:end -->` markers.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// The rotel-agent binary [default: the one pip installed in target/bench-venv].
    #[arg(long, value_name = "PATH")]
    rotel: Option<PathBuf>,
    /// Runs per system and transport, each with a fresh process; the
    /// median is reported, with the range.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only run systems whose name contains this (e.g. `meshtwin`), for profiling.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// Only this transport (`grpc` or `http`), for profiling.
    #[arg(long, value_name = "TRANSPORT")]
    transport: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Grpc,
    Http,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Self::Grpc => "OTLP/gRPC",
            Self::Http => "OTLP/HTTP",
        }
    }
}

/// One measured run.
struct Row {
    system: &'static str,
    transport: &'static str,
    spans: usize,
    wall: f64,
    cpu: f64,
    peak_rss_mib: Option<f64>,
    retries: u64,
    /// Lowest and highest CPU µs/span over the repeated runs.
    range: (f64, f64),
}

impl Row {
    fn micros_per_span(&self) -> f64 {
        self.cpu * 1e6 / self.spans as f64
    }

    fn spans_per_core_second(&self) -> f64 {
        self.spans as f64 / self.cpu
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let busy = machine::busy_reason();
    if let Some(reason) = &busy {
        if !args.force {
            eprintln!(
                "ingest-bench: refusing to run: {reason}; wait until the machine is idle or pass --force"
            );
            return ExitCode::from(2);
        }
        eprintln!("ingest-bench: WARNING: {reason}; running anyway (--force), results are suspect");
    }
    let rotel = match args.rotel.clone().or_else(find_rotel) {
        Some(path) => path,
        None => {
            eprintln!(
                "ingest-bench: rotel-agent not found: run scripts/bench-ingest (it installs rotel with pip) or pass --rotel"
            );
            return ExitCode::from(2);
        }
    };

    eprintln!("generating payloads ...");
    let (warmup, payloads) = payloads(args.spans);
    let spans = payloads.len() * SPANS_PER_REQUEST;
    let bytes: usize = payloads.iter().map(Bytes::len).sum();

    eprintln!("decode-only (prost) ...");
    let decode = decode_only(&payloads);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = vec![decode];
    let wanted = |system: &str| {
        args.only
            .as_deref()
            .is_none_or(|only| system.contains(only))
    };
    let transports = [Transport::Grpc, Transport::Http].into_iter().filter(|t| {
        args.transport
            .as_deref()
            .is_none_or(|only| t.label().to_ascii_lowercase().ends_with(only))
    });
    for transport in transports {
        if wanted("meshtwin") {
            rows.push(median((0..args.repeat.max(1)).map(|run| {
                eprintln!("meshtwin {} run {} ...", transport.label(), run + 1);
                runtime.block_on(run_meshtwin(
                    transport,
                    &warmup,
                    &payloads,
                    args.concurrency,
                ))
            })));
        }
        if wanted("rotel") {
            rows.push(median((0..args.repeat.max(1)).map(|run| {
                eprintln!("rotel {} run {} ...", transport.label(), run + 1);
                runtime.block_on(run_rotel(
                    &rotel,
                    transport,
                    &warmup,
                    &payloads,
                    args.concurrency,
                ))
            })));
        }
    }

    let report = report(&rows, spans, bytes, &args, busy.as_deref());
    println!("{report}");
    if let Some(path) = &args.record {
        if let Err(error) = record(path, &report) {
            eprintln!("ingest-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("recorded in {}", path.display());
    }
    ExitCode::SUCCESS
}

/// The run with the median CPU per span, carrying the range of all runs.
fn median(runs: impl Iterator<Item = Row>) -> Row {
    let mut runs: Vec<Row> = runs.collect();
    runs.sort_by(|a, b| a.micros_per_span().total_cmp(&b.micros_per_span()));
    let range = (
        runs[0].micros_per_span(),
        runs[runs.len() - 1].micros_per_span(),
    );
    let mut middle = runs.swap_remove(runs.len() / 2);
    middle.range = range;
    middle
}

fn find_rotel() -> Option<PathBuf> {
    let lib = meshtwin_tests::tools::workspace().join("target/bench-venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/rotel/rotel-agent"))
        .find(|path| path.exists())
}

/// Realistic payloads: Online Boutique spans, 512 per request, each request
/// from one service instance as its SDK would batch them; every span id is
/// unique across the whole run.
fn payloads(spans: usize) -> (Vec<Bytes>, Vec<Bytes>) {
    let wanted = spans.div_ceil(SPANS_PER_REQUEST) + WARMUP_REQUESTS;
    let mut generator = TraceGenerator::new(Topology::online_boutique(), 42);
    let instances = generator.instances().to_vec();
    let mut buffers = vec![Vec::new(); instances.len()];
    let mut requests = Vec::with_capacity(wanted);
    let now = meshtwin_tests::otlp::now_nanos();
    let mut n = 0u64;
    while requests.len() < wanted {
        n += 1;
        for generated in generator.trace(now + n * 1_000_000) {
            let buffer = &mut buffers[generated.instance];
            buffer.push(generated.span);
            if buffer.len() == SPANS_PER_REQUEST {
                let request = request_for(&instances[generated.instance], std::mem::take(buffer));
                requests.push(Bytes::from(request.encode_to_vec()));
            }
        }
    }
    requests.truncate(wanted);
    let measured = requests.split_off(WARMUP_REQUESTS);
    (requests, measured)
}

/// The physical limit: decoding the same payloads with prost, one thread,
/// best of three passes.
fn decode_only(payloads: &[Bytes]) -> Row {
    let mut best: Option<Row> = None;
    for _ in 0..3 {
        let cpu_before = machine::thread_cpu_seconds().unwrap_or(0.0);
        let started = Instant::now();
        let mut decoded = 0;
        for payload in payloads {
            let request =
                ExportTraceServiceRequest::decode(payload.as_ref()).expect("valid payload");
            decoded += request.resource_spans[0].scope_spans[0].spans.len();
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = machine::thread_cpu_seconds().unwrap_or(0.0) - cpu_before;
        let row = Row {
            system: "prost decode only",
            transport: "in process",
            spans: decoded,
            wall,
            // Tick resolution is 10 ms; on an idle machine wall time is CPU time.
            cpu: if cpu > 0.0 { cpu } else { wall },
            peak_rss_mib: None,
            retries: 0,
            range: (0.0, 0.0),
        };
        if best.as_ref().is_none_or(|b| row.cpu < b.cpu) {
            best = Some(row);
        }
    }
    best.expect("three passes")
}

/// Sends every payload with `concurrency` requests in flight; returns the
/// wall time and how many overloaded refusals were retried.
async fn send_all(
    endpoint: &str,
    transport: Transport,
    payloads: &[Bytes],
    concurrency: usize,
) -> (f64, u64) {
    let payloads = Arc::new(payloads.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (payloads, next, endpoint) = (payloads.clone(), next.clone(), endpoint.to_owned());
        tasks.spawn(async move {
            let mut sender = Sender::connect(&endpoint, transport).await;
            let mut retries = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = payloads.get(i) else {
                    break;
                };
                retries += sender.send(payload).await;
            }
            retries
        });
    }
    let mut retries = 0;
    while let Some(task) = tasks.join_next().await {
        retries += task.expect("sender task");
    }
    (started.elapsed().as_secs_f64(), retries)
}

enum Sender {
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    Http(
        Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        String,
    ),
}

impl Sender {
    async fn connect(endpoint: &str, transport: Transport) -> Self {
        match transport {
            Transport::Grpc => {
                let channel = tonic::transport::Channel::from_shared(endpoint.to_owned())
                    .expect("endpoint")
                    .initial_stream_window_size(2 * 1024 * 1024)
                    .initial_connection_window_size(8 * 1024 * 1024)
                    .connect()
                    .await
                    .expect("connect");
                Self::Grpc(tonic::client::Grpc::new(channel))
            }
            Transport::Http => Self::Http(
                Client::builder(TokioExecutor::new()).build_http(),
                format!("{endpoint}/v1/traces"),
            ),
        }
    }

    /// Sends one payload until it is accepted; returns the retries.
    async fn send(&mut self, payload: &Bytes) -> u64 {
        for retry in 0..MAX_RETRIES {
            let overloaded = match self {
                Self::Grpc(grpc) => {
                    grpc.ready().await.expect("ready");
                    let path = http::uri::PathAndQuery::from_static(TRACE_EXPORT_PATH);
                    match grpc
                        .unary(tonic::Request::new(payload.to_vec()), path, RawCodec)
                        .await
                    {
                        Ok(_) => false,
                        Err(status) if status.code() == tonic::Code::Unavailable => true,
                        Err(status) => panic!("export refused: {status:?}"),
                    }
                }
                Self::Http(client, url) => {
                    let request = http::Request::post(url.as_str())
                        .header("content-type", "application/x-protobuf")
                        .body(Full::new(payload.clone()))
                        .expect("request");
                    let response = client.request(request).await.expect("http export");
                    match response.status().as_u16() {
                        200 => false,
                        503 => true,
                        other => panic!("export refused with HTTP {other}"),
                    }
                }
            };
            if !overloaded {
                return u64::from(retry);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("a request was refused {MAX_RETRIES} times");
    }
}

async fn run_meshtwin(
    transport: Transport,
    warmup: &[Bytes],
    payloads: &[Bytes],
    concurrency: usize,
) -> Row {
    let meshtwin = Meshtwin::serve(&[]);
    let endpoint = match transport {
        Transport::Grpc => meshtwin.otlp_grpc.clone(),
        Transport::Http => meshtwin.otlp_http.clone(),
    };
    let total = (warmup.len() + payloads.len()) * SPANS_PER_REQUEST;
    send_all(&endpoint, transport, warmup, concurrency).await;
    let cpu_before = machine::cpu_seconds(meshtwin.pid()).expect("cpu");
    let (wall, retries) = send_all(&endpoint, transport, payloads, concurrency).await;
    // Measured until the twin has taken in every span, not just the receiver.
    let metrics = format!("{}/metrics", meshtwin.web);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page = get(&metrics).await.text();
        if metric(&page, "meshtwin_twin_spans_ingested_total") == Some(total as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the twin did not catch up within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = machine::cpu_seconds(meshtwin.pid()).expect("cpu") - cpu_before;
    Row {
        system: "meshtwin (twin updating)",
        transport: transport.label(),
        spans: payloads.len() * SPANS_PER_REQUEST,
        wall,
        cpu,
        peak_rss_mib: machine::peak_rss_mib(meshtwin.pid()),
        retries,
        range: (0.0, 0.0),
    }
}

struct Rotel(Child);

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn run_rotel(
    binary: &PathBuf,
    transport: Transport,
    warmup: &[Bytes],
    payloads: &[Bytes],
    concurrency: usize,
) -> Row {
    let (grpc_port, http_port) = (free_port(), free_port());
    let child = Command::new(binary)
        .args(["start", "--exporter", "blackhole"])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc_port}")])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http_port}")])
        .args([
            "--pid-file",
            &std::env::temp_dir()
                .join(format!("rotel-bench-{grpc_port}.pid"))
                .to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rotel-agent");
    let rotel = Rotel(child);
    let port = match transport {
        Transport::Grpc => grpc_port,
        Transport::Http => http_port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rotel did not listen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    send_all(&endpoint, transport, warmup, concurrency).await;
    let pid = rotel.0.id();
    let cpu_before = machine::cpu_seconds(pid).expect("cpu");
    let (wall, retries) = send_all(&endpoint, transport, payloads, concurrency).await;
    // Let its batches flush to the blackhole.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = machine::cpu_seconds(pid).expect("cpu") - cpu_before;
    Row {
        system: "rotel (blackhole exporter)",
        transport: transport.label(),
        spans: payloads.len() * SPANS_PER_REQUEST,
        wall,
        cpu,
        peak_rss_mib: machine::peak_rss_mib(pid),
        retries,
        range: (0.0, 0.0),
    }
}

fn report(rows: &[Row], spans: usize, bytes: usize, args: &Args, busy: Option<&str>) -> String {
    let decode = &rows[0];
    let rotel = |transport: &str| {
        rows.iter()
            .find(|r| r.system.starts_with("rotel") && r.transport == transport)
    };
    let mut out = String::new();
    out.push_str(&format!(
        "Ingest of {spans} Online Boutique spans in requests of {SPANS_PER_REQUEST} ({:.0} bytes per span), \
         {} in flight; {}.\n",
        bytes as f64 / spans as f64,
        args.concurrency,
        machine::describe()
    ));
    if let Some(reason) = busy {
        out.push_str(&format!(
            "\n**Machine was busy ({reason}): these numbers are suspect.**\n"
        ));
    }
    out.push_str(&format!(
        "\nMedian of {} runs per system and transport, each against a fresh process; decode-only is the best of 3 passes.\n",
        args.repeat.max(1)
    ));
    out.push_str(
        "\n| system | transport | CPU µs/span (range) | spans/s per core | wall spans/s | peak RSS MiB | CPU vs decode-only | per-core throughput vs rotel | retries |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let vs_rotel = rotel(row.transport)
            .filter(|_| row.system.starts_with("meshtwin"))
            .map(|r| {
                format!(
                    "{:.2}×",
                    row.spans_per_core_second() / r.spans_per_core_second()
                )
            })
            .unwrap_or_else(|| "–".to_owned());
        let range = if row.range.1 > 0.0 {
            format!(" ({:.2}–{:.2})", row.range.0, row.range.1)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {} | {:.2}{range} | {:.0} | {:.0} | {} | {:.2}× | {} | {} |\n",
            row.system,
            row.transport,
            row.micros_per_span(),
            row.spans_per_core_second(),
            row.spans as f64 / row.wall,
            row.peak_rss_mib
                .map_or("–".to_owned(), |m| format!("{m:.0}")),
            row.micros_per_span() / decode.micros_per_span(),
            vs_rotel,
            row.retries,
        ));
    }
    out.push_str("\nTargets (issue 2): at most 2.5 µs of CPU per span with the twin updating, and at least rotel's throughput.\n\n");
    for row in rows.iter().filter(|r| r.system.starts_with("meshtwin")) {
        let cpu_ok = row.micros_per_span() <= 2.5;
        let rotel_ok = rotel(row.transport)
            .is_some_and(|r| row.spans_per_core_second() >= r.spans_per_core_second());
        out.push_str(&format!(
            "- {}: {:.2} µs/span ({}), {:.2}× rotel per core ({})\n",
            row.transport,
            row.micros_per_span(),
            if cpu_ok { "met" } else { "NOT met" },
            rotel(row.transport).map_or(0.0, |r| row.spans_per_core_second()
                / r.spans_per_core_second()),
            if rotel_ok { "met" } else { "NOT met" },
        ));
    }
    out
}

const BEGIN: &str = "<!-- ingest-bench:begin -->";
const END: &str = "<!-- ingest-bench:end -->";

fn record(path: &PathBuf, report: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let section = format!(
        "{BEGIN}\nMeasured {date} with `scripts/bench-ingest` (installs rotel with pip, builds the release \
         binaries, runs `target/release/ingest-bench --record BENCHMARKS.md`).\n\n{report}{END}"
    );
    let updated = match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!(
                "{}{section}{}",
                &existing[..begin],
                &existing[end + END.len()..]
            )
        }
        _ => format!("{existing}\n{section}\n"),
    };
    std::fs::write(path, updated)
}
