//! Parquet segments: `spans/date=YYYY-MM-DD/hour=HH/` by the hour each
//! span started, one file per flush and hour, named
//! `wal-<W>-end-<max end ns>.parquet` (`W`: the last log file the flush
//! covers; retention reads a segment's age from the name). Files appear
//! whole (written aside, synced, renamed). `spans/CHECKPOINT` holds the
//! last log file whose records are all in segments; it moves only after
//! every segment of a flush is on disk, and segments past it belong to a
//! flush that did not finish.
//!
//! The tables beside the spans (`table`) use the same layout, with files
//! named `seq-<N>-end-<max time ns>.parquet`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// A segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    /// The last WAL file whose records are all in segments.
    pub wal_through: u64,
    pub max_end_unix_nano: u64,
    pub bytes: u64,
}

pub(crate) fn hour_dir(root: &Path, start_unix_nano: u64) -> PathBuf {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_unix_nano))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    root.join(format!(
        "date={:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
    .join(format!("hour={:02}", at.hour()))
}

/// The hour (as unix seconds / 3600) a span starting at `t` belongs to.
pub(crate) fn hour_of(start_unix_nano: u64) -> u64 {
    start_unix_nano / 3_600_000_000_000
}

/// Writes one hour's rows as a segment.
pub(crate) fn write(
    root: &Path,
    hour: u64,
    wal_through: u64,
    max_end: u64,
    batches: &[RecordBatch],
) -> io::Result<Segment> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    // Dictionaries and text statistics cost more to write than they save:
    // zstd packs the repeated names smaller than dictionary pages do, and
    // every segment spans all services, so min/max of text prunes nothing.
    // The times keep their statistics, for time-range pruning.
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None);
    // Times are delta-encoded and not compressed: smaller than zstd over
    // plain values, and cheaper to write.
    for time in ["start_time", "end_time", "duration_ns"] {
        properties = properties
            .set_column_statistics_enabled(ColumnPath::from(time), EnabledStatistics::Page)
            .set_column_encoding(ColumnPath::from(time), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(ColumnPath::from(time), Compression::UNCOMPRESSED);
    }
    // A trace is looked up by ID: a bloom filter lets readers skip the
    // segments that cannot hold it (sized for one ID per row, the most
    // there can be; about 1 byte per span).
    let trace_id = ColumnPath::from("trace_id");
    properties = properties
        .set_column_bloom_filter_enabled(trace_id.clone(), true)
        .set_column_bloom_filter_fpp(trace_id.clone(), 0.02)
        .set_column_bloom_filter_max_ndv(trace_id, rows.max(1) as u64);
    let name = format!("wal-{wal_through:012}-end-{max_end}.parquet");
    let schema = crate::rows::SCHEMA.clone();
    let (path, bytes) = write_file(root, hour, &name, schema, batches, properties.build())?;
    Ok(Segment {
        path,
        wal_through,
        max_end_unix_nano: max_end,
        bytes,
    })
}

/// Writes `batches` as `name` in `hour`'s directory under `root`, whole
/// (written aside, synced, renamed); returns its path and size.
pub(crate) fn write_file(
    root: &Path,
    hour: u64,
    name: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> io::Result<(PathBuf, u64)> {
    let dir = hour_dir(root, hour * 3_600_000_000_000);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let partial = dir.join(format!("{name}.partial"));
    let file = File::create(&partial)?;
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties)).map_err(io::Error::other)?;
    for batch in batches {
        writer.write(batch).map_err(io::Error::other)?;
    }
    let file = writer.into_inner().map_err(io::Error::other)?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    File::open(&dir)?.sync_all()?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok((path, bytes))
}

/// The `span_id` column of a segment, in row order.
pub fn span_ids(path: &Path) -> io::Result<Vec<String>> {
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)
            .and_then(|builder| builder.build())
            .map_err(io::Error::other)?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.map_err(io::Error::other)?;
        let column = batch
            .column_by_name("span_id")
            .and_then(|c| {
                c.as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .cloned()
            })
            .ok_or_else(|| {
                io::Error::other(format!("{}: no span_id text column", path.display()))
            })?;
        ids.extend(column.iter().flatten().map(str::to_owned));
    }
    Ok(ids)
}

fn parse(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".parquet")?;
    let name = name.strip_prefix("wal-").or(name.strip_prefix("seq-"))?;
    let (wal, end) = name.split_once("-end-")?;
    Some((wal.parse().ok()?, end.parse().ok()?))
}

const CHECKPOINT: &str = "CHECKPOINT";

/// The last log file whose records are all in segments (0: none).
pub(crate) fn checkpoint(root: &Path) -> io::Result<u64> {
    match std::fs::read_to_string(root.join(CHECKPOINT)) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("{}/{CHECKPOINT}: {e}", root.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Moves the checkpoint, atomically and durably.
pub(crate) fn set_checkpoint(root: &Path, wal_through: u64) -> io::Result<()> {
    let partial = root.join("CHECKPOINT.partial");
    let mut file = File::create(&partial)?;
    std::io::Write::write_all(&mut file, format!("{wal_through}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, root.join(CHECKPOINT))?;
    File::open(root)?.sync_all()
}

/// Deletes the segments of flushes that did not finish (past the checkpoint).
pub(crate) fn remove_unfinished(root: &Path, checkpoint: u64) -> io::Result<u64> {
    let mut removed = 0;
    for segment in list(root)?
        .into_iter()
        .filter(|s| s.wal_through > checkpoint)
    {
        std::fs::remove_file(&segment.path)?;
        removed += 1;
    }
    Ok(removed)
}

/// Every segment under `root`, oldest data first; half-written files
/// (`.partial`, left by a crash) are removed.
pub fn list(root: &Path) -> io::Result<Vec<Segment>> {
    let mut found = Vec::new();
    if !root.exists() {
        return Ok(found);
    }
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "partial") {
                std::fs::remove_file(&path)?;
            } else if let Some((wal_through, max_end)) = parse(&path) {
                found.push(Segment {
                    bytes: entry.metadata()?.len(),
                    path,
                    wal_through,
                    max_end_unix_nano: max_end,
                });
            }
        }
    }
    found.sort_by(|a, b| (a.max_end_unix_nano, &a.path).cmp(&(b.max_end_unix_nano, &b.path)));
    Ok(found)
}

/// The oldest end time retention keeps when files may be `max_age_seconds` old.
pub(crate) fn oldest_kept(max_age_seconds: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now.saturating_sub(max_age_seconds.saturating_mul(1_000_000_000))
}

/// Deletes segments whose newest span ended before `oldest_kept`, then
/// the oldest ones while the total is over `max_bytes`; returns how many
/// were deleted and their bytes. Empty hour directories go too.
pub(crate) fn enforce_retention(
    root: &Path,
    oldest_kept: u64,
    max_bytes: u64,
) -> io::Result<(u64, u64)> {
    let segments = list(root)?;
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let (mut count, mut freed) = (0, 0);
    for segment in segments {
        if segment.max_end_unix_nano >= oldest_kept && total <= max_bytes {
            break;
        }
        std::fs::remove_file(&segment.path)?;
        total -= segment.bytes;
        freed += segment.bytes;
        count += 1;
        let hour = segment.path.parent().map(Path::to_owned);
        for dir in hour.iter().flat_map(|h| {
            [
                h.clone(),
                h.parent().map(Path::to_owned).unwrap_or_default(),
            ]
        }) {
            // Fails, harmlessly, while the directory still holds files.
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok((count, freed))
}
