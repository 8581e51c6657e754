//! The `[store]` and `[query]` sections: the embedded span store and the
//! SQL engine over it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The embedded span store (ADR 007).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreSettings {
    /// Keep every span (write-ahead log, then Parquet segments), the
    /// twin's history and the metrics received, for SQL and time travel.
    pub(crate) enabled: bool,
    /// Where [default: `<data_dir>/store`].
    pub(crate) dir: Option<PathBuf>,
    /// A segment is written at this many spans, or when the oldest has
    /// waited `segment_max_seconds`.
    pub(crate) segment_max_spans: usize,
    pub(crate) segment_max_seconds: u64,
    /// Segments are deleted when their newest span is older than this...
    pub(crate) retention_max_age_hours: u64,
    /// ...and, oldest first, while all of them take more than this.
    pub(crate) retention_max_bytes: u64,
    /// Sync the log on every request: survives power loss, costs latency.
    pub(crate) sync_every_request: bool,
    /// Keep spans in memory only, at most this many (the newest): no log,
    /// no segments, nothing kept across a restart [default: on disk].
    pub(crate) memory_only_max_spans: Option<usize>,
    /// The twin's nodes and edges are kept this often (`nodes`, `edges`).
    pub(crate) history_interval_seconds: u64,
    /// The tables beside the spans (`edges`, `nodes`, `metrics`) are
    /// written this often; a crash loses at most this much of them.
    pub(crate) tables_flush_seconds: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            segment_max_spans: 200_000,
            segment_max_seconds: 10,
            retention_max_age_hours: 7 * 24,
            retention_max_bytes: 10 * 1024 * 1024 * 1024,
            sync_every_request: false,
            memory_only_max_spans: None,
            history_interval_seconds: 10,
            tables_flush_seconds: 60,
        }
    }
}

impl StoreSettings {
    pub(crate) fn config(&self, data_dir: &Path) -> meshtwin_store::StoreConfig {
        let dir = self.dir.clone().unwrap_or_else(|| data_dir.join("store"));
        meshtwin_store::StoreConfig {
            segment_max_spans: self.segment_max_spans,
            // Room for the next segment's rows while one is written.
            max_waiting_spans: self.segment_max_spans.saturating_mul(2).max(100_000),
            segment_max_seconds: self.segment_max_seconds,
            retention_max_age_seconds: self.retention_max_age_hours.saturating_mul(3600),
            retention_max_bytes: self.retention_max_bytes,
            sync_every_request: self.sync_every_request,
            memory_only_max_spans: self.memory_only_max_spans,
            ..meshtwin_store::StoreConfig::new(dir)
        }
    }

    /// Where and how the table beside the spans named `name` is written.
    pub(crate) fn table(
        &self,
        data_dir: &Path,
        name: &str,
        schema: arrow_schema::SchemaRef,
    ) -> meshtwin_store::table::TableConfig {
        let store = self.config(data_dir);
        meshtwin_store::table::TableConfig {
            root: store.dir.join(name),
            schema,
            flush_every: Duration::from_secs(self.tables_flush_seconds),
            retention_max_age_seconds: store.retention_max_age_seconds,
            retention_max_bytes: store.retention_max_bytes / 10,
            queue_batches: 1024,
        }
    }

    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("history_interval_seconds", self.history_interval_seconds),
            ("tables_flush_seconds", self.tables_flush_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                problems.push(format!("store.{key}: must be from 1 to 3600, not {value}"));
            }
        }
        if !(1_000..=10_000_000).contains(&self.segment_max_spans) {
            problems.push(format!(
                "store.segment_max_spans: must be from 1000 to 10000000, not {}",
                self.segment_max_spans
            ));
        }
        if !(1..=3600).contains(&self.segment_max_seconds) {
            problems.push(format!(
                "store.segment_max_seconds: must be from 1 to 3600, not {}",
                self.segment_max_seconds
            ));
        }
        if let Some(spans) = self.memory_only_max_spans
            && !(10_000..=100_000_000).contains(&spans)
        {
            problems.push(format!(
                "store.memory_only_max_spans: must be from 10000 to 100000000, not {spans}"
            ));
        }
        if self.retention_max_age_hours == 0 {
            problems.push("store.retention_max_age_hours: must be at least 1".to_owned());
        }
        if self.retention_max_bytes < 1024 * 1024 {
            problems.push(format!(
                "store.retention_max_bytes: must be at least 1048576 (1 MiB), not {}",
                self.retention_max_bytes
            ));
        }
        problems
    }
}

/// SQL over the store (`meshtwin query`, `POST /api/v1/query`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct QuerySettings {
    /// The most rows a query returns.
    pub(crate) max_rows: usize,
    /// The longest a query may run.
    pub(crate) timeout_seconds: u64,
    /// Threads of the query runtime (lowest CPU priority).
    pub(crate) threads: usize,
    /// Memory all running queries may hold together.
    pub(crate) memory_limit_mb: usize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        let defaults = meshtwin_query::QueryConfig::new(PathBuf::new());
        Self {
            max_rows: defaults.max_rows,
            timeout_seconds: defaults.timeout.as_secs(),
            threads: defaults.threads,
            memory_limit_mb: defaults.memory_limit_bytes >> 20,
        }
    }
}

impl QuerySettings {
    pub(crate) fn config(&self, store_dir: PathBuf) -> meshtwin_query::QueryConfig {
        meshtwin_query::QueryConfig {
            max_rows: self.max_rows,
            timeout: Duration::from_secs(self.timeout_seconds),
            threads: self.threads,
            memory_limit_bytes: self.memory_limit_mb << 20,
            ..meshtwin_query::QueryConfig::new(store_dir)
        }
    }

    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |key: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if !range.contains(&value) {
                problems.push(format!(
                    "query.{key}: must be from {} to {}, not {value}",
                    range.start(),
                    range.end()
                ));
            }
        };
        check("max_rows", self.max_rows, 1..=10_000_000);
        check("timeout_seconds", self.timeout_seconds as usize, 1..=86_400);
        check("threads", self.threads, 1..=64);
        check("memory_limit_mb", self.memory_limit_mb, 16..=1 << 20);
        problems
    }
}
