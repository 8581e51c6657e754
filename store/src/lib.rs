//! The embedded span store. Every accepted trace export is appended to a
//! write-ahead log before it is acknowledged; a writer thread turns the
//! spans into Parquet segments partitioned by hour (`segments`), then
//! drops the log files they cover, and applies retention by age and by
//! size. After a crash, `SpanStore::open` writes what the log holds and
//! the segments do not. What a crash can lose, and why: ADR 007.

pub mod history;
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
    /// Requests accepted but not yet taken by the writer, at most.
    pub queue_requests: usize,
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
            queue_requests: 256,
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
    Request {
        wal_seq: u64,
        request: ExportTraceServiceRequest,
    },
    Flush(mpsc::Sender<Result<(), String>>),
    Stop,
}

pub(crate) struct Shared {
    pub(crate) wal: Mutex<wal::Wal>,
    pub(crate) queued: AtomicUsize,
    pub(crate) stuck: AtomicBool,
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
        let (recovery, next_wal) = writer::recover(&config)?;
        let wal_dir = config.dir.join("wal");
        let wal = wal::Wal::open(&wal_dir, next_wal, config.sync_every_request)
            .map_err(io_at(&wal_dir))?;
        let (sender, receiver) = mpsc::sync_channel(config.queue_requests.max(1));
        let shared = Arc::new(Shared {
            wal: Mutex::new(wal),
            queued: AtomicUsize::new(0),
            stuck: AtomicBool::new(false),
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
    pub fn append(&self, request: ExportTraceServiceRequest) -> Result<(), StoreError> {
        let encoded = request.encode_to_vec();
        self.append_encoded(request, &encoded)
    }

    /// [`append`](Self::append) for a request received as protobuf:
    /// `encoded` (the bytes it was decoded from) goes to the log as it is,
    /// which saves encoding it again.
    pub fn append_encoded(
        &self,
        request: ExportTraceServiceRequest,
        encoded: &[u8],
    ) -> Result<(), StoreError> {
        self.check_room()?;
        let mut wal = self.shared.wal.lock().expect("wal lock");
        if self.shared.queued.load(Ordering::Relaxed) >= self.shared.config.queue_requests {
            return self.refuse("behind");
        }
        let wal_dir = self.shared.config.dir.join("wal");
        let wal_seq = wal.append(encoded).map_err(io_at(&wal_dir))?;
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        // Sent under the lock: rotation sees every record of a finished
        // file already queued. Never blocks: `queued` stays under capacity.
        let message = Message::Request { wal_seq, request };
        if self.sender.send(message).is_err() {
            return self.refuse("stopped");
        }
        drop(wal);
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
        if self.shared.queued.load(Ordering::Relaxed) >= self.shared.config.queue_requests {
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

    /// Every segment on disk.
    pub fn segments(&self) -> Result<Vec<Segment>, StoreError> {
        let root = self.shared.config.dir.join("spans");
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
