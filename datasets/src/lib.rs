//! Datasets: seeded simulations of real service topologies, as OTLP.
//!
//! In: a topology file ([`topology`]) and a seed. Out: OTLP traces — as
//! values from the deterministic [`generator`], or live over OTLP/gRPC or
//! OTLP/HTTP to any endpoint from the [`simulator`]. The same seed always
//! gives the same traces.

pub mod export;
pub mod generator;
pub mod simulator;
pub mod topology;

pub use export::{Exporter, OtlpProtocol};
pub use generator::TraceGenerator;
pub use simulator::{SimulatorConfig, SimulatorStats};
pub use topology::Topology;
