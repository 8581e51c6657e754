//! `meshtwin detect FILE.csv`: the twin's streaming detectors over any
//! `timestamp,value` series, for tuning sensitivity on an organisation's
//! own history. Writes, per point, what was expected, the band outside
//! which a point is beyond the tail thresholds, the anomaly score in [0, 1]
//! and whether it alarmed. Exit codes: 0; 64 for bad settings; 65
//! when rows had to be skipped (every other row is still written); 1 when
//! the file cannot be read or written.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use meshtwin_twin::detect::{
    AlarmKind, Detector, DetectorConfig, Deviation, Direction, Signal, Verdict, signal_config,
};

use crate::Failure;
use crate::settings::ConfigProblems;
use crate::timestamps::unix_seconds;

/// Exit code when rows were skipped (BSD `EX_DATAERR`).
const EXIT_SKIPPED: u8 = 65;
/// Skipped rows reported one by one; the rest are counted.
const REPORTED_PROBLEMS: usize = 10;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum SignalArg {
    /// No floor, both directions.
    Generic,
    /// The twin's p50 latency settings (milliseconds): up only, +25 % and +0.5 ms at least.
    LatencyP50,
    /// The twin's p99 latency settings (milliseconds): up only, +25 % and +0.5 ms at least.
    LatencyP99,
    /// The twin's error-rate settings (a share, 0 to 1): up only, +0.02 at least.
    ErrorRate,
    /// The twin's throughput settings (per second): drops and surges of a third and 1/s at least.
    Throughput,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum DirectionArg {
    Up,
    Down,
    Both,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct DetectArgs {
    /// CSV of `timestamp,value` rows (`-` reads stdin); a header row is
    /// optional. Timestamps: RFC 3339, or Unix seconds, milliseconds,
    /// microseconds or nanoseconds (told apart by size).
    #[arg(value_name = "FILE.csv")]
    pub(crate) input: PathBuf,
    /// Start from the twin's settings for this kind of series.
    #[arg(long, value_enum, default_value = "generic")]
    pub(crate) signal: SignalArg,
    /// 1 (only the most extreme points) to 10 (the most alarms).
    #[arg(long, value_name = "1-10", default_value_t = 5.0)]
    pub(crate) sensitivity: f64,
    /// Which deviations alarm [default: the signal's].
    #[arg(long, value_enum)]
    pub(crate) direction: Option<DirectionArg>,
    /// Points learned from before any alarm.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub(crate) warmup_points: u32,
    /// Points after which a deviation's weight in the baseline has halved.
    #[arg(long, value_name = "N", default_value_t = 60.0)]
    pub(crate) half_life_points: f64,
    /// Learn an hour-of-day profile across days (for series sampled every
    /// few minutes or hours).
    #[arg(long)]
    pub(crate) daily_seasonality: bool,
    /// Ignore deviations smaller than this share of the expected value
    /// (0.25 = 25 %) [default: the signal's].
    #[arg(long, value_name = "SHARE")]
    pub(crate) min_relative_change: Option<f64>,
    /// Ignore deviations smaller than this, in the series' unit
    /// [default: the signal's].
    #[arg(long, value_name = "AMOUNT")]
    pub(crate) min_absolute_change: Option<f64>,
    /// Write the scored rows here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

impl DetectArgs {
    fn config(&self) -> Result<DetectorConfig, ConfigProblems> {
        let signal = match self.signal {
            SignalArg::Generic => None,
            SignalArg::LatencyP50 => Some(Signal::LatencyP50),
            SignalArg::LatencyP99 => Some(Signal::LatencyP99),
            SignalArg::ErrorRate => Some(Signal::ErrorRate),
            SignalArg::Throughput => Some(Signal::Throughput),
        };
        let base = signal.map_or_else(
            || DetectorConfig {
                sensitivity: self.sensitivity,
                ..DetectorConfig::default()
            },
            |signal| signal_config(signal, self.sensitivity),
        );
        let config = DetectorConfig {
            direction: self.direction.map_or(base.direction, |d| match d {
                DirectionArg::Up => Direction::Up,
                DirectionArg::Down => Direction::Down,
                DirectionArg::Both => Direction::Both,
            }),
            warmup_points: self.warmup_points,
            half_life_points: self.half_life_points,
            daily_seasonality: self.daily_seasonality,
            min_relative_change: self.min_relative_change.unwrap_or(base.min_relative_change),
            min_absolute_change: self.min_absolute_change.unwrap_or(base.min_absolute_change),
            ..base
        };
        let problems: Vec<String> = config
            .problems("")
            .into_iter()
            .map(|problem| match problem.split_once(':') {
                Some((key, rule)) => format!("--{}:{rule}", key.replace('_', "-")),
                None => problem,
            })
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigProblems(problems))
        }
    }
}

/// What one run saw.
#[derive(Default)]
struct Tally {
    points: u64,
    alarms: u64,
    first_alarm_line: Option<u64>,
    skipped: u64,
    out_of_order: u64,
    problems: Vec<String>,
}

impl Tally {
    fn skip(&mut self, line: u64, why: String) {
        self.skipped += 1;
        if self.problems.len() < REPORTED_PROBLEMS {
            self.problems.push(format!("line {line}: {why}"));
        }
    }
}

pub(crate) fn detect(args: &DetectArgs) -> Result<(), Failure> {
    let config = args.config()?;
    let (input, size): (Box<dyn Read>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&args.input)
            .map_err(|e| Failure::Start(format!("cannot read {}: {e}", args.input.display())))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = size.map_or_else(ProgressBar::hidden, |bytes| {
        ProgressBar::new(bytes).with_style(
            ProgressStyle::with_template("detect [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        )
    });
    let output: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| Failure::Start(format!("cannot write {}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let tally = score_rows(bar.wrap_read(input), BufWriter::new(output), config)
        .map_err(|e| Failure::Start(format!("detect: {e}")))?;
    bar.finish_and_clear();
    report(&tally)
}

fn score_rows(
    input: impl Read,
    output: impl Write,
    config: DetectorConfig,
) -> Result<Tally, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut writer = csv::Writer::from_writer(output);
    writer.write_record([
        "timestamp",
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "alarm",
        "kind",
        "deviation",
    ])?;
    let mut detector = Detector::new(config);
    let mut tally = Tally::default();
    let mut last_time = i64::MIN;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let line = record.position().map_or(0, |p| p.line());
        let (time, value) = match parse_row(&record) {
            Ok(row) => row,
            Err(_) if line == 1 => continue, // a header
            Err(why) => {
                tally.skip(line, why);
                continue;
            }
        };
        let verdict = match detector.update(time, value) {
            Ok(verdict) => verdict,
            Err(why) => {
                tally.skip(line, why.to_string());
                continue;
            }
        };
        if time < last_time {
            tally.out_of_order += 1;
        }
        last_time = time;
        tally.points += 1;
        if verdict.alarm.is_some() {
            tally.alarms += 1;
            tally.first_alarm_line.get_or_insert(line);
        }
        writer.write_record(scored_row(&record, value, &verdict))?;
    }
    writer.flush()?;
    Ok(tally)
}

/// The time (Unix seconds) and value of a `timestamp,value` row.
fn parse_row(record: &csv::StringRecord) -> Result<(i64, f64), String> {
    if record.len() != 2 {
        return Err(format!(
            "expected 2 fields (timestamp,value), found {}",
            record.len()
        ));
    }
    let time = unix_seconds(&record[0])?;
    let value = record[1]
        .parse::<f64>()
        .map_err(|_| format!("value {:?} is not a number", &record[1]))?;
    Ok((time, value))
}

fn scored_row(record: &csv::StringRecord, value: f64, verdict: &Verdict) -> [String; 9] {
    let (kind, deviation) = match verdict.alarm {
        Some(alarm) => (
            match alarm.kind {
                AlarmKind::Spike => "spike",
                AlarmKind::LevelShift => "level_shift",
            },
            match alarm.deviation {
                Deviation::Above => "above",
                Deviation::Below => "below",
            },
        ),
        None => ("", ""),
    };
    [
        record[0].to_owned(),
        value.to_string(),
        number(verdict.expected),
        number(verdict.band.map(|b| b.0)),
        number(verdict.band.map(|b| b.1)),
        format!("{:.4}", verdict.score),
        verdict.alarm.is_some().to_string(),
        kind.to_owned(),
        deviation.to_owned(),
    ]
}

/// Six decimals; empty for none (during warm-up).
fn number(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:.6}"))
}

fn report(tally: &Tally) -> Result<(), Failure> {
    let first = tally
        .first_alarm_line
        .map_or_else(String::new, |line| format!(" (first on line {line})"));
    eprintln!(
        "meshtwin detect: {} points, {} alarms{first}",
        tally.points, tally.alarms
    );
    if tally.out_of_order > 0 {
        eprintln!(
            "meshtwin detect: warning: {} rows earlier than the row before them (scored in file order)",
            tally.out_of_order
        );
    }
    if tally.skipped == 0 && tally.points > 0 {
        return Ok(());
    }
    let mut message = format!("{} rows skipped", tally.skipped);
    for problem in &tally.problems {
        message.push_str(&format!("\n  {problem}"));
    }
    if tally.skipped as usize > tally.problems.len() {
        message.push_str(&format!(
            "\n  and {} more",
            tally.skipped as usize - tally.problems.len()
        ));
    }
    if tally.points == 0 {
        message.push_str("\n  no point could be scored");
    }
    Err(Failure::Exit(EXIT_SKIPPED, message))
}
