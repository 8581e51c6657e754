//! Live traffic: traces at a steady rate, exported the way per-service
//! SDKs do it — each instance buffers its own spans and flushes them on
//! its own schedule, so the two halves of a call arrive in different
//! requests and often out of order.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::export::{ExportError, Exporter, OtlpProtocol};
use crate::generator::{TraceGenerator, request_for};
use crate::topology::Topology;

const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub traces_per_second: f64,
    pub seed: u64,
    /// How often each instance flushes its spans (jittered by ±50 %).
    pub flush_interval: Duration,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    pub traces: u64,
    pub spans_sent: u64,
    pub requests_sent: u64,
    pub requests_failed: u64,
    pub spans_lost: u64,
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs `topology` at the configured rate until `shutdown` resolves.
/// Failed exports are counted and logged, never retried: like an SDK, the
/// simulator drops telemetry rather than falling behind.
pub async fn run(
    topology: Topology,
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<SimulatorStats, ExportError> {
    let mut exporter = Exporter::new(&config.endpoint, config.protocol)?;
    let mut generator = TraceGenerator::new(topology, config.seed);
    let mut jitter = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed);
    let instances = generator.instances().to_vec();
    let mut buffers: Vec<Vec<_>> = vec![Vec::new(); instances.len()];
    let start = Instant::now();
    let mut next_flush: Vec<Instant> = (0..instances.len())
        .map(|_| start + config.flush_interval.mul_f64(jitter.random_range(0.0..1.0)))
        .collect();
    let mut stats = SimulatorStats::default();
    let mut due = 0.0;
    let mut last = start;
    let mut ticker = tokio::time::interval(TICK);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        due += config.traces_per_second * (now - last).as_secs_f64();
        last = now;
        while due >= 1.0 {
            due -= 1.0;
            stats.traces += 1;
            for generated in generator.trace(unix_nanos()) {
                buffers[generated.instance].push(generated.span);
            }
        }
        for (index, instance) in instances.iter().enumerate() {
            if now < next_flush[index] || buffers[index].is_empty() {
                continue;
            }
            next_flush[index] = now + config.flush_interval.mul_f64(jitter.random_range(0.5..1.5));
            let spans = std::mem::take(&mut buffers[index]);
            let count = spans.len() as u64;
            match exporter.export(request_for(instance, spans)).await {
                Ok(()) => {
                    stats.requests_sent += 1;
                    stats.spans_sent += count;
                }
                Err(error) => {
                    stats.requests_failed += 1;
                    stats.spans_lost += count;
                    tracing::warn!(%error, instance = %instance.service, spans = count, "simulator export failed");
                }
            }
        }
    }
    Ok(stats)
}
