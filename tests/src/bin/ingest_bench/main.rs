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

mod load;
mod report;
mod systems;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use meshtwin_datasets::generator::request_for;
use meshtwin_datasets::{Topology, TraceGenerator};
use meshtwin_tests::machine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::report::{record, report};
use crate::systems::{Store, find_rotel, run_meshtwin, run_rotel};

const SPANS_PER_REQUEST: usize = 512;
/// Enough spans to fill the twin's pending tables (500 000 by default), so
/// the measured phase is steady state, not their one-off growth.
const WARMUP_REQUESTS: usize = 1_100;

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
    /// Parquet bytes per span in the span store, when it is on.
    disk_bytes_per_span: Option<f64>,
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
    let busy = match machine::check_idle("ingest-bench", args.force) {
        Ok(busy) => busy,
        Err(code) => return code,
    };
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
        for store in [Store::On, Store::Memory, Store::Off] {
            if wanted(&format!("meshtwin ({})", store.label())) {
                rows.push(median((0..args.repeat.max(1)).map(|run| {
                    eprintln!(
                        "meshtwin {} {} run {} ...",
                        store.label(),
                        transport.label(),
                        run + 1
                    );
                    runtime.block_on(run_meshtwin(
                        transport,
                        store,
                        &warmup,
                        &payloads,
                        args.concurrency,
                    ))
                })));
            }
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
            disk_bytes_per_span: None,
            range: (0.0, 0.0),
        };
        if best.as_ref().is_none_or(|b| row.cpu < b.cpu) {
            best = Some(row);
        }
    }
    best.expect("three passes")
}
