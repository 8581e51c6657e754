//! The embedded span store. Every accepted trace export is appended to a
//! write-ahead log before it is acknowledged, and its spans turned into
//! Arrow rows by the appending thread; a writer thread writes the rows as
//! Parquet segments partitioned by hour (`segments`), then drops the log
//! files they cover, and applies retention by age and by size. After a
//! crash, `SpanStore::open` writes what the log holds and the segments do
//! not. What a crash can lose, and why: ADR 007. A memory-only store
//! (`StoreConfig::memory_only_max_spans`) keeps the rows in memory instead.

pub mod history;
mod memory;
pub mod metric_rows;
pub mod rows;
pub mod segments;
mod span_chunks;
pub mod table;
mod wal;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

pub use segments::Segment;

/// Where and how spans are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Holds `wal/` and `spans/`.
    pub dir: PathBuf,
    /// A segment is written when this many spans wait...
    pub segment_max_spans: usize,
    /// ...or the oldest has waited this long.
    pub segment_max_seconds: u64,
    /// Segments whose newest span ended longer ago are deleted.
    pub retention_max_age_seconds: u64,
    /// The oldest segments are deleted while all of them take more.
    pub retention_max_bytes: u64,
    /// Sync the log to disk on every request (survives power loss, slower);
    /// otherwise once a second and at every segment.
    pub sync_every_request: bool,
    /// Spans logged but not yet taken by the writer, at most; past this
    /// the writer is behind and appends are refused (retryably).
    pub max_waiting_spans: usize,
    /// Keep spans in memory only, at most this many (the oldest dropped
    /// first): no log and no segments, so nothing survives a restart.
    /// `None` (the default): on disk, as above.
    pub memory_only_max_spans: Option<usize>,
}

impl StoreConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            segment_max_spans: 200_000,
            segment_max_seconds: 10,
            retention_max_age_seconds: 7 * 24 * 3600,
            retention_max_bytes: 10 * 1024 * 1024 * 1024,
            sync_every_request: false,
            max_waiting_spans: 400_000,
            memory_only_max_spans: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("span store I/O at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Retry later: the writer is behind, or cannot write segments.
    #[error("the span store is {0}; retry later")]
    Unavailable(&'static str),
}

pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreCounters {
    pub requests_logged: AtomicU64,
    pub requests_refused: AtomicU64,
    pub spans_in_segments: AtomicU64,
    pub segments_written: AtomicU64,
    pub segment_failures: AtomicU64,
    pub segments_expired: AtomicU64,
    pub bytes_expired: AtomicU64,
    /// Spans taken into memory (memory-only stores).
    pub spans_in_memory: AtomicU64,
    /// Spans dropped from memory to stay under the limit.
    pub spans_dropped_from_memory: AtomicU64,
}

/// What opening found in the log and wrote out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub wal_files: u64,
    pub requests: u64,
    pub spans: u64,
    /// Bytes of a record torn by the crash (never acknowledged), dropped.
    pub torn_bytes: u64,
    /// Log files already covered by segments (a crash after the segment
    /// was written but before the log was dropped), dropped.
    pub already_in_segments: u64,
}

pub(crate) enum Message {
    /// A segment's worth of rows is waiting.
    Full,
    Flush(mpsc::Sender<Result<(), String>>),
    Stop,
}

pub(crate) struct Shared {
    /// Locked before `rows` wherever both are: a rotation of the log and
    /// the rows taken with it then hold the same requests.
    /// `None` when spans are kept in memory only.
    pub(crate) wal: Option<Mutex<wal::Wal>>,
    /// The rows of every logged request the writer has not taken yet,
    /// built by the thread that appends (which frees the request itself).
    pub(crate) rows: Mutex<writer::Buffer>,
    /// `rows`' span count, readable without its lock.
    pub(crate) waiting: AtomicUsize,
    /// What a memory-only store holds.
    pub(crate) kept: Mutex<memory::Kept>,
    pub(crate) stuck: AtomicBool,
    pub(crate) stopped: AtomicBool,
    pub(crate) counters: StoreCounters,
    pub(crate) config: StoreConfig,
}

/// The store: append from any thread; one writer thread behind it.
pub struct SpanStore {
    shared: Arc<Shared>,
    sender: SyncSender<Message>,
    writer: Option<JoinHandle<()>>,
}

impl SpanStore {
    /// Opens (or creates) the store, first writing out whatever the log
    /// holds from before a crash.
    pub fn open(config: StoreConfig) -> Result<(Self, Recovery), StoreError> {
        let (recovery, wal) = if config.memory_only_max_spans.is_some() {
            (Recovery::default(), None)
        } else {
            let (recovery, next_wal) = writer::recover(&config)?;
            let wal_dir = config.dir.join("wal");
            let wal = wal::Wal::open(&wal_dir, next_wal, config.sync_every_request)
                .map_err(io_at(&wal_dir))?;
            (recovery, Some(Mutex::new(wal)))
        };
        let (sender, receiver) = mpsc::sync_channel(16);
        let shared = Arc::new(Shared {
            wal,
            rows: Mutex::new(writer::Buffer::default()),
            waiting: AtomicUsize::new(0),
            kept: Mutex::default(),
            stuck: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            counters: StoreCounters::default(),
            config,
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("span-store".into())
                .spawn(move || writer::run(&shared, &receiver))
                .map_err(|source| StoreError::Io {
                    path: "span-store thread".into(),
                    source,
                })?
        };
        Ok((
            Self {
                shared,
                sender,
                writer: Some(writer),
            },
            recovery,
        ))
    }

    /// Logs `request`; once this returns `Ok`, it survives the process
    /// being killed. Refuses (retryably) when the writer is behind.
    pub fn append(&self, request: &ExportTraceServiceRequest) -> Result<(), StoreError> {
        let encoded = request.encode_to_vec();
        self.append_encoded(request, &encoded)
    }

    /// [`append`](Self::append) for a request received as protobuf:
    /// `encoded` (the bytes it was decoded from) goes to the log as it is,
    /// which saves encoding it again. The request's rows are built here,
    /// on the caller's thread, so the writer thread only writes Parquet.
    pub fn append_encoded(
        &self,
        request: &ExportTraceServiceRequest,
        encoded: &[u8],
    ) -> Result<(), StoreError> {
        self.check_room()?;
        let mut wal = self
            .shared
            .wal
            .as_ref()
            .map(|w| w.lock().expect("wal lock"));
        if let Some(wal) = &mut wal {
            let wal_dir = self.shared.config.dir.join("wal");
            wal.append(encoded).map_err(io_at(&wal_dir))?;
        }
        // Taken before the log is let go: a rotation after this append
        // takes these rows with it (see `Shared::wal`).
        let mut rows = self.shared.rows.lock().expect("rows lock");
        drop(wal);
        rows.push(request);
        self.shared.waiting.store(rows.spans, Ordering::Relaxed);
        let full = rows.spans >= self.shared.config.segment_max_spans;
        drop(rows);
        if full {
            // A full channel already holds a wake-up.
            let _ = self.sender.try_send(Message::Full);
        }
        self.shared
            .counters
            .requests_logged
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether an append now would be taken; a refusal is counted. Cheap:
    /// receivers ask before decoding a request, so that a store that is
    /// behind costs its senders a retry, not the receiver a decode.
    pub fn check_room(&self) -> Result<(), StoreError> {
        if self.shared.stuck.load(Ordering::Relaxed) {
            return self.refuse("unable to write segments (see the log)");
        }
        if self.shared.stopped.load(Ordering::Relaxed) {
            return self.refuse("stopped");
        }
        let waiting = self.shared.waiting.load(Ordering::Relaxed);
        if waiting >= self.shared.config.max_waiting_spans {
            return self.refuse("behind");
        }
        Ok(())
    }

    fn refuse(&self, why: &'static str) -> Result<(), StoreError> {
        self.shared
            .counters
            .requests_refused
            .fetch_add(1, Ordering::Relaxed);
        Err(StoreError::Unavailable(why))
    }

    /// Writes every span received so far into segments.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (reply, wait) = mpsc::channel();
        self.sender
            .send(Message::Flush(reply))
            .map_err(|_| StoreError::Unavailable("stopped"))?;
        wait.recv()
            .map_err(|_| StoreError::Unavailable("stopped"))?
            .map_err(|e| StoreError::Io {
                path: self.shared.config.dir.display().to_string(),
                source: std::io::Error::other(e),
            })
    }

    pub fn counters(&self) -> &StoreCounters {
        &self.shared.counters
    }

    /// The spans a memory-only store holds (none for one on disk), as
    /// batches of the `spans` table; the arrays are shared, not copied.
    pub fn spans_in_memory(&self) -> Vec<arrow_array::RecordBatch> {
        self.shared.kept.lock().expect("kept lock").batches()
    }

    /// The most spans kept, when they are kept in memory only.
    pub fn memory_only_max_spans(&self) -> Option<usize> {
        self.shared.config.memory_only_max_spans
    }

    /// Every segment on disk.
    pub fn segments(&self) -> Result<Vec<Segment>, StoreError> {
        let root = self.shared.config.dir.join("spans");
        if self.memory_only_max_spans().is_some() {
            return Ok(Vec::new());
        }
        segments::list(&root).map_err(io_at(&root))
    }

    /// Writes what is buffered and stops the writer.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for SpanStore {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod table_tests;
