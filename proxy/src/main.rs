//! `meshtwin-proxy`: the sidecar binary. Exit codes: 0 after a clean stop,
//! 64 for a bad configuration, 1 when start-up fails.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use meshtwin_proxy::Proxy;
use meshtwin_proxy::config::ProxyConfig;

/// Exit code for a configuration error (BSD `EX_CONFIG`).
const EXIT_CONFIG: u8 = 64;

/// The meshtwin sidecar: mTLS between services, spans to the collector.
#[derive(Parser)]
#[command(name = "meshtwin-proxy", version)]
struct Cli {
    /// The proxy's TOML config (see proxy.example.toml).
    #[arg(long, short)]
    config: PathBuf,
    /// How long SIGTERM waits for in-flight requests before exiting.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match ProxyConfig::load(&cli.config) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("meshtwin-proxy: {problems}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = meshtwin_proxy::scheduling::serve_with(config.scheduling) {
        tracing::warn!(%error, scheduling = ?config.scheduling, "running under the default scheduling policy");
    }
    // The main thread is the first serving thread; `Proxy::start` starts
    // the others (see `meshtwin_proxy::shard`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meshtwin-proxy: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, Duration::from_secs(cli.drain_seconds)))
}

async fn run(config: ProxyConfig, drain: Duration) -> ExitCode {
    let proxy = match Proxy::start(config).await {
        Ok(proxy) => proxy,
        Err(message) => {
            eprintln!("meshtwin-proxy: {message}");
            return ExitCode::FAILURE;
        }
    };
    let terminated = terminated();
    println!("outbound: {}", proxy.outbound);
    for (service, address) in &proxy.service_ports {
        println!("outbound {service}: {address}");
    }
    if let Some(inbound) = proxy.inbound {
        println!("inbound: {inbound}");
    }
    println!("admin: {}", proxy.admin);
    terminated.await;
    tracing::info!("stopping: draining in-flight requests");
    if proxy.shutdown(drain).await {
        tracing::info!("stopped cleanly");
    } else {
        tracing::warn!(
            limit_s = drain.as_secs(),
            "stopped with requests still in flight"
        );
    }
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or Ctrl-C. Both handlers are installed by the call
/// itself, so calling it before printing the addresses means no signal sent
/// after them can kill the process before it drains.
fn terminated() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            Some(_) = async { term.as_mut()?.recv().await } => {}
            Some(_) = async { int.as_mut()?.recv().await } => {}
            else => std::future::pending::<()>().await,
        }
    }
}
