//! `meshtwin`: the control-plane binary.
//!
//! The composition root: parses the command line and settings, then wires
//! collector → twin → web ([`control_plane`]) and, for the demo, the
//! datasets simulator. Exit codes: 0 after a clean stop, 64 for a bad
//! configuration, 1 when start-up fails (a port in use, a locked data
//! directory).

mod audit_cli;
mod cause_ranker;
mod certificate_authority;
mod cli;
mod control_api;
mod control_plane;
mod data_dir;
mod detect_cli;
mod eval;
mod failover_cli;
mod failover_hooks;
mod failover_loop;
mod failover_probe;
mod failover_stage;
mod generate;
mod grpc_service;
mod incident_log;
mod query_cli;
mod replay;
mod routes_api;
mod settings;
mod store_metrics;
mod store_settings;
mod store_stage;
mod timestamps;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use meshtwin_datasets::{OtlpProtocol, SimulatorConfig, Topology};

use crate::cli::{Cli, Command, DemoArgs, ProtocolArg, ServeArgs, SimulateArgs};
use crate::control_plane::{ControlPlane, termination};
use crate::settings::{ConfigProblems, Settings};

/// Span facts are allocated by the receivers and freed by the twin, on
/// other threads; jemalloc handles that far better than glibc's allocator
/// (ADR 003, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a configuration error (BSD `EX_CONFIG`).
const EXIT_CONFIG: u8 = 64;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meshtwin: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Demo(args) => demo(args).await,
            Command::Simulate(args) => simulate(args).await,
            Command::Generate(args) => generate::generate(&args),
            Command::Replay(args) => replay::replay(args).await,
            Command::Eval(args) => eval::eval(&args),
            Command::SealSuite(args) => eval::seal(&args),
            Command::Detect(args) => detect_cli::detect(&args),
            Command::Audit(args) => audit_cli::audit(&args),
            Command::Failover(args) => failover_cli::failover(&args).await,
            Command::Query(args) => query_cli::query(args)
                .await
                .map_err(|f| Failure::Exit(f.exit_code(), f.message().to_owned())),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(problems)) => {
            eprintln!("meshtwin: {problems}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Start(message)) => {
            eprintln!("meshtwin: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Exit(code, message)) => {
            eprintln!("meshtwin: {message}");
            ExitCode::from(code)
        }
    }
}

enum Failure {
    Config(ConfigProblems),
    Start(String),
    /// Exit with this code and message.
    Exit(u8, String),
}

impl From<ConfigProblems> for Failure {
    fn from(problems: ConfigProblems) -> Self {
        Self::Config(problems)
    }
}

/// A bad rules file is a configuration error (exit 64), found before
/// anything starts.
fn check_failover_rules(settings: &Settings) -> Result<(), Failure> {
    if let Some(path) = &settings.failover_rules {
        failover_stage::load_rules(path)?;
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let settings = Settings::for_serve(&args)?;
    check_failover_rules(&settings)?;
    let plane = ControlPlane::start(&settings)
        .await
        .map_err(Failure::Start)?;
    let terminated = termination();
    plane.print_addresses();
    terminated.await;
    eprintln!("meshtwin: stopping");
    plane.stop().await;
    Ok(())
}

async fn demo(args: DemoArgs) -> Result<(), Failure> {
    let settings = Settings::for_demo(&args)?;
    check_failover_rules(&settings)?;
    let plane = ControlPlane::start(&settings)
        .await
        .map_err(Failure::Start)?;
    let terminated = termination();
    plane.print_addresses();
    let config = SimulatorConfig {
        endpoint: format!("http://{}", plane.grpc),
        protocol: OtlpProtocol::Grpc,
        traces_per_second: settings.demo.traces_per_second,
        seed: settings.demo.seed,
        flush_interval: Duration::from_millis(500),
    };
    println!(
        "demo: Online Boutique at {} traces/s (seed {}) -> open http://{}/ ; Ctrl-C stops",
        config.traces_per_second, config.seed, plane.web
    );
    let outcome =
        meshtwin_datasets::simulator::run(Topology::online_boutique(), config, terminated).await;
    eprintln!("meshtwin: stopping");
    plane.stop().await;
    match outcome {
        Ok(stats) => {
            println!(
                "demo: sent {} traces, {} spans in {} requests; {} requests failed",
                stats.traces, stats.spans_sent, stats.requests_sent, stats.requests_failed
            );
            Ok(())
        }
        Err(error) => Err(Failure::Start(error.to_string())),
    }
}

async fn simulate(args: SimulateArgs) -> Result<(), Failure> {
    if !(args.rate > 0.0 && args.rate <= 100_000.0) {
        return Err(Failure::Config(ConfigProblems(vec![format!(
            "--rate must be above 0 and at most 100000, not {}",
            args.rate
        )])));
    }
    let protocol = match args.protocol {
        ProtocolArg::Grpc => OtlpProtocol::Grpc,
        ProtocolArg::Http => OtlpProtocol::HttpProtobuf,
    };
    let config = SimulatorConfig {
        endpoint: args.endpoint.clone(),
        protocol,
        traces_per_second: args.rate,
        seed: args.seed,
        flush_interval: Duration::from_millis(500),
    };
    let terminated = termination();
    let stop = async move {
        match args.duration {
            Some(seconds) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                    () = terminated => {}
                }
            }
            None => terminated.await,
        }
    };
    println!(
        "simulate: Online Boutique -> {} at {} traces/s",
        args.endpoint, args.rate
    );
    let stats = meshtwin_datasets::simulator::run(Topology::online_boutique(), config, stop)
        .await
        .map_err(|e| Failure::Config(ConfigProblems(vec![e.to_string()])))?;
    println!(
        "simulate: sent {} traces, {} spans in {} requests; {} requests ({} spans) failed",
        stats.traces,
        stats.spans_sent,
        stats.requests_sent,
        stats.requests_failed,
        stats.spans_lost
    );
    Ok(())
}
