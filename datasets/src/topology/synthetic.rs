//! Seeded synthetic topologies from 10 to 2,000 services: layered (tiers
//! calling the tiers below) or scale-free (preferential attachment, so a
//! few hubs are called by many), with shared databases, caches and
//! queues, and a few call cycles.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{CallMode, CallSpec, Protocol, ServiceKind, ServiceSpec, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Layered,
    ScaleFree,
}

/// Smallest and largest synthetic topology, in services.
pub const SIZES: std::ops::RangeInclusive<usize> = 10..=2_000;
/// Expected calls a service makes per request, whatever its out-degree,
/// so that traces stay bounded on large graphs.
const FAN_OUT: f64 = 1.6;

/// The synthetic topology named `synthetic-SHAPE-N` (`layered`,
/// `scale-free`; seed 1), if `name` is one.
pub fn by_name(name: &str) -> Option<Topology> {
    let rest = name.strip_prefix("synthetic-")?;
    let (shape, services) = rest.rsplit_once('-')?;
    let shape = match shape {
        "layered" => Shape::Layered,
        "scale-free" => Shape::ScaleFree,
        _ => return None,
    };
    let services: usize = services.parse().ok()?;
    SIZES
        .contains(&services)
        .then(|| generate(shape, services, 1))
}

/// A topology of `services` application services (plus datastores and
/// brokers) of the given shape; the same arguments give the same topology.
pub fn generate(shape: Shape, services: usize, seed: u64) -> Topology {
    let n = services.clamp(*SIZES.start(), *SIZES.end());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut edges: Vec<(usize, usize)> = match shape {
        Shape::Layered => layered(n, &mut rng),
        Shape::ScaleFree => scale_free(n, &mut rng),
    };
    // A few calls back up the graph: cycles, made rarely.
    let cycles = (n / 50).max(1);
    let mut back = Vec::new();
    for _ in 0..cycles {
        let &(from, to) = &edges[rng.random_range(0..edges.len())];
        if from != 0 {
            back.push((to, from));
        }
    }
    edges.sort_unstable();
    edges.dedup();
    let name = |i: usize| format!("svc-{i:04}");
    let mut specs: Vec<ServiceSpec> = vec![service("client", 0.0, Protocol::Http, 1)];
    for i in 0..n {
        let protocol = if i == 0 || rng.random_bool(0.3) {
            Protocol::Http
        } else {
            Protocol::Grpc
        };
        let self_ms = 0.5 + rng.random::<f64>() * 6.0;
        let instances = 1 + u32::from(rng.random_bool(0.4)) + u32::from(i == 0);
        specs.push(service(&name(i), self_ms, protocol, instances));
    }
    let mut calls = vec![call("client", &name(0), &operation(&name(0)), 1.0)];
    let mut out_degree = vec![0usize; n];
    for &(from, _) in &edges {
        out_degree[from] += 1;
    }
    for &(from, to) in &edges {
        let probability = (FAN_OUT / out_degree[from] as f64).min(1.0);
        calls.push(call(
            &name(from),
            &name(to),
            &operation(&name(to)),
            probability,
        ));
    }
    for (from, to) in back {
        calls.push(call(&name(from), &name(to), &operation(&name(to)), 0.02));
    }
    add_backends(n, &mut rng, &mut specs, &mut calls);
    Topology {
        name: format!("{}-{n}-{seed}", shape_name(shape)),
        namespace: "synthetic".to_owned(),
        regions: vec!["region-a".to_owned()],
        entry: "client".to_owned(),
        rate: 20.0,
        cross_region_ms: 8.0,
        services: specs,
        calls,
    }
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Layered => "layered",
        Shape::ScaleFree => "scale-free",
    }
}

/// Tiers of growing width; each service calls one to three services of
/// the tiers below, mostly the next one.
fn layered(n: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let tiers = ((n as f64).log2().ceil() as usize).clamp(3, 8);
    let mut tier_of = vec![0usize; n];
    for (i, tier) in tier_of.iter_mut().enumerate().skip(1) {
        *tier = 1 + (i * (tiers - 1)) / n;
    }
    let mut edges = Vec::new();
    for (from, &tier) in tier_of.iter().enumerate() {
        let below: Vec<usize> = (0..n).filter(|&j| tier_of[j] == tier + 1).collect();
        let deeper: Vec<usize> = (0..n).filter(|&j| tier_of[j] > tier + 1).collect();
        if below.is_empty() {
            continue;
        }
        for _ in 0..rng.random_range(1..=3) {
            let pool = if !deeper.is_empty() && rng.random_bool(0.2) {
                &deeper
            } else {
                &below
            };
            edges.push((from, pool[rng.random_range(0..pool.len())]));
        }
    }
    // Everyone is reachable: a service nobody calls gets a caller above.
    for to in 1..n {
        if !edges.iter().any(|&(_, t)| t == to) {
            let above: Vec<usize> = (0..n).filter(|&j| tier_of[j] + 1 == tier_of[to]).collect();
            edges.push((above[rng.random_range(0..above.len())], to));
        }
    }
    edges
}

/// Each new service is called by an existing one chosen by how many it
/// calls already (aggregators grow), and calls up to two existing ones
/// chosen by how many call them already (shared services grow).
fn scale_free(n: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    let mut out_weight = vec![1usize; n];
    let mut in_weight = vec![1usize; n];
    for new in 1..n {
        let caller = preferential(&out_weight[..new], rng);
        edges.push((caller, new));
        out_weight[caller] += 1;
        in_weight[new] += 1;
        if new >= 3 {
            for _ in 0..rng.random_range(0..=2) {
                let callee = preferential(&in_weight[1..new], rng) + 1;
                if callee != caller && callee != new && !edges.contains(&(new, callee)) {
                    // New services call older shared ones: no cycle.
                    edges.push((new, callee));
                    in_weight[callee] += 1;
                    out_weight[new] += 1;
                }
            }
        }
    }
    edges
}

fn preferential(weights: &[usize], rng: &mut ChaCha8Rng) -> usize {
    let total: usize = weights.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if pick < w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// Shared databases, caches and queues: a service uses a database with
/// probability 0.6 (a few are shared by many), a cache 0.3, and one in ten
/// publishes to a queue that another service consumes.
fn add_backends(
    n: usize,
    rng: &mut ChaCha8Rng,
    specs: &mut Vec<ServiceSpec>,
    calls: &mut Vec<CallSpec>,
) {
    let databases = (n / 10).max(1);
    let caches = (n / 15).max(1);
    let queues = (n / 30).max(1);
    for i in 0..databases {
        specs.push(backend(
            &format!("db-{i:03}"),
            ServiceKind::Database,
            "postgresql",
            1.5,
        ));
    }
    for i in 0..caches {
        specs.push(backend(
            &format!("cache-{i:03}"),
            ServiceKind::Cache,
            "redis",
            0.3,
        ));
    }
    for i in 0..queues {
        specs.push(backend(
            &format!("queue-{i:03}"),
            ServiceKind::Queue,
            "kafka",
            0.5,
        ));
    }
    for i in 0..n {
        let from = format!("svc-{i:04}");
        if rng.random_bool(0.6) {
            // Squaring skews the choice toward the first databases.
            let db = ((rng.random::<f64>().powi(2)) * databases as f64) as usize;
            calls.push(call(&from, &format!("db-{db:03}"), "SELECT", 1.0));
        }
        if rng.random_bool(0.3) {
            let cache = rng.random_range(0..caches);
            calls.push(call(&from, &format!("cache-{cache:03}"), "GET", 1.0));
        }
        if n > 1 && rng.random_bool(0.1) {
            let consumer = rng.random_range(1..n);
            let queue = rng.random_range(0..queues);
            let mut publish = call(
                &from,
                &format!("svc-{consumer:04}"),
                &format!("topic-{i:04}"),
                1.0,
            );
            publish.mode = CallMode::Async;
            publish.via = Some(format!("queue-{queue:03}"));
            calls.push(publish);
        }
    }
}

fn operation(service: &str) -> String {
    format!("{service}/handle")
}

fn service(name: &str, self_ms: f64, protocol: Protocol, instances: u32) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        kind: ServiceKind::Service,
        system: None,
        version: "v1".to_owned(),
        instances,
        regions: None,
        protocol,
        concurrency: 64,
        cpus: 2,
        memory_mb: 256.0,
        self_ms,
        sigma: 0.6,
        error_rate: 0.001,
        instrumented: true,
    }
}

fn backend(name: &str, kind: ServiceKind, system: &str, self_ms: f64) -> ServiceSpec {
    ServiceSpec {
        kind,
        system: Some(system.to_owned()),
        ..service(name, self_ms, Protocol::Grpc, 1)
    }
}

fn call(from: &str, to: &str, operation: &str, probability: f64) -> CallSpec {
    CallSpec {
        from: from.to_owned(),
        to: to.to_owned(),
        operation: operation.to_owned(),
        within: None,
        probability,
        count: 1,
        count_max: None,
        weight: 1.0,
        mode: CallMode::Sequential,
        via: None,
        timeout_ms: 1_000.0,
        retries: 0,
        propagates: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_topologies_are_found_by_name() {
        let named = by_name("synthetic-layered-200").expect("a synthetic name");
        assert_eq!(named, generate(Shape::Layered, 200, 1));
        assert_eq!(
            by_name("synthetic-scale-free-50"),
            Some(generate(Shape::ScaleFree, 50, 1))
        );
        for other in [
            "online-boutique",
            "synthetic-ring-20",
            "synthetic-layered-5",
            "synthetic-layered-x",
        ] {
            assert_eq!(by_name(other), None, "{other}");
        }
    }

    #[test]
    fn synthetic_topologies_are_valid_reproducible_and_sized() {
        for shape in [Shape::Layered, Shape::ScaleFree] {
            for size in [10, 200, 2_000] {
                let topology = generate(shape, size, 11);
                topology
                    .validate()
                    .unwrap_or_else(|e| panic!("{shape:?} {size}: {e}"));
                let services = topology
                    .services
                    .iter()
                    .filter(|s| !s.kind.is_backend())
                    .count();
                assert_eq!(services, size + 1, "services plus the client");
                assert_eq!(topology, generate(shape, size, 11));
                assert_ne!(topology, generate(shape, size, 12));
            }
        }
    }

    #[test]
    fn scale_free_topologies_have_hubs_and_layered_ones_do_not() {
        let max_in = |t: &Topology| {
            t.services
                .iter()
                .filter(|s| !s.kind.is_backend())
                .map(|s| t.calls.iter().filter(|c| c.to == s.name).count())
                .max()
                .unwrap()
        };
        let hubs = max_in(&generate(Shape::ScaleFree, 1_000, 3));
        let flat = max_in(&generate(Shape::Layered, 1_000, 3));
        assert!(
            hubs >= 2 * flat,
            "scale-free max in-degree {hubs}, layered {flat}"
        );
    }

    #[test]
    fn every_service_is_reachable_from_the_entry() {
        for shape in [Shape::Layered, Shape::ScaleFree] {
            let t = generate(shape, 300, 5);
            let mut seen = vec!["client".to_owned()];
            let mut i = 0;
            while i < seen.len() {
                let at = seen[i].clone();
                for c in t.calls_from(&at) {
                    for next in [&c.to, c.via.as_ref().unwrap_or(&c.to)] {
                        if !seen.contains(next) {
                            seen.push(next.clone());
                        }
                    }
                }
                i += 1;
            }
            let unreached: Vec<&str> = t
                .services
                .iter()
                .map(|s| s.name.as_str())
                .filter(|s| !seen.iter().any(|x| x == s))
                .collect();
            assert!(
                unreached.iter().all(|s| !s.starts_with("svc-")),
                "{shape:?}: {unreached:?}"
            );
        }
    }
}
