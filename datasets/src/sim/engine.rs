//! The event loop: entry arrivals, calls crossing the network, requests
//! queueing for slots and CPUs, replies, timeouts, retries, faults and
//! metric ticks, in time order (ties in the order they were scheduled).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use slotmap::SlotMap;

use super::SimOptions;
use super::faults::GroundTruth;
use super::instance::InstanceState;
use super::otlp::OtlpWriter;
use super::plan::{CallId, InstanceId, OperationId, Plan, log_normal};
use super::record::{Failure, Kind, Output, SimSpan};
use crate::topology::Topology;

mod calls;
mod faults;
mod jobs;
mod trace;

use trace::TraceCtx;

slotmap::new_key_type! {
    struct JobKey;
    struct AttemptKey;
}

/// Calls nest at most this deep, so a cyclic topology still ends.
const MAX_DEPTH: u32 = 10;
/// How likely a failed call fails its caller too.
const ERROR_PROPAGATION: f64 = 0.9;
/// A lost packet costs a retransmission timeout; one in
/// `1 / LOST_FOR_GOOD` of them never gets through.
const RETRANSMIT_NS: u64 = 200_000_000;
const LOST_FOR_GOOD: f64 = 0.2;
const RETRY_BACKOFF_NS: u64 = 25_000_000;

#[derive(Debug, Clone, Copy)]
enum Event {
    EntryArrival,
    Arrive(AttemptKey),
    Reply(AttemptKey, Option<Failure>),
    CpuDone(JobKey),
    Timeout(AttemptKey),
    Deliver {
        call: CallId,
        region: usize,
        link: Option<(u128, u64)>,
        depth: u32,
    },
    FaultEdge {
        fault: usize,
        starting: bool,
    },
    MetricsTick,
    /// A slot held after its request answered is given back.
    SlotFreed(InstanceId),
}

enum Step {
    Work(u64),
    Calls(Vec<CallId>),
}

struct Job {
    instance: InstanceId,
    operation: OperationId,
    kind: Kind,
    attempt: Option<AttemptKey>,
    trace: TraceCtx,
    link: Option<(u128, u64)>,
    span_id: u64,
    arrived: u64,
    depth: u32,
    steps: VecDeque<Step>,
    outstanding: u32,
    dependency_failed: bool,
    holds_slot: bool,
    /// For a queue's publish: the async call to deliver once accepted.
    deliver: Option<CallId>,
}

struct Attempt {
    caller: Option<JobKey>,
    caller_instance: InstanceId,
    call: CallId,
    callee: InstanceId,
    span_id: u64,
    trace: TraceCtx,
    start: u64,
    number: u32,
    depth: u32,
}

pub struct Simulation {
    plan: Arc<Plan>,
    options: SimOptions,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, usize)>>,
    event_slots: Vec<Option<Event>>,
    free_event_slots: Vec<usize>,
    instances: Vec<InstanceState<JobKey>>,
    jobs: SlotMap<JobKey, Job>,
    attempts: SlotMap<AttemptKey, Attempt>,
    network: LogNormal<f64>,
    delivery: LogNormal<f64>,
    faults: faults::Schedule,
    skew_ns: Vec<i64>,
    broken: Vec<bool>,
    uninstrumented: Vec<bool>,
    /// Async deliveries scheduled and not yet made.
    deliveries: usize,
    out: Output,
}

impl Simulation {
    /// A simulation of `topology` under steady load from its entry.
    pub fn new(topology: &Topology, options: SimOptions) -> Self {
        let mut simulation = Self::idle(topology, options);
        simulation.schedule(0, Event::EntryArrival);
        let tick = simulation.metrics_interval();
        simulation.schedule(tick, Event::MetricsTick);
        for (fault, (start, end)) in simulation.faults.windows().into_iter().enumerate() {
            simulation.schedule(
                start,
                Event::FaultEdge {
                    fault,
                    starting: true,
                },
            );
            simulation.schedule(
                end,
                Event::FaultEdge {
                    fault,
                    starting: false,
                },
            );
        }
        simulation
    }

    /// A simulation that makes one request at a time, on demand
    /// ([`Simulation::one_trace`]): no queueing, no metrics, no faults.
    pub fn one_at_a_time(topology: &Topology, seed: u64) -> Self {
        let options = SimOptions {
            seed,
            ..SimOptions::default()
        };
        Self::idle(topology, options)
    }

    fn idle(topology: &Topology, options: SimOptions) -> Self {
        let plan = Arc::new(Plan::new(topology));
        let faults = faults::Schedule::new(&plan, topology, &options);
        let service_named = |name: &str| topology.service_index(name);
        let mut skew_ns = vec![0; plan.instances.len()];
        for (service, ms) in &options.clock_skew_ms {
            for (id, instance) in plan.instances.iter().enumerate() {
                if Some(instance.service) == service_named(service) {
                    skew_ns[id] = (ms * 1e6) as i64;
                }
            }
        }
        let broken = plan
            .calls
            .iter()
            .map(|c| {
                !c.propagates
                    || options.broken_propagation.iter().any(|[from, to]| {
                        service_named(from) == Some(c.from) && service_named(to) == Some(c.to)
                    })
            })
            .collect();
        let uninstrumented = plan
            .services
            .iter()
            .map(|s| !s.instrumented || options.uninstrumented.iter().any(|u| **u == *s.name))
            .collect();
        let instances = (0..plan.instances.len())
            .map(|_| InstanceState::new())
            .collect();
        Self {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            plan,
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            event_slots: Vec::new(),
            free_event_slots: Vec::new(),
            instances,
            jobs: SlotMap::with_key(),
            attempts: SlotMap::with_key(),
            network: log_normal(0.25, 0.4),
            delivery: log_normal(2.0, 0.8),
            faults,
            skew_ns,
            broken,
            uninstrumented,
            deliveries: 0,
            out: Output::default(),
            options,
        }
    }

    /// Writes this simulation's records as OTLP.
    pub fn otlp(&self) -> OtlpWriter {
        OtlpWriter::new(Arc::clone(&self.plan))
    }

    /// One entry request run to its end (asynchronous consumers
    /// included) with nothing else in flight; its spans, in the order they
    /// ended. For [`Simulation::one_at_a_time`] simulations.
    pub fn one_trace(&mut self) -> Vec<SimSpan> {
        self.entry_request();
        while !(self.jobs.is_empty() && self.attempts.is_empty() && self.deliveries == 0) {
            let Some(Reverse((at, _, slot))) = self.events.pop() else {
                break;
            };
            let event = self.event_slots[slot].take().expect("scheduled event");
            self.free_event_slots.push(slot);
            self.now = at;
            self.handle(event);
        }
        // What is left are timeouts of calls that were answered.
        self.events.clear();
        self.event_slots.clear();
        self.free_event_slots.clear();
        std::mem::take(&mut self.out.spans)
    }

    /// The ground truth of every scheduled fault.
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.faults
            .ground_truth(&self.plan, self.options.start_unix_nano)
    }

    /// Runs every event up to `seconds` after the start (not `seconds`
    /// more) and appends what
    /// happened to `out`.
    pub fn run_until(&mut self, seconds: f64, out: &mut Output) {
        let until = self.now.max((seconds * 1e9) as u64);
        while let Some(Reverse((at, _, slot))) = self.events.peek().copied() {
            if at > until {
                break;
            }
            self.events.pop();
            let event = self.event_slots[slot].take().expect("scheduled event");
            self.free_event_slots.push(slot);
            self.now = at;
            self.handle(event);
        }
        self.now = until;
        out.spans.append(&mut self.out.spans);
        out.metrics.append(&mut self.out.metrics);
    }

    /// Name of an instance, as spans and metrics report it.
    pub fn instance_name(&self, instance: InstanceId) -> &str {
        &self.plan.instances[instance].name
    }

    /// Name of the service an instance runs.
    pub fn service_of(&self, instance: InstanceId) -> &str {
        &self.plan.service_of(instance).name
    }

    fn metrics_interval(&self) -> u64 {
        (self.options.metrics_interval_s.max(0.1) * 1e9) as u64
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let slot = match self.free_event_slots.pop() {
            Some(slot) => {
                self.event_slots[slot] = Some(event);
                slot
            }
            None => {
                self.event_slots.push(Some(event));
                self.event_slots.len() - 1
            }
        };
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, slot)));
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::EntryArrival => self.entry_arrival(),
            Event::Arrive(attempt) => self.arrive(attempt),
            Event::Reply(attempt, failure) => self.reply(attempt, failure),
            Event::CpuDone(job) => self.cpu_done(job),
            Event::Timeout(attempt) => self.timeout(attempt),
            Event::Deliver {
                call,
                region,
                link,
                depth,
            } => self.deliver(call, region, link, depth),
            Event::FaultEdge { fault, starting } => self.fault_edge(fault, starting),
            Event::MetricsTick => self.metrics_tick(),
            Event::SlotFreed(instance) => self.free_slot(instance),
        }
    }

    fn entry_arrival(&mut self) {
        let rate = self.options.rate.unwrap_or(self.plan.rate) * self.faults.load_factor();
        let gap = Exp::new(rate).map_or(1e9, |exp| exp.sample(&mut self.rng) * 1e9);
        self.schedule(self.now + gap as u64, Event::EntryArrival);
        self.entry_request();
    }

    /// A request from a random entry instance, chosen by the request mix.
    fn entry_request(&mut self) {
        let count = self.plan.entry_instances.len();
        let instance = self.plan.entry_instances[self.rng.random_range(0..count)];
        let total = self.plan.entry_weight;
        let mut pick = self.rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        let mut call = self.plan.entry_mix[0].0;
        for &(id, weight) in &self.plan.entry_mix {
            call = id;
            if pick < weight {
                break;
            }
            pick -= weight;
        }
        let trace = self.new_trace();
        self.launch(None, instance, call, 0, self.now, trace, 0);
    }

    fn metrics_tick(&mut self) {
        let interval = self.metrics_interval();
        self.schedule(self.now + interval, Event::MetricsTick);
        let window = (
            self.options.start_unix_nano + self.now - interval,
            self.options.start_unix_nano + self.now,
        );
        for instance in 0..self.instances.len() {
            let service = self.plan.service_of(instance);
            if self.plan.instances[instance].service == self.plan.entry {
                continue;
            }
            let (cpus, memory) = (service.cpus, service.memory_mb);
            let point = self.instances[instance].take_point(instance, window, cpus, memory);
            self.out.metrics.push(point);
        }
    }

    fn emit(&mut self, mut span: SimSpan) {
        let skew = self.skew_ns[span.instance];
        let base = self.options.start_unix_nano;
        span.start = (base + span.start).saturating_add_signed(skew);
        span.end = (base + span.end).saturating_add_signed(skew);
        self.out.spans.push(span);
    }

    fn new_trace(&mut self) -> TraceCtx {
        let mut trace_id = 0;
        while trace_id == 0 {
            trace_id = self.rng.random::<u128>();
        }
        let sampled = self
            .rng
            .random_bool(self.options.sampling_ratio.clamp(0.0, 1.0));
        TraceCtx {
            trace_id,
            parent: 0,
            sampled,
        }
    }

    fn id64(&mut self) -> u64 {
        let mut id = 0;
        while id == 0 {
            id = self.rng.random::<u64>();
        }
        id
    }
}
