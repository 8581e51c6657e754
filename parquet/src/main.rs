//! `meshtwin-parquet DATASET [--out DIR]`: a dataset written by `meshtwin
//! generate` as Parquet tables (spans, metrics, labels), for Polars,
//! DuckDB, pandas or Spark. A separate binary so that `meshtwin` itself
//! never links Polars.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use meshtwin_datasets::dataset::read_manifest;

#[derive(Debug, Parser)]
#[command(
    name = "meshtwin-parquet",
    version,
    about = "Write a meshtwin dataset as Parquet tables: spans, metrics, labels"
)]
struct Cli {
    /// A dataset directory written by `meshtwin generate`.
    #[arg(value_name = "DIR")]
    dataset: PathBuf,
    /// Where the .parquet files go [default: the dataset directory].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cli.out.clone().unwrap_or_else(|| cli.dataset.clone());
    let requests = match read_manifest(&cli.dataset) {
        Ok(m) => m.trace_requests + m.metric_requests,
        Err(e) => {
            eprintln!("meshtwin-parquet: {e}");
            return ExitCode::from(64);
        }
    };
    let bar = ProgressBar::new(requests).with_style(
        ProgressStyle::with_template(
            "parquet [{bar:30}] {pos}/{len} requests ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let result = meshtwin_parquet::convert(&cli.dataset, &out, &mut |n| bar.set_position(n));
    bar.finish_and_clear();
    match result {
        Ok(written) => {
            println!(
                "meshtwin-parquet: {} spans, {} metric points, {} labels in {:.1} s ({} unreadable records skipped)",
                written.spans,
                written.metric_points,
                written.labels,
                started.elapsed().as_secs_f64(),
                written.unreadable
            );
            for file in &written.files {
                let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                println!("  {} ({:.1} MB)", file.display(), bytes as f64 / 1e6);
            }
            if written.unreadable > 0 {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meshtwin-parquet: {e}");
            ExitCode::FAILURE
        }
    }
}
