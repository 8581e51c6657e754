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
use super::instance::{InstanceState, MAX_WAITING};
use super::otlp::OtlpWriter;
use super::plan::{CallId, InstanceId, OperationId, Plan, ServiceId, log_normal};
use super::record::{Failure, Kind, Output, SimSpan};
use crate::topology::{CallMode, Topology};

mod faults;
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

    /// Unix nanoseconds of the simulation's current instant.
    pub fn now_unix_nano(&self) -> u64 {
        self.options.start_unix_nano + self.now
    }

    /// Runs every event up to `seconds` after the start and appends what
    /// happened to `out`.
    pub fn run_for(&mut self, seconds: f64, out: &mut Output) {
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
        let entry = &self.plan.services[self.plan.entry];
        let all: Vec<InstanceId> = entry.instances.iter().flatten().copied().collect();
        let instance = all[self.rng.random_range(0..all.len())];
        let total: f64 = self.plan.entry_mix.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        let mut call = self.plan.entry_mix[0].0;
        for &(id, weight) in &self.plan.entry_mix {
            call = id;
            if pick < weight {
                break;
            }
            pick -= weight;
        }
        let trace = self.new_trace(0);
        self.launch(None, instance, call, 0, self.now, trace, 0);
    }

    /// Sends attempt `number` of `call` from `caller_instance` at `at`.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        caller: Option<JobKey>,
        caller_instance: InstanceId,
        call: CallId,
        number: u32,
        at: u64,
        trace: TraceCtx,
        depth: u32,
    ) {
        let planned = &self.plan.calls[call];
        let target = planned.via.unwrap_or(planned.to);
        let timeout = planned.timeout_ns;
        let callee = self.pick_instance(target, self.plan.instances[caller_instance].region);
        let span_id = self.id64();
        let attempt = self.attempts.insert(Attempt {
            caller,
            caller_instance,
            call,
            callee,
            span_id,
            trace,
            start: at,
            number,
            depth,
        });
        let loss = self.instances[callee].effects.loss;
        let mut delay = self.one_way(caller_instance, callee);
        let mut lost = false;
        if loss > 0.0 && self.rng.random_bool(loss.min(1.0)) {
            delay += RETRANSMIT_NS;
            lost = self.rng.random_bool(LOST_FOR_GOOD);
        }
        if !lost {
            self.schedule(at + delay, Event::Arrive(attempt));
        }
        self.schedule(at + timeout, Event::Timeout(attempt));
    }

    fn pick_instance(&mut self, service: ServiceId, region: usize) -> InstanceId {
        let now = self.now;
        let per_region = &self.plan.services[service].instances;
        let usable = |ids: &[InstanceId]| -> Vec<InstanceId> {
            ids.iter()
                .copied()
                .filter(|&i| self.instances[i].discoverable(now))
                .collect()
        };
        let mut candidates = per_region
            .get(region)
            .map(|ids| usable(ids))
            .unwrap_or_default();
        if candidates.is_empty() {
            candidates = usable(&per_region.concat());
        }
        if candidates.is_empty() {
            candidates = per_region.concat();
        }
        candidates[self.rng.random_range(0..candidates.len())]
    }

    fn one_way(&mut self, from: InstanceId, to: InstanceId) -> u64 {
        let mut ns = self.network.sample(&mut self.rng);
        if self.plan.instances[from].region != self.plan.instances[to].region {
            ns += self.plan.cross_region_ns * (0.9 + 0.2 * self.rng.random::<f64>());
        }
        ns as u64
            + self.instances[from].effects.extra_delay_ns
            + self.instances[to].effects.extra_delay_ns
    }

    fn arrive(&mut self, key: AttemptKey) {
        // A request that arrives after its caller gave up is dropped, as
        // gRPC does with an expired deadline.
        let Some(attempt) = self.attempts.get(key) else {
            return;
        };
        let (callee, caller_instance, call_id, attempt_trace, attempt_span, attempt_depth) = (
            attempt.callee,
            attempt.caller_instance,
            attempt.call,
            attempt.trace,
            attempt.span_id,
            attempt.depth,
        );
        if self.instances[callee].effects.down {
            let back = self.one_way(callee, caller_instance);
            self.schedule(self.now + back, Event::Reply(key, Some(Failure::Refused)));
            return;
        }
        let call = &self.plan.calls[call_id];
        let publish = call.via.is_some();
        let operation = call.operation;
        let carries = !self.broken[call_id] && !self.uninstrumented[call.from];
        let trace = if carries {
            attempt_trace.child_of(attempt_span)
        } else {
            self.new_trace(0)
        };
        let depth = attempt_depth + 1;
        let job = Job {
            instance: callee,
            operation,
            kind: Kind::Server,
            attempt: Some(key),
            trace,
            link: None,
            span_id: self.id64(),
            arrived: self.now,
            depth,
            steps: VecDeque::new(),
            outstanding: 0,
            dependency_failed: false,
            holds_slot: false,
            deliver: publish.then_some(call_id),
        };
        self.admit(job);
    }

    fn admit(&mut self, job: Job) {
        let instance = job.instance;
        let slots = self.plan.service_of(instance).concurrency;
        let state = &self.instances[instance];
        let key = self.jobs.insert(job);
        if state.busy < state.slots(slots) {
            self.start(key);
        } else if state.waiting.len() < MAX_WAITING {
            self.instances[instance].waiting.push_back(key);
        } else {
            self.finish(key, Some(Failure::Overloaded));
        }
    }

    fn start(&mut self, key: JobKey) {
        let job = &self.jobs[key];
        let (instance, operation, depth) = (job.instance, job.operation, job.depth);
        self.instances[instance].busy += 1;
        let service_id = self.plan.instances[instance].service;
        let service = &self.plan.services[service_id];
        let work = service.self_time.map_or(0.0, |d| d.sample(&mut self.rng))
            * self.instances[instance].slowdown(self.now);
        let work = work as u64;
        let mut steps = VecDeque::new();
        steps.push_back(Step::Work(work / 2));
        if depth < MAX_DEPTH {
            let mut parallel = Vec::new();
            for call in self.plan.calls_for(service_id, operation) {
                let planned = &self.plan.calls[call];
                if self.faults.call_disabled(call) || !self.rng.random_bool(planned.probability) {
                    continue;
                }
                let (low, high) = planned.count;
                let count = self.rng.random_range(low..=high);
                if planned.mode == CallMode::Parallel {
                    parallel.extend(std::iter::repeat_n(call, count as usize));
                    continue;
                }
                if !parallel.is_empty() {
                    steps.push_back(Step::Calls(std::mem::take(&mut parallel)));
                }
                for _ in 0..count {
                    steps.push_back(Step::Calls(vec![call]));
                }
            }
            if !parallel.is_empty() {
                steps.push_back(Step::Calls(parallel));
            }
        }
        steps.push_back(Step::Work(work - work / 2));
        let job = &mut self.jobs[key];
        job.steps = steps;
        job.holds_slot = true;
        self.next_step(key);
    }

    fn next_step(&mut self, key: JobKey) {
        loop {
            let job = &mut self.jobs[key];
            match job.steps.pop_front() {
                Some(Step::Work(ns)) => {
                    let instance = job.instance;
                    let cpus = self.plan.service_of(instance).cpus;
                    let state = &mut self.instances[instance];
                    if state.cpu_busy < cpus {
                        state.cpu_busy += 1;
                        state.count_cpu(ns);
                        self.schedule(self.now + ns, Event::CpuDone(key));
                    } else {
                        state.cpu_waiting.push_back((key, ns));
                    }
                    return;
                }
                Some(Step::Calls(calls)) => {
                    if calls.is_empty() {
                        continue;
                    }
                    job.outstanding = calls.len() as u32;
                    let (instance, trace, span_id, depth) =
                        (job.instance, job.trace, job.span_id, job.depth);
                    for call in calls {
                        self.launch(
                            Some(key),
                            instance,
                            call,
                            0,
                            self.now,
                            trace.parent_for_calls(span_id),
                            depth,
                        );
                    }
                    return;
                }
                None => {
                    let failed = job.dependency_failed;
                    let failure = (failed && self.rng.random_bool(ERROR_PROPAGATION))
                        .then_some(Failure::Dependency);
                    self.finish(key, failure);
                    return;
                }
            }
        }
    }

    fn cpu_done(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get(key) else {
            return;
        };
        let instance = job.instance;
        let state = &mut self.instances[instance];
        state.cpu_busy -= 1;
        if let Some((next, ns)) = state.cpu_waiting.pop_front() {
            state.cpu_busy += 1;
            state.count_cpu(ns);
            self.schedule(self.now + ns, Event::CpuDone(next));
        }
        self.next_step(key);
    }

    /// A job ends: it frees its slot, answers its caller (unless its
    /// instance died meanwhile), and reports its span and metrics.
    fn finish(&mut self, key: JobKey, dependency: Option<Failure>) {
        let job = self.jobs.remove(key).expect("finishing a live job");
        let instance = job.instance;
        if job.holds_slot {
            let state = &mut self.instances[instance];
            state.busy -= 1;
            if let Some(next) = state.waiting.pop_front() {
                self.start(next);
            }
        }
        if self.instances[instance].effects.down {
            return;
        }
        let failure = dependency.or_else(|| self.own_failure(instance));
        self.instances[instance].count_request(self.now - job.arrived, failure.is_some());
        let service = self.plan.instances[instance].service;
        if job.trace.sampled
            && !self.uninstrumented[service]
            && !self.plan.services[service].kind.is_backend()
        {
            self.emit(SimSpan {
                trace_id: job.trace.trace_id,
                span_id: job.span_id,
                parent_span_id: job.trace.parent,
                instance,
                kind: job.kind,
                operation: job.operation,
                peer: service,
                start: job.arrived,
                end: self.now,
                failure,
                attempt: 0,
                link: job.link,
                deployed: self.instances[instance].deployed,
            });
        }
        if let Some(attempt) = job.attempt
            && let Some(caller) = self.attempts.get(attempt).map(|a| a.caller_instance)
        {
            let back = self.one_way(instance, caller);
            self.schedule(self.now + back, Event::Reply(attempt, failure));
        }
        if let (Some(call), None) = (job.deliver, failure) {
            let delay = self.delivery.sample(&mut self.rng) as u64;
            self.deliveries += 1;
            let link = job
                .attempt
                .and_then(|a| self.attempts.get(a))
                .and_then(|a| a.trace.sampled.then_some((a.trace.trace_id, a.span_id)));
            self.schedule(
                self.now + delay,
                Event::Deliver {
                    call,
                    region: self.plan.instances[instance].region,
                    link,
                    depth: job.depth,
                },
            );
        }
    }

    fn own_failure(&mut self, instance: InstanceId) -> Option<Failure> {
        let base = self.plan.service_of(instance).error_rate;
        let (share, exception) = self.instances[instance].effects.error_share_at(self.now);
        if share > 0.0 && self.rng.random_bool(share.min(1.0)) {
            return Some(if exception {
                Failure::Exception
            } else {
                Failure::Server
            });
        }
        (base > 0.0 && self.rng.random_bool(base)).then_some(Failure::Server)
    }

    fn reply(&mut self, key: AttemptKey, failure: Option<Failure>) {
        if let Some(attempt) = self.attempts.remove(key) {
            self.attempt_done(attempt, failure);
        }
    }

    fn timeout(&mut self, key: AttemptKey) {
        if let Some(attempt) = self.attempts.remove(key) {
            self.attempt_done(attempt, Some(Failure::Timeout));
        }
    }

    /// The caller has its answer (or gave up): it reports the attempt,
    /// retries if it may, or carries on with its own work.
    fn attempt_done(&mut self, attempt: Attempt, failure: Option<Failure>) {
        let call = &self.plan.calls[attempt.call];
        let (retries, mode, to, via) = (call.retries, call.mode, call.to, call.via);
        let caller_service = self.plan.instances[attempt.caller_instance].service;
        if attempt.trace.sampled && !self.uninstrumented[caller_service] {
            let operation = self.plan.calls[attempt.call].operation;
            self.emit(SimSpan {
                trace_id: attempt.trace.trace_id,
                span_id: attempt.span_id,
                parent_span_id: attempt.trace.parent,
                instance: attempt.caller_instance,
                kind: if mode == CallMode::Async {
                    Kind::Producer
                } else {
                    Kind::Client
                },
                operation,
                peer: via.unwrap_or(to),
                start: attempt.start,
                end: self.now,
                failure,
                attempt: attempt.number,
                link: None,
                deployed: self.instances[attempt.caller_instance].deployed,
            });
        }
        if failure.is_some() && attempt.number < retries {
            let backoff = RETRY_BACKOFF_NS << attempt.number.min(6);
            self.launch(
                attempt.caller,
                attempt.caller_instance,
                attempt.call,
                attempt.number + 1,
                self.now + backoff,
                attempt.trace,
                attempt.depth,
            );
            return;
        }
        let Some(caller) = attempt
            .caller
            .and_then(|key| self.jobs.get_mut(key).map(|j| (key, j)))
        else {
            return;
        };
        let (key, job) = caller;
        job.dependency_failed |= failure.is_some();
        job.outstanding -= 1;
        if job.outstanding == 0 {
            self.next_step(key);
        }
    }

    fn deliver(&mut self, call: CallId, region: usize, link: Option<(u128, u64)>, depth: u32) {
        self.deliveries -= 1;
        let planned = &self.plan.calls[call];
        let (consumer, operation) = (planned.to, planned.operation);
        let instance = self.pick_instance(consumer, region);
        if self.instances[instance].effects.down {
            return;
        }
        let trace = self.new_trace(0);
        let job = Job {
            instance,
            operation,
            kind: Kind::Consumer,
            attempt: None,
            trace,
            link,
            span_id: self.id64(),
            arrived: self.now,
            depth: depth + 1,
            steps: VecDeque::new(),
            outstanding: 0,
            dependency_failed: false,
            holds_slot: false,
            deliver: None,
        };
        self.admit(job);
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

    fn new_trace(&mut self, parent: u64) -> TraceCtx {
        let mut trace_id = 0;
        while trace_id == 0 {
            trace_id = self.rng.random::<u128>();
        }
        let sampled = self
            .rng
            .random_bool(self.options.sampling_ratio.clamp(0.0, 1.0));
        TraceCtx {
            trace_id,
            parent,
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
