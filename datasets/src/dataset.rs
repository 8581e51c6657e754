//! A dataset on disk: one simulated case as OTLP files, its ground truth
//! and a manifest that says how to make it again.
//!
//! ```text
//! DIR/manifest.json        the case (topology, duration, options, seed),
//!                          encoding, counts, time range
//! DIR/labels.json          ground truth: one record per scheduled fault
//! DIR/traces.pb[.gz]       ExportTraceServiceRequest, 4-byte BE length each
//! DIR/metrics.pb[.gz]      ExportMetricsServiceRequest, the same framing
//!   or traces.jsonl[.gz], metrics.jsonl[.gz]: OTLP JSON, one per line
//! ```
//!
//! The framing is the OpenTelemetry Collector file exporter's, so its
//! `otlpjsonfile` receiver and other OTLP tools read the files too. One
//! trace request holds one simulated second of spans; one metrics request
//! holds one metrics interval.

pub mod files;
mod reader;

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::{Deserialize, Serialize};

use crate::sim::{GroundTruth, Output, SimOptions, Simulation};
use crate::topology::{Topology, TopologyError, library};

pub use files::Encoding;
pub use reader::{Batch, DatasetReader, Payload};

/// Bumped when the layout changes; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const LABELS: &str = "labels.json";

/// Everything that determines a dataset's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// A bundled topology's name, a synthetic one's
    /// (`synthetic-layered-200`, `synthetic-scale-free-500`), or the path
    /// of a topology file.
    pub topology: String,
    /// Simulated seconds.
    pub duration_s: f64,
    #[serde(default)]
    pub options: SimOptions,
}

impl CaseSpec {
    pub fn load_topology(&self) -> Result<Topology, TopologyError> {
        if let Some(topology) = crate::topology::synthetic::by_name(&self.topology) {
            return Ok(topology);
        }
        if library::names().contains(&self.topology.as_str()) {
            return library::bundled(&self.topology);
        }
        let path = Path::new(&self.topology);
        if !path.exists() {
            return library::bundled(&self.topology);
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| TopologyError(vec![format!("{}: {e}", path.display())]))?;
        Topology::from_toml(&text)
    }
}

/// What a dataset holds, written last so a half-written one has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The crate and version that wrote it.
    pub generator: String,
    pub case: CaseSpec,
    pub encoding: Encoding,
    pub gzip: bool,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub spans: u64,
    /// OTLP data points (one instance's interval makes several).
    pub metric_points: u64,
    pub trace_requests: u64,
    pub metric_requests: u64,
}

impl Manifest {
    pub fn traces_path(&self, dir: &Path) -> PathBuf {
        files::signal_path(dir, "traces", self.encoding, self.gzip)
    }

    pub fn metrics_path(&self, dir: &Path) -> PathBuf {
        files::signal_path(dir, "metrics", self.encoding, self.gzip)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("invalid topology:\n  {}", .0.0.join("\n  "))]
    Topology(#[from] TopologyError),
    #[error("invalid case:\n  {}", .0.join("\n  "))]
    Case(Vec<String>),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Manifest(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    pub encoding: Encoding,
    pub gzip: bool,
}

/// Simulates `case` and writes it to `dir` (created if missing); calls
/// `progress` with the simulated seconds done after each second.
pub fn generate(
    case: &CaseSpec,
    dir: &Path,
    write: WriteOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<(Manifest, Vec<GroundTruth>), DatasetError> {
    let topology = case.load_topology()?;
    let mut problems = case.options.problems(&topology);
    if !(case.duration_s.is_finite() && case.duration_s > 0.0) {
        problems.push(format!(
            "duration_s must be a positive number of seconds, not {}",
            case.duration_s
        ));
    }
    for (i, fault) in case.options.faults.iter().enumerate() {
        if fault.start_s >= case.duration_s {
            problems.push(format!(
                "faults[{i}] ({}) starts at {} s, after the run ends at {} s",
                fault.kind.label(),
                fault.start_s,
                case.duration_s
            ));
        }
    }
    if !problems.is_empty() {
        return Err(DatasetError::Case(problems));
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    // A manifest left from an earlier run would vouch for half-written files.
    let manifest_path = dir.join(MANIFEST);
    match std::fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error(&manifest_path)(e));
        }
        _ => {}
    }
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        generator: concat!("meshtwin-datasets ", env!("CARGO_PKG_VERSION")).to_owned(),
        case: case.clone(),
        encoding: write.encoding,
        gzip: write.gzip,
        start_unix_nano: case.options.start_unix_nano,
        end_unix_nano: case.options.start_unix_nano + (case.duration_s * 1e9) as u64,
        spans: 0,
        metric_points: 0,
        trace_requests: 0,
        metric_requests: 0,
    };
    let traces_path = manifest.traces_path(dir);
    let metrics_path = manifest.metrics_path(dir);
    let mut traces = files::RequestWriter::create(&traces_path, write.encoding, write.gzip)
        .map_err(io_error(&traces_path))?;
    let mut metrics = files::RequestWriter::create(&metrics_path, write.encoding, write.gzip)
        .map_err(io_error(&metrics_path))?;

    let mut simulation = Simulation::new(&topology, case.options.clone());
    let otlp = simulation.otlp();
    let mut out = Output::default();
    let mut done = 0.0;
    while done < case.duration_s {
        done = (done + 1.0).min(case.duration_s);
        simulation.run_until(done, &mut out);
        if !out.spans.is_empty() {
            let request: ExportTraceServiceRequest = otlp.traces(&out.spans);
            traces.write(&request).map_err(io_error(&traces_path))?;
            manifest.spans += out.spans.len() as u64;
        }
        if !out.metrics.is_empty() {
            let request: ExportMetricsServiceRequest = otlp.metrics(&out.metrics);
            metrics.write(&request).map_err(io_error(&metrics_path))?;
            manifest.metric_points += reader::data_points(&request) as u64;
        }
        out.spans.clear();
        out.metrics.clear();
        progress(done);
    }
    manifest.trace_requests = traces.written;
    manifest.metric_requests = metrics.written;
    traces.finish().map_err(io_error(&traces_path))?;
    metrics.finish().map_err(io_error(&metrics_path))?;
    let labels = simulation.ground_truth();
    let labels_path = dir.join(LABELS);
    files::write_json(&labels_path, &labels).map_err(io_error(&labels_path))?;
    files::write_json(&manifest_path, &manifest).map_err(io_error(&manifest_path))?;
    Ok((manifest, labels))
}

/// The manifest of the dataset in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, DatasetError> {
    let path = dir.join(MANIFEST);
    if !path.exists() {
        return Err(DatasetError::Manifest(format!(
            "{} has no {MANIFEST}: not a dataset, or its generation did not finish",
            dir.display()
        )));
    }
    let manifest: Manifest = files::read_json(&path).map_err(DatasetError::Manifest)?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(DatasetError::Manifest(format!(
            "{}: format version {} (this build reads {FORMAT_VERSION}); generate it again",
            path.display(),
            manifest.format_version
        )));
    }
    Ok(manifest)
}

/// The ground truth of the dataset in `dir`.
pub fn read_labels(dir: &Path) -> Result<Vec<GroundTruth>, DatasetError> {
    files::read_json(&dir.join(LABELS)).map_err(DatasetError::Manifest)
}

#[cfg(test)]
mod tests;
