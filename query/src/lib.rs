//! SQL over what the span store keeps, with DataFusion: the tables `spans`,
//! `edges`, `nodes` and `metrics` (`tables`) read straight from their
//! Parquet files. Queries are read-only, run on a runtime of their own
//! whose threads have the lowest CPU priority (so ingest never starves),
//! and have a timeout, a row limit and a memory limit. Errors carry the
//! line and column of the SQL they point at (`error`); results render as
//! a table, CSV or JSON (`output`). Traces are read whole, with their
//! critical path, or searched for (`traces`); the graph is read as it was
//! at a time, or two times compared (`past_graph`).

pub mod critical_path;
mod error;
pub mod output;
pub mod past_graph;
pub mod tables;
pub mod traces;
pub mod window_rows;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;

pub use error::QueryError;

/// How the engine runs queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// The span store's directory (holds `spans/`, `edges/`, ...).
    pub store_dir: PathBuf,
    /// The most rows a query returns, and the default.
    pub max_rows: usize,
    /// The longest a query may run, and the default.
    pub timeout: Duration,
    /// Threads of the query runtime.
    pub threads: usize,
    /// Memory all running queries may hold together; past it a query fails.
    pub memory_limit_bytes: usize,
    /// Queries running at once; more wait (within their timeout).
    pub concurrent_queries: usize,
}

impl QueryConfig {
    pub fn new(store_dir: PathBuf) -> Self {
        Self {
            store_dir,
            max_rows: 10_000,
            timeout: Duration::from_secs(30),
            threads: 2,
            memory_limit_bytes: 2 << 30,
            concurrent_queries: 4,
        }
    }
}

/// What one query asks for, within the engine's limits.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    pub sql: String,
    pub max_rows: Option<usize>,
    pub timeout: Option<Duration>,
    /// Values for the SQL's `$1`, `$2`, ... placeholders.
    pub params: Vec<datafusion::scalar::ScalarValue>,
}

/// A query's result: at most the row limit.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// More rows matched than the limit let through.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// The rows of a memory-only span store, as they are now (see
/// `meshtwin_store::SpanStore::spans_in_memory`).
pub type SpansInMemory = Arc<dyn Fn() -> Vec<RecordBatch> + Send + Sync>;

/// Runs SQL on its own runtime. Cheap to share behind an `Arc`.
pub struct QueryEngine {
    runtime: Option<tokio::runtime::Runtime>,
    env: Arc<RuntimeEnv>,
    running: Arc<Semaphore>,
    config: QueryConfig,
    spans_in_memory: Option<SpansInMemory>,
}

/// Lowers the calling thread to the lowest CPU priority (nice 19 on
/// Linux): query threads run on what ingest leaves.
fn lowest_priority() {
    if let Err(error) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(?error, "cannot lower the query thread's priority");
    }
}

impl QueryEngine {
    pub fn start(config: QueryConfig) -> Result<Self, QueryError> {
        tables::create_dirs(&config.store_dir)
            .map_err(|e| QueryError::Failed(format!("{}: {e}", config.store_dir.display())))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("query")
            .on_thread_start(lowest_priority)
            .enable_time()
            .build()
            .map_err(|e| QueryError::Failed(format!("cannot start the query runtime: {e}")))?;
        // Listings are not cached: the store adds files all the time, and a
        // query must see the segment written a moment ago.
        let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
        let env = RuntimeEnvBuilder::new()
            .with_memory_limit(config.memory_limit_bytes, 1.0)
            .with_cache_manager(caches)
            .build_arc()
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        Ok(Self {
            runtime: Some(runtime),
            env,
            running: Arc::new(Semaphore::new(config.concurrent_queries.max(1))),
            config,
            spans_in_memory: None,
        })
    }

    /// Reads the `spans` table from `source` (a memory-only store) rather
    /// than from segments on disk.
    pub fn with_spans_in_memory(mut self, source: SpansInMemory) -> Self {
        self.spans_in_memory = Some(source);
        self
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    /// Runs `request` on the query runtime; awaiting it costs the caller's
    /// runtime nothing but the wait.
    pub async fn run(&self, request: QueryRequest) -> Result<QueryResult, QueryError> {
        let max_rows = request
            .max_rows
            .unwrap_or(self.config.max_rows)
            .min(self.config.max_rows);
        self.run_up_to(request, max_rows).await
    }

    /// Runs `request` returning at most `max_rows`, whatever the limit for
    /// queries people type: for the engine's own bounded reads.
    pub(crate) async fn run_up_to(
        &self,
        request: QueryRequest,
        max_rows: usize,
    ) -> Result<QueryResult, QueryError> {
        let runtime = self.runtime.as_ref().ok_or(QueryError::Stopped)?;
        let timeout = request
            .timeout
            .unwrap_or(self.config.timeout)
            .min(self.config.timeout);
        let context = self.context();
        let running = Arc::clone(&self.running);
        let task = runtime.spawn(async move {
            let started = Instant::now();
            let work = async {
                let _slot = running
                    .acquire_owned()
                    .await
                    .map_err(|_| QueryError::Stopped)?;
                execute(&context, &request.sql, request.params, max_rows).await
            };
            let mut result = tokio::time::timeout(timeout, work)
                .await
                .map_err(|_| QueryError::Timeout(timeout))??;
            result.elapsed = started.elapsed();
            Ok(result)
        });
        task.await
            .map_err(|e| QueryError::Failed(format!("the query task failed: {e}")))?
    }

    /// A session over the store's tables, as they are on disk now.
    fn context(&self) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_target_partitions(self.config.threads.max(1))
            .with_information_schema(true);
        let options = config.options_mut();
        options.sql_parser.collect_spans = true;
        options.execution.parquet.pushdown_filters = true;
        let context = SessionContext::new_with_config_rt(config, Arc::clone(&self.env));
        tables::register(&context, &self.config.store_dir);
        if let Some(source) = &self.spans_in_memory {
            tables::register_spans_in_memory(&context, source(), self.config.threads);
        }
        context
    }
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Plans `sql` read-only, and collects at most `max_rows` rows.
async fn execute(
    context: &SessionContext,
    sql: &str,
    params: Vec<datafusion::scalar::ScalarValue>,
    max_rows: usize,
) -> Result<QueryResult, QueryError> {
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = context
        .sql_with_options(sql, read_only)
        .await
        .map_err(|e| QueryError::from_datafusion(&e, sql))?;
    let frame = if params.is_empty() {
        frame
    } else {
        frame
            .with_param_values(params)
            .map_err(|e| QueryError::from_datafusion(&e, sql))?
    };
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    // One row past the limit tells whether there were more.
    let frame = frame
        .limit(0, Some(max_rows.saturating_add(1)))
        .map_err(|e| QueryError::from_datafusion(&e, sql))?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|e| QueryError::from_datafusion(&e, sql))?;
    let (mut batches, mut rows, mut truncated) = (Vec::new(), 0, false);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| QueryError::from_datafusion(&e, sql))?;
        let room = max_rows - rows;
        if batch.num_rows() > room {
            truncated = true;
            if room > 0 {
                batches.push(batch.slice(0, room));
            }
            rows = max_rows;
            break;
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(QueryResult {
        schema,
        batches,
        rows,
        truncated,
        elapsed: Duration::ZERO,
    })
}
