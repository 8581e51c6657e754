//! Proxy benchmark: 1 KiB HTTP/1.1 responses from nginx at fixed rates
//! over five paths, interleaved round by round so that drift on the
//! machine hits them all alike:
//! (a) direct; (b) two HAProxy processes with mTLS (TLS 1.3) between them;
//! (c) meshtwin-proxy outbound → inbound with mTLS and telemetry on;
//! (d) the same with telemetry off, to price it; (e) (c) with one serving
//! thread per proxy instead of the default two, to price the default.
//!
//! Load comes from `oha -q RATE --latency-correction` (no coordinated
//! omission). CPU and peak memory of every proxy process come from /proc.
//! Waits for the machine to be idle before each run; refuses to run on a
//! busy machine unless `--force` (the results then say so).
//!
//! Run it with `scripts/bench-proxy`.

mod oha;
mod paths;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use meshtwin_tests::machine;

use crate::oha::Latency;
use crate::paths::Fixture;
use crate::report::{Measured, report};

#[derive(Debug, Parser)]
#[command(about = "Proxy latency benchmark: direct vs HAProxy mTLS pair vs meshtwin-proxy pair")]
struct Args {
    /// Request rates to measure, requests/s.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 2000])]
    rates: Vec<u32>,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds per rate; each round runs every path once. Medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Connections oha spreads the rate over.
    #[arg(long, default_value_t = 8)]
    connections: u32,
    /// The oha binary.
    #[arg(long, default_value = "oha")]
    oha: PathBuf,
    /// Run even on a busy machine; the results say it was busy.
    #[arg(long)]
    force: bool,
    /// Write the results into this Markdown file, between the
    /// `<!-- proxy-bench:begin -->` and `<!-- proxy-bench:end -->` markers.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Start the paths, print their URLs and proxy PIDs, and wait this many
    /// seconds (or until SIGTERM or Ctrl-C) instead of measuring: for
    /// profiling with perf or strace.
    #[arg(long, value_name = "SECONDS")]
    hold: Option<u64>,
}

const WARMUP: Duration = Duration::from_secs(3);
const IDLE_WAIT: Duration = Duration::from_secs(120);

/// Waits until nothing else loads the machine; `Err` says what does.
fn wait_until_idle() -> Result<(), String> {
    let deadline = Instant::now() + IDLE_WAIT;
    loop {
        match machine::busy_reason() {
            None => return Ok(()),
            Some(reason) if Instant::now() >= deadline => return Err(reason),
            Some(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut busy = None;
    if let Err(reason) = wait_until_idle() {
        if !args.force {
            eprintln!(
                "proxy-bench: refusing to run: {reason}; wait until the machine is idle or pass --force"
            );
            return ExitCode::from(2);
        }
        eprintln!("proxy-bench: WARNING: {reason}; running anyway (--force), results are suspect");
        busy = Some(reason);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    eprintln!("starting nginx, HAProxy, meshtwin serve and six meshtwin-proxy processes ...");
    let fixture = runtime.block_on(Fixture::start());
    if let Some(seconds) = args.hold {
        for path in &fixture.paths {
            println!("{}: {} {:?}", path.name, path.url, path.proxies);
        }
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        // Dropping the fixture stops every process it started.
        return ExitCode::SUCCESS;
    }
    let mut measured = Vec::new();
    for &rate in &args.rates {
        for path in &fixture.paths {
            eprintln!("warm-up: {} at {rate}/s", path.name);
            if let Err(e) = oha::run(&args.oha, &path.url, rate, WARMUP, args.connections) {
                eprintln!("proxy-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
        let mut runs: Vec<Vec<(Latency, Vec<f64>)>> = vec![Vec::new(); fixture.paths.len()];
        for round in 0..args.rounds {
            // Rotate the order so that no path always runs first.
            for step in 0..fixture.paths.len() {
                let index = (round + step) % fixture.paths.len();
                let path = &fixture.paths[index];
                if let Err(reason) = wait_until_idle()
                    && busy.is_none()
                {
                    if !args.force {
                        eprintln!("proxy-bench: the machine became busy ({reason}); stopping");
                        return ExitCode::from(2);
                    }
                    busy = Some(reason);
                }
                eprintln!(
                    "round {}/{}: {} at {rate}/s",
                    round + 1,
                    args.rounds,
                    path.name
                );
                let cpu = |pids: &[(String, u32)]| -> Vec<f64> {
                    pids.iter()
                        .map(|(_, pid)| machine::cpu_seconds(*pid).unwrap_or(0.0))
                        .collect()
                };
                let before = cpu(&path.proxies);
                let duration = Duration::from_secs(args.seconds);
                let latency = match oha::run(&args.oha, &path.url, rate, duration, args.connections)
                {
                    Ok(latency) => latency,
                    Err(e) => {
                        eprintln!("proxy-bench: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let after = cpu(&path.proxies);
                let used = after.iter().zip(&before).map(|(a, b)| a - b).collect();
                runs[index].push((latency, used));
            }
        }
        for (path, runs) in fixture.paths.iter().zip(runs) {
            let rss = path
                .proxies
                .iter()
                .map(|(_, pid)| machine::peak_rss_mib(*pid).unwrap_or(0.0))
                .collect();
            measured.push(Measured::from_runs(rate, path, runs, rss));
        }
    }
    drop(fixture);
    let report = report(
        &measured,
        &args.rates,
        args.seconds,
        args.rounds,
        busy.as_deref(),
    );
    println!("{report}");
    if let Some(path) = &args.record {
        let how = "`scripts/bench-proxy` (installs nginx, HAProxy and oha, builds the release \
                   binaries, runs `target/release/proxy-bench --record BENCHMARKS.md`)";
        if let Err(error) = meshtwin_tests::bench_record::record(path, "proxy-bench", how, &report)
        {
            eprintln!("proxy-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("recorded in {}", path.display());
    }
    ExitCode::SUCCESS
}
