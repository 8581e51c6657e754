//! Append-only tables beside the spans: the twin's `edges` and `nodes`
//! history and the received `metrics`. Batches go to a thread that writes
//! them as Parquet files by hour, in the spans' layout (`segments`), every
//! flush interval, and applies the same retention. There is no log: a
//! crash loses at most the last flush interval of these tables (ADR 007);
//! spans are the evidence and have the log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::segments;

/// Where and how one table is written.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The table's directory (`<store>/edges`, ...).
    pub root: PathBuf,
    /// Its first column is the row's time: a nanosecond timestamp.
    pub schema: SchemaRef,
    pub flush_every: Duration,
    pub retention_max_age_seconds: u64,
    pub retention_max_bytes: u64,
    /// Batches accepted but not yet taken by the thread, at most.
    pub queue_batches: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TableCounters {
    pub rows_written: AtomicU64,
    /// Refused: the queue was full, or the batch did not fit the schema.
    pub rows_dropped: AtomicU64,
    pub files_written: AtomicU64,
    pub write_failures: AtomicU64,
    pub files_expired: AtomicU64,
}

enum Message {
    Batch(RecordBatch),
    Flush(mpsc::Sender<Result<(), String>>),
}

/// Appends batches from any thread; one writer thread behind it.
pub struct TableAppender {
    name: String,
    schema: SchemaRef,
    sender: Option<SyncSender<Message>>,
    counters: Arc<TableCounters>,
    thread: Option<JoinHandle<()>>,
}

impl TableAppender {
    pub fn start(config: TableConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.root)?;
        let name = config
            .root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let (sender, receiver) = mpsc::sync_channel(config.queue_batches.max(1));
        let counters = Arc::new(TableCounters::default());
        let schema = config.schema.clone();
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("table-{name}"))
                .spawn(move || run(&config, &receiver, &counters))?
        };
        Ok(Self {
            name,
            schema,
            sender: Some(sender),
            counters,
            thread: Some(thread),
        })
    }

    /// Queues `batch`; never blocks. A full queue or a batch that does not
    /// fit the table's schema is dropped and counted.
    pub fn append(&self, batch: RecordBatch) -> bool {
        let rows = batch.num_rows() as u64;
        if batch.schema() != self.schema {
            tracing::warn!(table = %self.name, "a batch that does not fit the table was dropped");
            self.counters
                .rows_dropped
                .fetch_add(rows, Ordering::Relaxed);
            return false;
        }
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| match s.try_send(Message::Batch(batch)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
        if !sent {
            self.counters
                .rows_dropped
                .fetch_add(rows, Ordering::Relaxed);
        }
        sent
    }

    /// Writes everything queued so far.
    pub fn flush(&self) -> Result<(), String> {
        let (reply, wait) = mpsc::channel();
        self.sender
            .as_ref()
            .ok_or("stopped")?
            .send(Message::Flush(reply))
            .map_err(|_| "stopped")?;
        wait.recv().map_err(|_| "stopped")?
    }

    pub fn counters(&self) -> &TableCounters {
        &self.counters
    }
}

impl Drop for TableAppender {
    /// Writes what is queued, then stops the thread.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The smallest and largest time in `batch`'s first column.
fn time_range(batch: &RecordBatch) -> Option<(u64, u64)> {
    let times = batch
        .column(0)
        .as_primitive_opt::<TimestampNanosecondType>()?;
    let min = times.values().iter().copied().min()?;
    let max = times.values().iter().copied().max()?;
    (times.null_count() == 0).then_some((min.max(0) as u64, max.max(0) as u64))
}

#[derive(Default)]
struct Pending {
    /// Batches by the hour of their earliest row.
    hours: BTreeMap<u64, (Vec<RecordBatch>, u64)>,
    since: Option<Instant>,
}

fn run(config: &TableConfig, receiver: &Receiver<Message>, counters: &TableCounters) {
    let mut pending = Pending::default();
    // File numbers only grow, across restarts too.
    let mut seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    loop {
        let mut replies = Vec::new();
        let stopping = match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(Message::Batch(batch)) => {
                match time_range(&batch) {
                    Some((min, max)) => {
                        let hour = segments::hour_of(min);
                        let (batches, end) = pending.hours.entry(hour).or_default();
                        batches.push(batch);
                        *end = (*end).max(max);
                        pending.since.get_or_insert_with(Instant::now);
                    }
                    None => {
                        let rows = batch.num_rows() as u64;
                        counters.rows_dropped.fetch_add(rows, Ordering::Relaxed);
                    }
                }
                false
            }
            Ok(Message::Flush(reply)) => {
                replies.push(reply);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = pending
            .since
            .is_some_and(|t| t.elapsed() >= config.flush_every);
        if due || stopping || !replies.is_empty() {
            let result = write(config, &mut pending, &mut seq, counters);
            if let Err(error) = &result {
                counters.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(root = %config.root.display(), %error, "writing a table file failed; its rows are lost");
            }
            for reply in replies {
                let _ = reply.send(result.clone());
            }
        }
        if stopping {
            return;
        }
    }
}

fn write(
    config: &TableConfig,
    pending: &mut Pending,
    seq: &mut u64,
    counters: &TableCounters,
) -> Result<(), String> {
    let hours = std::mem::take(&mut pending.hours);
    pending.since = None;
    let properties = || {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build()
    };
    let mut first_error = None;
    for (hour, (batches, end)) in hours {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        *seq += 1;
        let name = format!("seq-{seq:016}-end-{end}.parquet");
        let schema = config.schema.clone();
        let written =
            segments::write_file(&config.root, hour, &name, schema, &batches, properties())
                .map_err(|e| e.to_string());
        match written {
            Ok(_) => {
                counters.files_written.fetch_add(1, Ordering::Relaxed);
                counters
                    .rows_written
                    .fetch_add(rows as u64, Ordering::Relaxed);
            }
            Err(e) => {
                counters
                    .rows_dropped
                    .fetch_add(rows as u64, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
    }
    let oldest_kept = segments::oldest_kept(config.retention_max_age_seconds);
    match segments::enforce_retention(&config.root, oldest_kept, config.retention_max_bytes) {
        Ok((expired, _)) => {
            counters.files_expired.fetch_add(expired, Ordering::Relaxed);
        }
        Err(e) => {
            first_error.get_or_insert(format!("retention: {e}"));
        }
    }
    first_error.map_or(Ok(()), Err)
}
