//! Jobs: a request at an instance waits for a slot, does half its own
//! work on a CPU, makes its calls batch by batch, does the other half, and
//! answers.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::RngExt;
use rand_distr::Distribution;

use super::{ERROR_PROPAGATION, Event, Job, JobKey, MAX_DEPTH, Simulation, Step};
use crate::sim::instance::MAX_WAITING;
use crate::sim::plan::InstanceId;
use crate::sim::record::{Failure, SimSpan};
use crate::topology::CallMode;

impl Simulation {
    pub(super) fn admit(&mut self, job: Job) {
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

    pub(super) fn start(&mut self, key: JobKey) {
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
            let plan = Arc::clone(&self.plan);
            for &call in plan.calls_for(service_id, operation) {
                let planned = &plan.calls[call];
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

    pub(super) fn next_step(&mut self, key: JobKey) {
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
                            trace.child_of(span_id),
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

    /// A slot is free again: the first request waiting takes it.
    pub(super) fn free_slot(&mut self, instance: InstanceId) {
        let slots = self.plan.service_of(instance).concurrency;
        let state = &mut self.instances[instance];
        state.busy = state.busy.saturating_sub(1);
        if state.busy < state.slots(slots)
            && let Some(next) = state.waiting.pop_front()
        {
            self.start(next);
        }
    }

    pub(super) fn cpu_done(&mut self, key: JobKey) {
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
    pub(super) fn finish(&mut self, key: JobKey, dependency: Option<Failure>) {
        let job = self.jobs.remove(key).expect("finishing a live job");
        let instance = job.instance;
        if job.holds_slot {
            match self.instances[instance].effects.slot_hold_ns {
                0 => self.free_slot(instance),
                hold => self.schedule(self.now + hold, Event::SlotFreed(instance)),
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

    pub(super) fn own_failure(&mut self, instance: InstanceId) -> Option<Failure> {
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
}
