//! Black-box test support: real `meshtwin` processes on 127.0.0.1.
//!
//! [`sandbox`] starts the binary on ephemeral ports with its own data
//! directory and stops it by PID; [`mesh`] does the same for
//! `meshtwin-proxy` and the `mesh-app` test service; [`client`] speaks HTTP to it; [`otlp`]
//! builds export requests; [`tools`] finds the Python virtualenv, Node
//! modules and Chromium that `scripts/test` installs; [`machine`] reads
//! `/proc` for benchmarks, and [`stats`] summarises their runs.

pub mod bench_record;
pub mod client;
pub mod machine;
pub mod mesh;
pub mod otlp;
pub mod sandbox;
pub mod stats;
pub mod tools;
