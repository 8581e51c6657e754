//! Datasets: seeded simulations of real service topologies, as OTLP.
//!
//! In: a topology — a bundled data file ([`topology::library`]: Online
//! Boutique, Sock Shop, Train Ticket, DeathStarBench social network and
//! hotel reservation, a two-region bank) or a synthetic one
//! ([`topology::synthetic`]) — a seed, and faults to inject. Out: spans
//! and metrics from the discrete-event [`sim`]ulation with the ground
//! truth of each fault; whole traces on demand from the [`generator`]; or
//! live OTLP to any endpoint from the [`simulator`]. The same inputs always
//! give the same output.

pub mod dataset;
pub mod export;
pub mod generator;
pub mod sim;
pub mod simulator;
pub mod suite;
pub mod topology;

pub use export::{Exporter, OtlpProtocol};
pub use generator::TraceGenerator;
pub use simulator::{SimulatorConfig, SimulatorStats};
pub use topology::Topology;
