//! `meshtwin query "SQL"`: asks a running meshtwin (`POST /api/v1/query`)
//! or, with `--data-dir`, reads a data directory's store itself. Prints a
//! table, CSV or JSON; an error names the line and column and points at
//! them. Exit codes: 0, 65 for wrong SQL, 1 for anything else.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshtwin_query::output::{self, Format};
use meshtwin_query::{QueryConfig, QueryEngine, QueryError, QueryRequest};

/// Exit code for SQL that is wrong (BSD `EX_DATAERR`).
const EXIT_INVALID: u8 = 65;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum OutputArg {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct QueryArgs {
    /// The SQL (`-` reads it from stdin). Tables: spans, edges, nodes,
    /// metrics; `SHOW TABLES` and `DESCRIBE spans` list them.
    #[arg(value_name = "SQL")]
    pub(crate) sql: String,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: OutputArg,
    /// The running meshtwin's web address.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) server: String,
    /// Read this data directory's store directly instead (no server needed).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Return at most this many rows [default: the server's limit, 10000].
    #[arg(long, value_name = "N")]
    pub(crate) max_rows: Option<usize>,
    /// Cancel the query after this many seconds [default: the server's, 30].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: Option<f64>,
}

/// How a query failed, for the exit code.
pub(crate) enum QueryFailure {
    Invalid(String),
    Other(String),
}

impl QueryFailure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) => EXIT_INVALID,
            Self::Other(_) => 1,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Invalid(m) | Self::Other(m) => m,
        }
    }
}

fn format_of(arg: OutputArg) -> Format {
    match arg {
        OutputArg::Table => Format::Table,
        OutputArg::Csv => Format::Csv,
        OutputArg::Json => Format::Json,
    }
}

/// `message`, then the SQL line it points at with a caret under the column.
fn pointed(sql: &str, message: &str, position: Option<(u64, u64)>) -> String {
    let Some((line, column)) = position else {
        return message.to_owned();
    };
    let Some(text) = sql.lines().nth(line.saturating_sub(1) as usize) else {
        return message.to_owned();
    };
    let caret = " ".repeat(column.saturating_sub(1) as usize);
    format!("{message}\n  {text}\n  {caret}^")
}

pub(crate) async fn query(mut args: QueryArgs) -> Result<(), QueryFailure> {
    if args.sql == "-" {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .map_err(|e| QueryFailure::Other(format!("cannot read the SQL from stdin: {e}")))?;
        args.sql = sql;
    }
    let timeout = match args.timeout {
        Some(s) if !(s > 0.0 && s <= 86_400.0) => {
            return Err(QueryFailure::Invalid(format!(
                "--timeout must be above 0 and at most 86400 seconds, not {s}"
            )));
        }
        s => s.map(Duration::from_secs_f64),
    };
    let text = match &args.data_dir {
        Some(dir) => locally(&args, dir, timeout).await?,
        None => remotely(&args).await?,
    };
    print!("{text}");
    Ok(())
}

async fn locally(
    args: &QueryArgs,
    data_dir: &std::path::Path,
    timeout: Option<Duration>,
) -> Result<String, QueryFailure> {
    let store = data_dir.join("store");
    if !store.is_dir() {
        return Err(QueryFailure::Other(format!(
            "{} holds no span store ({} is missing)",
            data_dir.display(),
            store.display()
        )));
    }
    let mut config = QueryConfig::new(store);
    if let Some(rows) = args.max_rows {
        config.max_rows = rows;
    }
    if let Some(timeout) = timeout {
        config.timeout = timeout;
    }
    let engine = QueryEngine::start(config).map_err(|e| QueryFailure::Other(e.to_string()))?;
    let request = QueryRequest {
        sql: args.sql.clone(),
        ..QueryRequest::default()
    };
    let fail = |e: QueryError| match &e {
        QueryError::Invalid { .. } => {
            QueryFailure::Invalid(pointed(&args.sql, &e.to_string(), e.position()))
        }
        _ => QueryFailure::Other(e.to_string()),
    };
    let result = engine.run(request).await.map_err(fail)?;
    output::render(&result, format_of(args.format)).map_err(fail)
}

async fn remotely(args: &QueryArgs) -> Result<String, QueryFailure> {
    let url = format!("{}/api/v1/query", args.server.trim_end_matches('/'));
    let body = serde_json::json!({
        "sql": args.sql,
        "format": format_of(args.format),
        "max_rows": args.max_rows,
        "timeout_seconds": args.timeout,
    });
    let request = hyper::Request::post(&url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| QueryFailure::Other(format!("{url}: {e}")))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| {
        QueryFailure::Other(format!(
            "cannot reach meshtwin at {url}: {e}; is it running? (or query a data directory with --data-dir)"
        ))
    })?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| QueryFailure::Other(format!("{url}: reading the answer: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status.is_success() {
        return Ok(match format_of(args.format) {
            // The API wraps JSON rows with their columns; print the rows.
            Format::Json => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v["rows"]).ok())
                .map_or(text, |rows| rows + "\n"),
            _ => text,
        });
    }
    let error: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let message = error["error"].as_str().unwrap_or(&text).to_owned();
    let position = error["line"].as_u64().zip(error["column"].as_u64());
    match error["kind"].as_str() {
        Some("invalid") => Err(QueryFailure::Invalid(pointed(
            &args.sql, &message, position,
        ))),
        _ => Err(QueryFailure::Other(format!("{message} (HTTP {status})"))),
    }
}
