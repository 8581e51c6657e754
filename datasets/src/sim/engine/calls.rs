//! Calls: an attempt crosses the network to an instance picked near the
//! caller, and its answer (or its timeout) comes back to the caller, which
//! retries or carries on; asynchronous messages are delivered to their
//! consumer.

use std::collections::VecDeque;

use rand::RngExt;
use rand_distr::Distribution;

use super::{
    Attempt, AttemptKey, Event, Job, JobKey, LOST_FOR_GOOD, RETRANSMIT_NS, RETRY_BACKOFF_NS,
    Simulation, TraceCtx,
};
use crate::sim::plan::{CallId, InstanceId, ServiceId};
use crate::sim::record::{Failure, Kind, SimSpan};
use crate::topology::CallMode;

impl Simulation {
    /// Sends attempt `number` of `call` from `caller_instance` at `at`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch(
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

    pub(super) fn pick_instance(&mut self, service: ServiceId, region: usize) -> InstanceId {
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

    pub(super) fn one_way(&mut self, from: InstanceId, to: InstanceId) -> u64 {
        let mut ns = self.network.sample(&mut self.rng);
        if self.plan.instances[from].region != self.plan.instances[to].region {
            ns += self.plan.cross_region_ns * (0.9 + 0.2 * self.rng.random::<f64>());
        }
        ns as u64
            + self.instances[from].effects.extra_delay_ns
            + self.instances[to].effects.extra_delay_ns
    }

    pub(super) fn arrive(&mut self, key: AttemptKey) {
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
            self.new_trace()
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

    pub(super) fn reply(&mut self, key: AttemptKey, failure: Option<Failure>) {
        if let Some(attempt) = self.attempts.remove(key) {
            self.attempt_done(attempt, failure);
        }
    }

    pub(super) fn timeout(&mut self, key: AttemptKey) {
        if let Some(attempt) = self.attempts.remove(key) {
            self.attempt_done(attempt, Some(Failure::Timeout));
        }
    }

    /// The caller has its answer (or gave up): it reports the attempt,
    /// retries if it may, or carries on with its own work.
    pub(super) fn attempt_done(&mut self, attempt: Attempt, failure: Option<Failure>) {
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

    pub(super) fn deliver(
        &mut self,
        call: CallId,
        region: usize,
        link: Option<(u128, u64)>,
        depth: u32,
    ) {
        self.deliveries -= 1;
        let planned = &self.plan.calls[call];
        let (consumer, operation) = (planned.to, planned.operation);
        let instance = self.pick_instance(consumer, region);
        if self.instances[instance].effects.down {
            return;
        }
        let trace = self.new_trace();
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
}
