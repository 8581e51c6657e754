//! The writer thread: spans from the queue into per-hour rows, rows into
//! segments (after rotating the log, so every record of the finished log
//! files is in them), then the covered log files deleted and retention
//! applied. And recovery: the log's records that no segment covers yet.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

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
struct Buffer {
    hours: BTreeMap<u64, SpanChunks>,
    spans: usize,
    since: Option<Instant>,
    /// What rows held per row lately, to size the next builders.
    text: Option<TextPerRow>,
}

impl Buffer {
    fn push(&mut self, request: &ExportTraceServiceRequest) {
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

    /// Writes every hour's rows as a segment covering the log through
    /// `wal_through`; the buffer is empty after success.
    fn write(&mut self, root: &Path, wal_through: u64) -> Result<usize, String> {
        let mut written = 0;
        let hours = std::mem::take(&mut self.hours);
        self.spans = 0;
        self.since = None;
        for (hour, rows) in hours {
            if rows.len == 0 {
                continue;
            }
            let max_end = rows.max_end;
            if rows.len >= crate::span_chunks::CHUNK_ROWS {
                self.text = Some(rows.text);
            }
            segments::write(root, hour, wal_through, max_end, &rows.finish())
                .map_err(|e| format!("{}: {e}", root.display()))?;
            written += 1;
        }
        segments::set_checkpoint(root, wal_through)
            .map_err(|e| format!("moving the checkpoint: {e}"))?;
        Ok(written)
    }
}

/// Reads the log files numbered in `(after, through]` back into `buffer`:
/// after a failed flush, the rows it took are rebuilt from the log.
fn reread(buffer: &mut Buffer, wal_dir: &Path, after: u64, through: u64) -> Result<(), String> {
    for (seq, path) in wal::files(wal_dir).map_err(|e| e.to_string())? {
        if seq <= after || seq > through {
            continue;
        }
        let replayed = wal::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for record in &replayed.records {
            let request = ExportTraceServiceRequest::decode(record.as_slice())
                .map_err(|e| format!("{}: undecodable record: {e}", path.display()))?;
            buffer.push(&request);
        }
    }
    Ok(())
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
        buffer.write(&root, seq).map_err(|e| StoreError::Io {
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
    let mut buffer = Buffer::default();
    let mut failures = 0u32;
    let mut replies = Vec::new();
    let mut stopping = false;
    let age_limit = Duration::from_secs(config.segment_max_seconds.max(1));
    while !stopping {
        let mut flush_now = false;
        match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(Message::Request { request, .. }) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                buffer.push(&request);
            }
            Ok(Message::Flush(reply)) => {
                replies.push(reply);
                flush_now = true;
            }
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                stopping = true;
                flush_now = true;
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = shared.wal.lock().expect("wal lock").sync() {
                    tracing::warn!(error = %e, "span store: syncing the log failed");
                }
            }
        }
        let full = buffer.spans >= config.segment_max_spans;
        let old = buffer.since.is_some_and(|t| t.elapsed() >= age_limit);
        if !(flush_now || full || old) {
            continue;
        }
        let result = flush(
            shared,
            receiver,
            &mut buffer,
            &root,
            &wal_dir,
            &mut replies,
            &mut stopping,
        );
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

/// Rotates the log, takes in every queued request of the finished files,
/// writes the buffer as segments, drops the covered log files and applies
/// retention.
fn flush(
    shared: &Shared,
    receiver: &Receiver<Message>,
    buffer: &mut Buffer,
    root: &Path,
    wal_dir: &Path,
    replies: &mut Vec<std::sync::mpsc::Sender<Result<(), String>>>,
    stopping: &mut bool,
) -> Result<(), String> {
    let finished = shared
        .wal
        .lock()
        .expect("wal lock")
        .rotate()
        .map_err(|e| format!("rotating the log: {e}"))?;
    // Everything logged before the rotation is queued ahead of anything
    // after it; take it all in, and keep what came after for later.
    let mut later = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(Message::Request { wal_seq, request })
                if wal_seq <= finished && later.is_empty() =>
            {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                buffer.push(&request);
            }
            Ok(Message::Request { request, .. }) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                later.push(request);
            }
            Ok(Message::Flush(reply)) => replies.push(reply),
            Ok(Message::Stop) => *stopping = true,
            Err(_) => break,
        }
    }
    let spans = buffer.spans as u64;
    let before = segments::checkpoint(root).map_err(|e| e.to_string())?;
    let result = buffer.write(root, finished).and_then(|written| {
        shared
            .counters
            .segments_written
            .fetch_add(written as u64, Ordering::Relaxed);
        shared
            .counters
            .spans_in_segments
            .fetch_add(spans, Ordering::Relaxed);
        drop_wal_through(wal_dir, finished).map_err(|e| format!("dropping the log: {e}"))
    });
    if let Err(e) = &result
        && segments::checkpoint(root).unwrap_or(before) == before
    {
        // Nothing of this flush counts: drop its segments and take the
        // rows back from the log, which still has them.
        let _ = segments::remove_unfinished(root, before);
        *buffer = Buffer::default();
        reread(buffer, wal_dir, before, finished)
            .map_err(|again| format!("{e}; and re-reading the log: {again}"))?;
    }
    for request in &later {
        buffer.push(request);
    }
    result?;
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
