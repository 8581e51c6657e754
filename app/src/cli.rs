//! The command line: `meshtwin serve | demo | simulate | generate | replay |
//! eval | seal-suite | query | detect`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "meshtwin",
    version,
    about = "Observability-first service mesh control plane: OTLP in, a live service graph out",
    long_about = "Observability-first service mesh control plane.\n\n\
        Receives OpenTelemetry traces over OTLP (gRPC and HTTP), keeps a live digital twin of \
        the service graph (rate, errors and latency on every edge), and pushes it to browsers \
        over a websocket. Prometheus metrics use the names of Tempo's service graphs."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the control plane: OTLP receivers, the twin, the web UI and API.
    Serve(ServeArgs),
    /// Run the control plane with a simulated Online Boutique sending it traffic.
    Demo(DemoArgs),
    /// Send simulated Online Boutique traffic to any OTLP endpoint.
    Simulate(SimulateArgs),
    /// Simulate a case (topology, seed, faults) and write it as OTLP files
    /// with its ground truth.
    Generate(GenerateArgs),
    /// Send a dataset written by `generate` to any OTLP endpoint, at N×
    /// real time or as fast as it takes them.
    Replay(ReplayArgs),
    /// Generate a suite of fault cases (cached) and score root-cause
    /// rankings on it: AC@1, AC@3, Avg@5 per topology and fault type.
    Eval(EvalArgs),
    /// Print a suite's config with fresh random seeds: a sealed suite
    /// nobody has tuned on.
    SealSuite(SealArgs),
    /// Run SQL over the stored spans, the twin's history (edges, nodes)
    /// and the metrics received.
    Query(crate::query_cli::QueryArgs),
    /// Run the twin's streaming anomaly detectors over a `timestamp,value`
    /// CSV and write, per point, the anomaly score in [0, 1] and whether it
    /// alarmed (for tuning sensitivity on your own history).
    Detect(crate::detect_cli::DetectArgs),
    /// Check the failover audit log's hash chain, offline.
    Audit(crate::audit_cli::AuditArgs),
    /// Check a failover rules file, or call its hooks with a test event.
    Failover(crate::failover_cli::FailoverArgs),
}

/// The `--help` line of the bundled topologies.
const TOPOLOGIES: &str =
    "online-boutique, sock-shop, train-ticket, social-network, hotel-reservation, bank";

/// Where the control plane listens and keeps its data; each flag overrides
/// the config file, which overrides the defaults.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ServeArgs {
    /// TOML config file; unknown keys are errors (see meshtwin.example.toml).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address every port listens on [default: 127.0.0.1; 0.0.0.0 for all interfaces].
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<IpAddr>,
    /// OTLP/gRPC port [default: 4317; 0 picks a free port].
    #[arg(long, value_name = "PORT")]
    pub(crate) otlp_grpc_port: Option<u16>,
    /// OTLP/HTTP port for /v1/traces and /v1/metrics [default: 4318; 0 picks a free port].
    #[arg(long, value_name = "PORT")]
    pub(crate) otlp_http_port: Option<u16>,
    /// Port of the web UI, the REST API, the websocket and /metrics [default: 8080; 0 picks a free port].
    #[arg(long, value_name = "PORT")]
    pub(crate) web_port: Option<u16>,
    /// Port of the control API proxies use for certificates and config [default: 4320; 0 picks a free port].
    #[arg(long, value_name = "PORT")]
    pub(crate) control_port: Option<u16>,
    /// Directory for everything meshtwin stores; one process per directory [default: ./meshtwin-data].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// A TOML file of `[[services]]` (endpoints by locality, policy) and
    /// `[[overrides]]` served to proxies; re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub(crate) mesh_routes: Option<PathBuf>,
    /// A TOML file of failover rules (see failover-rules.example.toml);
    /// checked at start, and recorded in the audit log.
    #[arg(long, value_name = "FILE")]
    pub(crate) failover_rules: Option<PathBuf>,
    /// Largest OTLP request accepted, in bytes, before and after decompression [default: 8388608].
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_request_bytes: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
    /// Simulated traces per second [default: 20].
    #[arg(long, value_name = "N")]
    pub(crate) rate: Option<f64>,
    /// Seed of the simulation; the same seed gives the same traces [default: 1].
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ProtocolArg {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318 by convention).
    Http,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct SimulateArgs {
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4317")]
    pub(crate) endpoint: String,
    /// OTLP transport.
    #[arg(long, value_enum, default_value = "grpc")]
    pub(crate) protocol: ProtocolArg,
    /// Traces per second.
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub(crate) rate: f64,
    /// Seed; the same seed gives the same traces.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Stop after this many seconds [default: run until Ctrl-C].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum FormatArg {
    /// Length-delimited OTLP protobuf (the OTel Collector file exporter's `proto`).
    Protobuf,
    /// OTLP JSON, one request per line (the file exporter's `json`).
    Json,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct GenerateArgs {
    /// Directory to write (created if missing; files of an earlier run are replaced).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: std::path::PathBuf,
    /// A case file (TOML: topology, duration_s, [options] with seed and [[options.faults]]);
    /// the flags below override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) case: Option<std::path::PathBuf>,
    #[arg(long, value_name = "NAME|FILE", help = format!("Bundled topology ({TOPOLOGIES}) or a topology file [default: online-boutique]"))]
    pub(crate) topology: Option<String>,
    /// Simulated seconds [default: 600].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
    /// Seed; the same case and seed give byte-identical files [default: 1].
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Entry requests per second [default: the topology's rate].
    #[arg(long, value_name = "N")]
    pub(crate) rate: Option<f64>,
    #[arg(long, value_enum, default_value = "protobuf")]
    pub(crate) format: FormatArg,
    /// Gzip the OTLP files.
    #[arg(long)]
    pub(crate) gzip: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum TimestampsArg {
    /// Move every timestamp so the dataset starts now (what a live twin expects).
    Shift,
    /// Send the timestamps as recorded.
    Keep,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct ReplayArgs {
    /// A dataset directory written by `meshtwin generate`.
    #[arg(value_name = "DIR")]
    pub(crate) dataset: std::path::PathBuf,
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4317")]
    pub(crate) endpoint: String,
    /// OTLP transport.
    #[arg(long, value_enum, default_value = "grpc")]
    pub(crate) protocol: ProtocolArg,
    /// Multiple of real time (10 = ten simulated seconds per second), or `max`
    /// for as fast as the endpoint takes them.
    #[arg(long, value_name = "N|max", default_value = "1", value_parser = parse_speed)]
    pub(crate) speed: Speed,
    #[arg(long, value_enum, default_value = "shift")]
    pub(crate) timestamps: TimestampsArg,
}

/// A multiple of real time; `None` for as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Speed(pub(crate) Option<f64>);

/// `max` or a positive finite multiple.
fn parse_speed(text: &str) -> Result<Speed, String> {
    if text == "max" {
        return Ok(Speed(None));
    }
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(Speed(Some(speed))),
        _ => Err(format!("expected a positive number or `max`, not {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_speed_is_a_positive_multiple_or_max() {
        let parse = |speed: &str| {
            Cli::try_parse_from(["meshtwin", "replay", "dir", &format!("--speed={speed}")]).map(
                |cli| match cli.command {
                    Command::Replay(args) => args.speed,
                    _ => unreachable!("replay parses as replay"),
                },
            )
        };
        assert_eq!(parse("max").unwrap(), Speed(None));
        assert_eq!(parse("2.5").unwrap(), Speed(Some(2.5)));
        for bad in ["0", "-1", "inf", "fast"] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("positive number or `max`"), "{bad}: {error}");
        }
    }
}

#[derive(Debug, Args, Clone)]
pub(crate) struct EvalArgs {
    /// A bundled suite (`dev`, `smoke`) or a suite config file.
    #[arg(value_name = "SUITE")]
    pub(crate) suite: String,
    /// Where generated cases are kept and reused [default: $XDG_CACHE_HOME/meshtwin/suites,
    /// else ~/.cache/meshtwin/suites].
    #[arg(long, value_name = "DIR")]
    pub(crate) cache: Option<std::path::PathBuf>,
    /// Where report.md and report.json go [default: ./meshtwin-eval/SUITE].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<std::path::PathBuf>,
    /// Worker threads [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct SealArgs {
    /// A bundled suite (`dev`, `smoke`) or a suite config file.
    #[arg(value_name = "SUITE")]
    pub(crate) suite: String,
}
