//! The twin stage: span facts in, a live service graph out.
//!
//! In: [`meshtwin_model::span::SpanBatch`]es from ingest. Inside: pairing
//! of call halves across services ([`pairing`]), a petgraph service graph
//! with sliding windows ([`graph`], [`window`]) on an event-time clock
//! ([`clock`]), and streaming anomaly detectors for series ([`detect`]).
//! Out: snapshots, versioned deltas and Prometheus series, published by the
//! [`engine`]. Everything but the engine is synchronous and deterministic.

mod anomalies;
mod clock;
pub mod config;
pub mod detect;
pub mod engine;
mod graph;
mod incidents;
mod pairing;
pub mod rca;
mod snapshot;
mod twin;
mod window;

pub use config::TwinConfig;
pub use engine::{Engine, TwinChannels};
pub use twin::Twin;
