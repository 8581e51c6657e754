use prost::Message;

use super::*;
use crate::topology::{Topology, library};

fn run(topology: &Topology, options: SimOptions, seconds: f64) -> (Simulation, Output) {
    let mut simulation = Simulation::new(topology, options);
    let mut out = Output::default();
    simulation.run_until(seconds, &mut out);
    (simulation, out)
}

fn with_faults(seed: u64, faults: Vec<Fault>) -> SimOptions {
    SimOptions {
        seed,
        faults,
        ..SimOptions::default()
    }
}

fn fault(kind: FaultKind, service: &str, start_s: f64, duration_s: f64) -> Fault {
    Fault {
        kind,
        service: service.to_owned(),
        instance: 0,
        region: None,
        start_s,
        duration_s,
    }
}

fn servers_of<'a>(
    sim: &'a Simulation,
    out: &'a Output,
    service: &'a str,
) -> impl Iterator<Item = &'a SimSpan> {
    out.spans
        .iter()
        .filter(move |s| s.kind == Kind::Server && sim.service_of(s.instance) == service)
}

fn encoded(sim: &Simulation, out: &Output) -> Vec<u8> {
    let writer = sim.otlp();
    let mut bytes = writer.traces(&out.spans).encode_to_vec();
    bytes.extend(writer.metrics(&out.metrics).encode_to_vec());
    bytes
}

#[test]
fn the_same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let topology = library::bundled("sock-shop").unwrap();
    let options = |seed| {
        with_faults(
            seed,
            vec![fault(FaultKind::CpuHog { factor: 4.0 }, "carts", 5.0, 10.0)],
        )
    };
    let (a_sim, a) = run(&topology, options(7), 30.0);
    let (b_sim, b) = run(&topology, options(7), 30.0);
    let (c_sim, c) = run(&topology, options(8), 30.0);
    assert!(a.spans.len() > 1_000, "{} spans", a.spans.len());
    assert_eq!(encoded(&a_sim, &a), encoded(&b_sim, &b));
    assert_ne!(encoded(&a_sim, &a), encoded(&c_sim, &c));
}

fn one_queue(rate: f64) -> Topology {
    Topology::from_toml(&format!(
        r#"
        name = "q"
        namespace = "q"
        regions = ["r"]
        entry = "client"
        rate = {rate}
        [[services]]
        name = "client"
        [[services]]
        name = "worker"
        concurrency = 1
        cpus = 1
        self_ms = 10.0
        sigma = 0.3
        [[calls]]
        from = "client"
        to = "worker"
        operation = "work"
        timeout_ms = 60000
        "#
    ))
    .unwrap()
}

fn mean_ms<'a>(spans: impl Iterator<Item = &'a SimSpan>) -> f64 {
    let (sum, n) = spans.fold((0.0, 0.0), |(sum, n), s| {
        (sum + (s.end - s.start) as f64 / 1e6, n + 1.0)
    });
    sum / n
}

#[test]
fn latency_grows_with_load_as_requests_queue() {
    let (light_sim, light) = run(&one_queue(10.0), SimOptions::default(), 120.0);
    let (heavy_sim, heavy) = run(&one_queue(80.0), SimOptions::default(), 120.0);
    let light_ms = mean_ms(servers_of(&light_sim, &light, "worker"));
    let heavy_ms = mean_ms(servers_of(&heavy_sim, &heavy, "worker"));
    // M/G/1 at 10 % and 80 % utilisation: waiting grows several-fold.
    assert!(light_ms < 13.0, "light load: {light_ms} ms");
    assert!(
        heavy_ms > 2.0 * light_ms,
        "light {light_ms} ms, heavy {heavy_ms} ms"
    );
}

#[test]
fn an_exhausted_pool_queues_requests_at_its_instance_until_the_fault_ends() {
    let topology = one_queue(10.0);
    let exhausted = FaultKind::PoolExhaustion {
        concurrency: 1,
        hold_ms: 150.0,
    };
    let options = with_faults(3, vec![fault(exhausted, "worker", 60.0, 60.0)]);
    let (sim, out) = run(&topology, options, 180.0);
    let base = SimOptions::default().start_unix_nano;
    let between = |from: f64, to: f64| {
        let (from, to) = (base + (from * 1e9) as u64, base + (to * 1e9) as u64);
        mean_ms(servers_of(&sim, &out, "worker").filter(move |s| s.start >= from && s.start < to))
    };
    let (before, during, after) = (
        between(0.0, 60.0),
        between(60.0, 120.0),
        between(150.0, 180.0),
    );
    // 10 requests/s, each keeping the one slot 150 ms past its 10 ms:
    // more arrive than the slot can serve, so the queue fills.
    assert!(
        during > 5.0 * before,
        "before {before} ms, during {during} ms"
    );
    assert!(after < 2.0 * before, "before {before} ms, after {after} ms");
}

#[test]
fn every_call_has_a_client_span_and_each_service_call_a_server_child() {
    let topology = Topology::online_boutique();
    let (_, out) = run(&topology, SimOptions::default(), 20.0);
    let clients: Vec<&SimSpan> = out
        .spans
        .iter()
        .filter(|s| s.kind == Kind::Client)
        .collect();
    assert!(clients.len() > 1_000);
    let datastore = topology.service_index("redis-cart").unwrap();
    for client in clients {
        let children = out
            .spans
            .iter()
            .filter(|s| s.parent_span_id == client.span_id && s.trace_id == client.trace_id)
            .count();
        if client.failure.is_none() {
            assert_eq!(
                children,
                usize::from(client.peer != datastore),
                "{client:?}"
            );
        }
    }
}

#[test]
fn error_returns_fail_the_target_instance_and_the_ground_truth_names_it_and_its_callers() {
    let topology = Topology::online_boutique();
    let options = with_faults(
        3,
        vec![fault(
            FaultKind::ErrorReturns { share: 0.8 },
            "cart",
            20.0,
            20.0,
        )],
    );
    let (sim, out) = run(&topology, options, 60.0);
    let base = SimOptions::default().start_unix_nano;
    let during = |s: &&SimSpan| s.end > base + 21_000_000_000 && s.end < base + 39_000_000_000;
    let cart: Vec<&SimSpan> = servers_of(&sim, &out, "cart").filter(during).collect();
    let failed = cart
        .iter()
        .filter(|s| s.failure == Some(Failure::Server))
        .count();
    assert!(
        failed as f64 > 0.6 * cart.len() as f64,
        "{failed} of {}",
        cart.len()
    );
    let before = servers_of(&sim, &out, "cart")
        .filter(|s| s.end < base + 19_000_000_000)
        .filter(|s| s.failure.is_some())
        .count();
    assert!(before < 5, "{before} failures before the fault");
    let truth = &sim.ground_truth()[0];
    assert_eq!(
        (truth.fault.as_str(), truth.service.as_str()),
        ("error_returns", "cart")
    );
    assert_eq!(truth.instance.as_deref(), Some("cart-0"));
    assert_eq!(truth.affected[0], "cart");
    for caller in ["frontend", "checkout", "loadgenerator"] {
        assert!(
            truth.affected.iter().any(|a| a == caller),
            "{caller}: {:?}",
            truth.affected
        );
    }
    assert!(!truth.affected.iter().any(|a| a == "payment"));
}

#[test]
fn a_crashed_instance_refuses_until_callers_forget_it_then_the_other_takes_its_traffic() {
    let topology = Topology::online_boutique();
    let options = with_faults(
        5,
        vec![fault(
            FaultKind::InstanceCrash,
            "productcatalog",
            10.0,
            30.0,
        )],
    );
    let (sim, out) = run(&topology, options, 50.0);
    let base = SimOptions::default().start_unix_nano;
    let in_window = |from: u64, to: u64| {
        move |s: &&SimSpan| {
            s.start >= base + from * 1_000_000_000 && s.start < base + to * 1_000_000_000
        }
    };
    let refused = out
        .spans
        .iter()
        .filter(|s| s.failure == Some(Failure::Refused))
        .collect::<Vec<_>>();
    assert!(!refused.is_empty());
    assert!(
        refused.iter().all(in_window(10, 16)),
        "refusals after discovery caught up"
    );
    let served_by = |name: &str, from, to| {
        servers_of(&sim, &out, "productcatalog")
            .filter(in_window(from, to))
            .filter(|s| sim.instance_name(s.instance) == name)
            .count()
    };
    assert_eq!(served_by("productcatalog-0", 16, 40), 0);
    assert!(served_by("productcatalog-1", 16, 40) > 100);
    assert!(
        served_by("productcatalog-0", 42, 50) > 10,
        "back after the restart"
    );
}

#[test]
fn async_calls_reach_the_consumer_in_a_new_trace_linked_to_the_producer() {
    let topology = library::bundled("sock-shop").unwrap();
    let (_, out) = run(&topology, SimOptions::default(), 60.0);
    let producers: Vec<&SimSpan> = out
        .spans
        .iter()
        .filter(|s| s.kind == Kind::Producer)
        .collect();
    let consumers: Vec<&SimSpan> = out
        .spans
        .iter()
        .filter(|s| s.kind == Kind::Consumer)
        .collect();
    assert!(!producers.is_empty());
    assert_eq!(producers.len(), consumers.len());
    for consumer in consumers {
        let (trace, span) = consumer.link.expect("a consumer links its producer");
        let producer = producers
            .iter()
            .find(|p| p.span_id == span)
            .expect("linked producer");
        assert_eq!(producer.trace_id, trace);
        assert_ne!(consumer.trace_id, trace);
        assert!(consumer.start >= producer.start);
    }
}

#[test]
fn in_a_region_outage_entry_traffic_fails_over_to_the_other_region() {
    let topology = library::bundled("bank").unwrap();
    let outage = Fault {
        region: Some("eu-west-1".to_owned()),
        ..fault(FaultKind::RegionOutage, "api-gateway", 10.0, 30.0)
    };
    let (sim, out) = run(&topology, with_faults(9, vec![outage]), 40.0);
    let base = SimOptions::default().start_unix_nano;
    let served_in = |region: &str, from: u64, to: u64| {
        servers_of(&sim, &out, "api-gateway")
            .filter(|s| {
                s.start >= base + from * 1_000_000_000 && s.start < base + to * 1_000_000_000
            })
            .filter(|s| sim.instance_name(s.instance).contains(region))
            .count()
    };
    assert!(served_in("eu-west-1", 0, 10) > 100);
    assert_eq!(served_in("eu-west-1", 10, 40), 0);
    let before = served_in("eu-central-1", 0, 10);
    let after = served_in("eu-central-1", 16, 26);
    assert!(
        after as f64 > 1.6 * before as f64,
        "before {before}, after {after}"
    );
    let truth = &sim.ground_truth()[0];
    assert_eq!(
        (truth.fault.as_str(), truth.region.as_str()),
        ("region_outage", "eu-west-1")
    );
    assert!(truth.affected.iter().any(|a| a == "ledger"));
}

#[test]
fn a_missing_call_disappears_for_the_fault_window_only() {
    let topology = Topology::online_boutique();
    let missing = fault(
        FaultKind::MissingCall {
            to: "ad".to_owned(),
        },
        "frontend",
        10.0,
        10.0,
    );
    let (sim, out) = run(&topology, with_faults(4, vec![missing]), 30.0);
    let base = SimOptions::default().start_unix_nano;
    let ads = |from: u64, to: u64| {
        servers_of(&sim, &out, "ad")
            .filter(|s| {
                s.start >= base + from * 1_000_000_000 && s.start < base + to * 1_000_000_000
            })
            .count()
    };
    assert!(ads(0, 10) > 20);
    assert_eq!(ads(11, 19), 0);
    assert!(ads(21, 30) > 20);
    assert_eq!(sim.ground_truth()[0].affected[..2], ["frontend", "ad"]);
}

#[test]
fn observation_options_sample_skew_and_drop_context() {
    let topology = Topology::online_boutique();
    let options = SimOptions {
        sampling_ratio: 0.5,
        uninstrumented: vec!["recommendation".to_owned()],
        broken_propagation: vec![["checkout".to_owned(), "email".to_owned()]],
        clock_skew_ms: vec![("cart".to_owned(), 250.0)],
        ..SimOptions::default()
    };
    let (sim, out) = run(&topology, options, 30.0);
    let (full_sim, full) = run(&topology, SimOptions::default(), 30.0);
    let roots = |o: &Output| {
        o.spans
            .iter()
            .filter(|s| s.parent_span_id == 0 && s.kind == Kind::Client)
            .count()
    };
    let ratio = roots(&out) as f64 / roots(&full) as f64;
    assert!((0.4..0.6).contains(&ratio), "sampled {ratio}");
    assert_eq!(servers_of(&sim, &out, "recommendation").count(), 0);
    assert!(servers_of(&full_sim, &full, "recommendation").count() > 0);
    // What recommendation calls starts traces of its own.
    let orphans = servers_of(&sim, &out, "productcatalog")
        .filter(|s| s.parent_span_id == 0)
        .count();
    assert!(orphans > 0);
    let email = servers_of(&sim, &out, "email").collect::<Vec<_>>();
    assert!(!email.is_empty() && email.iter().all(|s| s.parent_span_id == 0));
    // cart's spans are 250 ms ahead of its callers' view of them.
    let cart = servers_of(&sim, &out, "cart").next().unwrap();
    let client = out
        .spans
        .iter()
        .find(|s| s.span_id == cart.parent_span_id)
        .unwrap();
    assert!(cart.start > client.start + 200_000_000);
}

#[test]
fn metrics_show_the_cpu_hog_and_the_memory_leak() {
    let topology = Topology::online_boutique();
    let options = with_faults(
        2,
        vec![
            fault(FaultKind::CpuHog { factor: 5.0 }, "currency", 20.0, 30.0),
            fault(
                FaultKind::MemoryLeak {
                    mb_per_minute: 120.0,
                    max_slowdown: 3.0,
                },
                "cart",
                20.0,
                30.0,
            ),
        ],
    );
    let (sim, out) = run(&topology, options, 60.0);
    let point = |instance: &str, end_s: u64| {
        out.metrics
            .iter()
            .find(|p| {
                sim.instance_name(p.instance) == instance
                    && p.end == SimOptions::default().start_unix_nano + end_s * 1_000_000_000
            })
            .unwrap()
    };
    assert!(point("currency-0", 10).cpu_utilization < 0.2);
    assert!(point("currency-0", 40).cpu_utilization > 0.75);
    assert!(point("currency-1", 40).cpu_utilization < 0.2);
    let grown = point("cart-0", 40).memory_bytes as f64 - point("cart-0", 10).memory_bytes as f64;
    assert!(grown > 30.0 * 1024.0 * 1024.0, "{grown}");
    // The leak ends with a restart.
    assert!(point("cart-0", 60).memory_bytes < point("cart-0", 40).memory_bytes);
    assert!(point("frontend-0", 10).requests > 50);
}

#[test]
fn a_two_thousand_service_topology_runs_with_bounded_traces() {
    use crate::topology::synthetic::{Shape, generate};
    for shape in [Shape::Layered, Shape::ScaleFree] {
        let topology = generate(shape, 2_000, 1);
        let (_, out) = run(&topology, SimOptions::default(), 10.0);
        let mut per_trace = std::collections::BTreeMap::new();
        for span in &out.spans {
            *per_trace.entry(span.trace_id).or_insert(0usize) += 1;
        }
        assert!(
            per_trace.len() > 150,
            "{shape:?}: {} traces",
            per_trace.len()
        );
        let largest = per_trace.values().max().unwrap();
        assert!(*largest < 2_000, "{shape:?}: a trace of {largest} spans");
    }
}
