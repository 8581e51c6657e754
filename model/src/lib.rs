//! The vocabulary of meshtwin's data flow, shared by every stage.
//!
//! Ingest (`collector`) turns OTLP into [`span::Span`] facts; the twin turns
//! span facts into a [`graph::GraphSnapshot`] and publishes the changes as
//! [`delta::GraphDelta`]s; the web stage sends both to browsers as
//! [`delta::StreamMessage`]s and renders [`series::TwinView`] as Prometheus
//! metrics. Pure types and pure functions only: no I/O, no async, no clocks.

pub mod anomaly;
pub mod delta;
pub mod graph;
pub mod ids;
pub mod incident;
pub mod rca;
pub mod series;
pub mod span;
pub mod spiffe;

/// Messages of the control API (`model/proto/control.proto`).
#[cfg(feature = "control-api")]
pub mod control;

/// Services, endpoints and per-route policy, for proxies and the control API.
#[cfg(feature = "control-api")]
pub mod routing;

/// Verifying a peer's certificate as a SPIFFE identity (rustls).
#[cfg(feature = "tls")]
pub mod peer_verify;

/// Reading config files with every problem reported at once.
#[cfg(feature = "config-file")]
pub mod config_file;
