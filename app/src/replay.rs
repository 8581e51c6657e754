//! `meshtwin replay`: a dataset's requests, in time order, to any OTLP
//! endpoint at N× real time or as fast as it takes them, with a progress
//! bar and a summary. Busy or unreachable endpoints are retried with
//! backoff; what still fails is counted, never silently dropped.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use meshtwin_datasets::dataset::{Batch, DatasetReader, Payload};
use meshtwin_datasets::export::ExportError;
use meshtwin_datasets::{Exporter, OtlpProtocol};
use tokio::sync::mpsc;

use crate::Failure;
use crate::cli::{ProtocolArg, ReplayArgs, TimestampsArg};
use crate::control_plane::termination;
use crate::settings::ConfigProblems;

/// Tries per request before it counts as failed.
const ATTEMPTS: u32 = 5;
/// Requests failing in a row after which the endpoint counts as down and
/// the replay stops, rather than retrying every request for minutes.
const GIVE_UP_AFTER: u64 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Tally {
    trace_requests: u64,
    spans: u64,
    metric_requests: u64,
    points: u64,
    failed_requests: u64,
    failed_spans: u64,
    retries: u64,
    unreadable: u64,
    first_error: Option<String>,
    failing_in_a_row: u64,
    /// Dataset time covered, first to last request.
    covered_nanos: u64,
}

pub(crate) async fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let problem = |m: String| Failure::Config(ConfigProblems(vec![m]));
    let reader = DatasetReader::open(&args.dataset).map_err(|e| problem(e.to_string()))?;
    let protocol = match args.protocol {
        ProtocolArg::Grpc => OtlpProtocol::Grpc,
        ProtocolArg::Http => OtlpProtocol::HttpProtobuf,
    };
    let mut exporter =
        Exporter::new(&args.endpoint, protocol).map_err(|e| problem(e.to_string()))?;
    let total = reader.request_count();
    let speed = match args.speed.0 {
        Some(n) => format!("{n}x real time"),
        None => "as fast as possible".to_owned(),
    };
    println!(
        "replay: {} ({}, {} s, {} spans) -> {} at {speed}",
        args.dataset.display(),
        reader.manifest.case.topology,
        reader.manifest.case.duration_s,
        reader.manifest.spans,
        args.endpoint,
    );

    // Files are read (and gunzipped) on a blocking thread, a few requests ahead.
    let (batches, mut incoming) = mpsc::channel(32);
    let read = tokio::task::spawn_blocking(move || {
        for batch in reader {
            if batches.blocking_send(batch).is_err() {
                return;
            }
        }
    });

    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "replay [{bar:30}] {pos}/{len} requests, {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut tally = Tally::default();
    let terminated = termination();
    let started = Instant::now();
    let mut first: Option<(u64, i128)> = None;
    let interrupted = tokio::select! {
        () = async {
            while let Some(next) = incoming.recv().await {
                let mut batch = match next {
                    Ok(batch) => batch,
                    Err(error) => {
                        tally.unreadable += 1;
                        bar.println(format!("replay: skipped unreadable {error}"));
                        continue;
                    }
                };
                let (first_at, shift) = *first.get_or_insert_with(|| {
                    let shift = match args.timestamps {
                        TimestampsArg::Keep => 0,
                        TimestampsArg::Shift => {
                            i128::from(meshtwin_twin::engine::wall_clock_nanos())
                                - i128::from(batch.at_unix_nano)
                        }
                    };
                    (batch.at_unix_nano, shift)
                });
                let offset = batch.at_unix_nano.saturating_sub(first_at);
                tally.covered_nanos = tally.covered_nanos.max(offset);
                if let Some(speed) = args.speed.0 {
                    let due = started + Duration::from_secs_f64(offset as f64 / 1e9 / speed);
                    tokio::time::sleep_until(due.into()).await;
                }
                if shift != 0 {
                    batch.shift_time(shift);
                }
                send(&mut exporter, batch, &mut tally).await;
                if tally.failing_in_a_row >= GIVE_UP_AFTER {
                    bar.println(format!(
                        "replay: {GIVE_UP_AFTER} requests in a row failed; stopping"
                    ));
                    break;
                }
                bar.inc(1);
                bar.set_message(format!("{} spans", tally.spans));
            }
        } => false,
        () = terminated => true,
    };
    bar.finish_and_clear();
    read.abort();
    report(&tally, started.elapsed(), interrupted)
}

/// Sends one request, retrying what is worth retrying, and counts it.
async fn send(exporter: &mut Exporter, batch: Batch, tally: &mut Tally) {
    let spans = batch.span_count() as u64;
    let points = batch.point_count() as u64;
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let result: Result<(), ExportError> = match &batch.payload {
            Payload::Traces(request) => exporter.export(request.clone()).await,
            Payload::Metrics(request) => exporter.export_metrics(request.clone()).await,
        };
        match result {
            Ok(()) => {
                tally.failing_in_a_row = 0;
                match batch.payload {
                    Payload::Traces(_) => {
                        tally.trace_requests += 1;
                        tally.spans += spans;
                    }
                    Payload::Metrics(_) => {
                        tally.metric_requests += 1;
                        tally.points += points;
                    }
                }
                return;
            }
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tally.retries += 1;
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                tally.failed_requests += 1;
                tally.failed_spans += spans;
                tally.failing_in_a_row += 1;
                tally.first_error.get_or_insert_with(|| error.to_string());
                return;
            }
        }
    }
}

fn report(tally: &Tally, took: Duration, interrupted: bool) -> Result<(), Failure> {
    let took_s = took.as_secs_f64();
    let covered_s = tally.covered_nanos as f64 / 1e9;
    println!(
        "replay{}: sent {} spans in {} trace requests and {} metric points in {} metric \
         requests; {} retries; {} requests ({} spans) failed; {} unreadable records; \
         {covered_s:.1} s of data in {took_s:.1} s ({:.1}x real time)",
        if interrupted { " (interrupted)" } else { "" },
        tally.spans,
        tally.trace_requests,
        tally.points,
        tally.metric_requests,
        tally.retries,
        tally.failed_requests,
        tally.failed_spans,
        tally.unreadable,
        covered_s / took_s.max(1e-9),
    );
    if let Some(error) = &tally.first_error {
        println!("replay: first failure: {error}");
    }
    if tally.failing_in_a_row >= GIVE_UP_AFTER {
        return Err(Failure::Start(format!(
            "gave up: the endpoint refused or dropped {GIVE_UP_AFTER} requests in a row \
             ({ATTEMPTS} tries each); is the collector up and the URL right?"
        )));
    }
    if tally.failed_requests > 0 || tally.unreadable > 0 {
        return Err(Failure::Start(format!(
            "{} requests failed and {} records were unreadable",
            tally.failed_requests, tally.unreadable
        )));
    }
    Ok(())
}
