//! `meshtwin generate`: one simulated case to OTLP files, with a progress
//! bar over simulated time and a summary.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use meshtwin_datasets::dataset::{self, CaseSpec, Encoding, WriteOptions};
use meshtwin_datasets::sim::SimOptions;

use crate::Failure;
use crate::cli::{FormatArg, GenerateArgs};
use crate::settings::ConfigProblems;

fn problem(message: String) -> Failure {
    Failure::Config(ConfigProblems(vec![message]))
}

/// The case the flags and the optional case file describe.
fn case_from(args: &GenerateArgs) -> Result<CaseSpec, Failure> {
    let mut case = match &args.case {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| problem(format!("{}: {e}", path.display())))?;
            toml::from_str::<CaseSpec>(&text)
                .map_err(|e| problem(format!("{}: {e}", path.display())))?
        }
        None => CaseSpec {
            topology: "online-boutique".to_owned(),
            duration_s: 600.0,
            options: SimOptions::default(),
        },
    };
    if let Some(topology) = &args.topology {
        case.topology.clone_from(topology);
    }
    if let Some(duration) = args.duration {
        case.duration_s = duration;
    }
    if let Some(seed) = args.seed {
        case.options.seed = seed;
    }
    if args.rate.is_some() {
        case.options.rate = args.rate;
    }
    Ok(case)
}

pub(crate) fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    let case = case_from(args)?;
    let write = WriteOptions {
        encoding: match args.format {
            FormatArg::Protobuf => Encoding::Protobuf,
            FormatArg::Json => Encoding::Json,
        },
        gzip: args.gzip,
    };
    let bar = ProgressBar::new(case.duration_s.ceil() as u64).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} simulated s ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("generate {}", case.topology));
    let started = Instant::now();
    let result = dataset::generate(&case, &args.out, write, &mut |done| {
        bar.set_position(done.ceil() as u64);
    });
    bar.finish_and_clear();
    let (manifest, labels) = result.map_err(|e| match e {
        dataset::DatasetError::Io { .. } => Failure::Start(e.to_string()),
        dataset::DatasetError::Case(problems) => Failure::Config(ConfigProblems(problems)),
        other => problem(other.to_string()),
    })?;
    let took = started.elapsed().as_secs_f64();
    let bytes: u64 = [
        manifest.traces_path(&args.out),
        manifest.metrics_path(&args.out),
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).ok())
    .map(|m| m.len())
    .sum();
    println!(
        "generate: {} for {} s (seed {}): {} spans in {} trace requests, {} metric points, \
         {} faults; {:.1} MB in {}; took {took:.2} s",
        case.topology,
        case.duration_s,
        case.options.seed,
        manifest.spans,
        manifest.trace_requests,
        manifest.metric_points,
        labels.len(),
        bytes as f64 / 1e6,
        args.out.display(),
    );
    for label in &labels {
        println!(
            "  fault {} on {}{} in {}, {:.0}..{:.0} s",
            label.fault,
            if label.service.is_empty() {
                "(entry)"
            } else {
                &label.service
            },
            label
                .instance
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default(),
            label.region,
            (label.start_unix_nano - manifest.start_unix_nano) as f64 / 1e9,
            (label.end_unix_nano - manifest.start_unix_nano) as f64 / 1e9,
        );
    }
    Ok(())
}
