//! The ingest stage: OTLP in, span facts out.
//!
//! In: OTLP exactly as the OpenTelemetry spec defines it, over gRPC
//! ([`grpc`], port 4317) and HTTP ([`http`], port 4318, protobuf or JSON,
//! gzip or not). Out: validated [`meshtwin_model::span::SpanBatch`]es on a
//! bounded channel to the twin. Bad input gets `INVALID_ARGUMENT` / HTTP
//! 400 or 413 and a counter; a full channel gets a retryable
//! `UNAVAILABLE` / HTTP 503, never a blocked sender.

pub mod config;
mod convert;
pub mod grpc;
pub mod http;
mod ingest;
pub mod metrics;

pub use config::CollectorConfig;
pub use convert::span_facts;
pub use ingest::{Ingest, IngestError};
pub use metrics::CollectorMetrics;
