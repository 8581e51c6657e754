//! The rows waiting for a segment (`Buffer`, filled by the appending
//! threads) and the writer thread: it rotates the log, takes the rows of
//! the finished log files, writes them as segments, then deletes the
//! covered log files and applies retention (or, memory-only, keeps the
//! rows in memory). And recovery: the log's records that no segment
//! covers yet.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use crate::rows::{Reporter, TextPerRow};
use crate::span_chunks::SpanChunks;
use crate::{Message, Recovery, Shared, StoreConfig, StoreError, io_at, segments, wal};

/// A writer that has failed this many times running stops taking spans
/// (appends are refused, retryably) rather than buffer without bound.
const STUCK_AFTER_FAILURES: u32 = 3;

/// Rows waiting for the next segment, by hour.
#[derive(Default)]
pub(crate) struct Buffer {
    hours: BTreeMap<u64, SpanChunks>,
    pub(crate) spans: usize,
    since: Option<Instant>,
    /// What rows held per row lately, to size the next builders.
    text: Option<TextPerRow>,
}

impl Buffer {
    pub(crate) fn push(&mut self, request: &ExportTraceServiceRequest) {
        for resource_spans in &request.resource_spans {
            let attributes = resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let reporter = Reporter::from_resource(attributes);
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                let hour = segments::hour_of(span.start_time_unix_nano);
                let text = self.text;
                self.hours
                    .entry(hour)
                    .or_insert_with(|| SpanChunks::new(text))
                    .push(&reporter, span);
                self.spans += 1;
            }
        }
        self.since.get_or_insert_with(Instant::now);
    }

    /// Takes every row, leaving an empty buffer that sizes its builders
    /// like these. Cheap, so it can be done under the lock.
    fn take(&mut self) -> Buffer {
        let text = self
            .hours
            .values()
            .rev()
            .find(|rows| rows.len >= crate::span_chunks::CHUNK_ROWS)
            .map(|rows| rows.text)
            .or(self.text);
        std::mem::replace(
            self,
            Buffer {
                text,
                ..Buffer::default()
            },
        )
    }

    /// The rows as finished batches, by hour.
    fn seal(self) -> Sealed {
        let mut sealed = Sealed {
            spans: self.spans,
            ..Sealed::default()
        };
        for (hour, rows) in self.hours {
            if rows.len > 0 {
                sealed.hours.insert(hour, (rows.max_end, rows.finish()));
            }
        }
        sealed
    }
}

/// Rows ready to be written: by hour, the latest end time and batches.
#[derive(Default)]
struct Sealed {
    hours: BTreeMap<u64, (u64, Vec<RecordBatch>)>,
    spans: usize,
}

impl Sealed {
    /// Adds `later`'s rows after these.
    fn absorb(&mut self, later: Sealed) {
        for (hour, (max_end, batches)) in later.hours {
            let (end, all) = self.hours.entry(hour).or_default();
            *end = (*end).max(max_end);
            all.extend(batches);
        }
        self.spans += later.spans;
    }

    /// Writes every hour's rows as a segment covering the log through
    /// `wal_through`, then moves the checkpoint there.
    fn write(&self, root: &Path, wal_through: u64) -> Result<usize, String> {
        for (&hour, (max_end, batches)) in &self.hours {
            segments::write(root, hour, wal_through, *max_end, batches)
                .map_err(|e| format!("{}: {e}", root.display()))?;
        }
        segments::set_checkpoint(root, wal_through)
            .map_err(|e| format!("moving the checkpoint: {e}"))?;
        Ok(self.hours.len())
    }
}

/// Log files numbered up to `through` are all in segments: delete them.
fn drop_wal_through(wal_dir: &Path, through: u64) -> std::io::Result<()> {
    for (seq, path) in wal::files(wal_dir)? {
        if seq <= through {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// Writes the log's uncovered records into segments; returns what it
/// found and the number the next log file must have at least.
pub(crate) fn recover(config: &StoreConfig) -> Result<(Recovery, u64), StoreError> {
    let (root, wal_dir) = (config.dir.join("spans"), config.dir.join("wal"));
    std::fs::create_dir_all(&root).map_err(io_at(&root))?;
    std::fs::create_dir_all(&wal_dir).map_err(io_at(&wal_dir))?;
    let covered = segments::checkpoint(&root).map_err(io_at(&root))?;
    segments::remove_unfinished(&root, covered).map_err(io_at(&root))?;
    let mut recovery = Recovery::default();
    let mut last = covered;
    for (seq, path) in wal::files(&wal_dir).map_err(io_at(&wal_dir))? {
        last = last.max(seq);
        if seq <= covered {
            recovery.already_in_segments += 1;
            std::fs::remove_file(&path).map_err(io_at(&path))?;
            continue;
        }
        let replayed = wal::read(&path).map_err(io_at(&path))?;
        recovery.wal_files += 1;
        recovery.torn_bytes += replayed.torn_bytes;
        let mut buffer = Buffer::default();
        for record in &replayed.records {
            // A record that passed its checksum but does not decode was
            // written by another version; keep the file for a person.
            let request = ExportTraceServiceRequest::decode(record.as_slice()).map_err(|e| {
                StoreError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::other(format!("undecodable record: {e}")),
                }
            })?;
            recovery.requests += 1;
            recovery.spans += request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum::<u64>();
            buffer.push(&request);
        }
        buffer
            .seal()
            .write(&root, seq)
            .map_err(|e| StoreError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
        std::fs::remove_file(&path).map_err(io_at(&path))?;
    }
    if recovery.wal_files > 0 {
        tracing::info!(
            ?recovery,
            "span store: wrote the log left by the last run into segments"
        );
    }
    Ok((recovery, last + 1))
}

pub(crate) fn run(shared: &Shared, receiver: &Receiver<Message>) {
    let config = &shared.config;
    let (root, wal_dir) = (config.dir.join("spans"), config.dir.join("wal"));
    // The rows of a flush that failed, written with the next one.
    let mut failed: Option<(Sealed, Instant)> = None;
    let mut failures = 0u32;
    let mut replies = Vec::new();
    let mut stopping = false;
    let age_limit = Duration::from_secs(config.segment_max_seconds.max(1));
    while !stopping {
        let mut flush_now = false;
        match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(Message::Full) => {}
            Ok(Message::Flush(reply)) => {
                replies.push(reply);
                flush_now = true;
            }
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                shared.stopped.store(true, Ordering::Relaxed);
                stopping = true;
                flush_now = true;
            }
            Err(RecvTimeoutError::Timeout) => {
                let wal = shared.wal.as_ref().map(|w| w.lock().expect("wal lock"));
                if let Some(Err(e)) = wal.map(|w| w.sync()) {
                    tracing::warn!(error = %e, "span store: syncing the log failed");
                }
            }
        }
        let (spans, since) = {
            let rows = shared.rows.lock().expect("rows lock");
            (rows.spans, rows.since)
        };
        let full = spans >= config.segment_max_spans;
        let old = since
            .into_iter()
            .chain(failed.as_ref().map(|(_, at)| *at))
            .any(|t| t.elapsed() >= age_limit);
        if !(flush_now || full || old) {
            continue;
        }
        let result = match config.memory_only_max_spans {
            Some(max_spans) => {
                keep_in_memory(shared, max_spans);
                Ok(())
            }
            None => flush(shared, &mut failed, &root, &wal_dir),
        };
        match &result {
            Ok(()) => {
                failures = 0;
                shared.stuck.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                failures += 1;
                shared
                    .counters
                    .segment_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, failures, "span store: writing a segment failed; the log keeps the spans");
                if failures >= STUCK_AFTER_FAILURES {
                    shared.stuck.store(true, Ordering::Relaxed);
                }
            }
        }
        for reply in replies.drain(..) {
            let _ = reply.send(result.clone());
        }
    }
}

/// Takes every row into the memory-only store.
fn keep_in_memory(shared: &Shared, max_spans: usize) {
    let taken = {
        let mut rows = shared.rows.lock().expect("rows lock");
        shared.waiting.store(0, Ordering::Relaxed);
        rows.take()
    };
    let sealed = taken.seal();
    let spans = sealed.spans as u64;
    let batches = sealed.hours.into_values().flat_map(|(_, b)| b).collect();
    let dropped = shared
        .kept
        .lock()
        .expect("kept lock")
        .keep(batches, max_spans);
    let counters = &shared.counters;
    counters.spans_in_memory.fetch_add(spans, Ordering::Relaxed);
    counters
        .spans_dropped_from_memory
        .fetch_add(dropped as u64, Ordering::Relaxed);
}

/// Rotates the log and takes every row logged before the rotation, writes
/// them as segments, drops the covered log files and applies retention.
/// When writing fails, the rows are kept in `failed` for the next try.
fn flush(
    shared: &Shared,
    failed: &mut Option<(Sealed, Instant)>,
    root: &Path,
    wal_dir: &Path,
) -> Result<(), String> {
    let before = segments::checkpoint(root).map_err(|e| e.to_string())?;
    let (finished, taken) = {
        let mut wal = shared
            .wal
            .as_ref()
            .expect("a store on disk has a log")
            .lock()
            .expect("wal lock");
        let finished = wal.rotate().map_err(|e| format!("rotating the log: {e}"))?;
        let mut rows = shared.rows.lock().expect("rows lock");
        shared.waiting.store(0, Ordering::Relaxed);
        (finished, rows.take())
    };
    let mut sealed = failed.take().map(|(rows, _)| rows).unwrap_or_default();
    sealed.absorb(taken.seal());
    let result = sealed.write(root, finished).and_then(|written| {
        shared
            .counters
            .segments_written
            .fetch_add(written as u64, Ordering::Relaxed);
        shared
            .counters
            .spans_in_segments
            .fetch_add(sealed.spans as u64, Ordering::Relaxed);
        drop_wal_through(wal_dir, finished).map_err(|e| format!("dropping the log: {e}"))
    });
    if let Err(e) = &result {
        if segments::checkpoint(root).unwrap_or(before) == before {
            // Nothing of this flush counts: drop its segments and keep
            // the rows (the log still has them too) for the next try.
            let _ = segments::remove_unfinished(root, before);
            *failed = Some((sealed, Instant::now()));
        }
        return Err(e.clone());
    }
    let config = &shared.config;
    let oldest_kept = segments::oldest_kept(config.retention_max_age_seconds);
    let (expired, bytes) =
        segments::enforce_retention(root, oldest_kept, config.retention_max_bytes)
            .map_err(|e| format!("retention: {e}"))?;
    shared
        .counters
        .segments_expired
        .fetch_add(expired, Ordering::Relaxed);
    shared
        .counters
        .bytes_expired
        .fetch_add(bytes, Ordering::Relaxed);
    Ok(())
}
