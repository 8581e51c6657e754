//! A topology compiled for simulation: indexes instead of names, each
//! operation's calls in order, instances per region.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_distr::LogNormal;

use crate::topology::{CallMode, Protocol, ServiceKind, Topology};

pub(crate) const MS: f64 = 1e6;

pub(crate) type ServiceId = usize;
pub(crate) type InstanceId = usize;
pub(crate) type CallId = usize;
pub(crate) type OperationId = usize;

pub(crate) struct PlannedService {
    pub name: Arc<str>,
    pub kind: ServiceKind,
    pub system: Option<Arc<str>>,
    pub protocol: Protocol,
    pub concurrency: u32,
    pub cpus: u32,
    pub memory_mb: f64,
    pub self_time: Option<LogNormal<f64>>,
    pub error_rate: f64,
    pub instrumented: bool,
    /// Its instances, per region index (empty where it does not run).
    pub instances: Vec<Vec<InstanceId>>,
    /// Calls it makes, in file order, per operation it serves.
    pub calls_by_operation: BTreeMap<OperationId, Vec<CallId>>,
    /// Calls it makes whatever the operation (the entry's request mix).
    pub calls_always: Vec<CallId>,
}

pub(crate) struct PlannedInstance {
    pub service: ServiceId,
    pub region: usize,
    pub name: Arc<str>,
}

pub(crate) struct PlannedCall {
    pub from: ServiceId,
    pub to: ServiceId,
    pub operation: OperationId,
    pub probability: f64,
    pub count: (u32, u32),
    pub mode: CallMode,
    pub via: Option<ServiceId>,
    pub timeout_ns: u64,
    pub retries: u32,
    pub propagates: bool,
}

pub(crate) struct Plan {
    pub namespace: Arc<str>,
    pub regions: Vec<Arc<str>>,
    pub services: Vec<PlannedService>,
    pub instances: Vec<PlannedInstance>,
    pub calls: Vec<PlannedCall>,
    pub operations: Vec<Arc<str>>,
    pub entry: ServiceId,
    /// The entry's calls and their weights: the request mix.
    pub entry_mix: Vec<(CallId, f64)>,
    pub entry_weight: f64,
    /// The entry's instances, all regions.
    pub entry_instances: Vec<InstanceId>,
    pub rate: f64,
    pub cross_region_ns: f64,
    pub versions: Vec<Arc<str>>,
}

impl Plan {
    pub(crate) fn new(topology: &Topology) -> Self {
        let mut operations: Vec<Arc<str>> = Vec::new();
        let mut intern = |name: &str| match operations.iter().position(|o| &**o == name) {
            Some(id) => id,
            None => {
                operations.push(name.into());
                operations.len() - 1
            }
        };
        let index = |name: &str| topology.service_index(name).expect("validated topology");
        let calls: Vec<PlannedCall> = topology
            .calls
            .iter()
            .map(|c| PlannedCall {
                from: index(&c.from),
                to: index(&c.to),
                operation: intern(&c.operation),
                probability: c.probability,
                count: (c.count, c.count_max.unwrap_or(c.count)),
                mode: c.mode,
                via: c.via.as_deref().map(index),
                timeout_ns: (c.timeout_ms * MS) as u64,
                retries: c.retries,
                propagates: c.propagates,
            })
            .collect();
        let regions: Vec<Arc<str>> = topology.regions.iter().map(|r| r.as_str().into()).collect();
        let mut instances = Vec::new();
        let mut services: Vec<PlannedService> = Vec::new();
        let mut within_by_service = Vec::new();
        for (id, spec) in topology.services.iter().enumerate() {
            let mut per_region = vec![Vec::new(); regions.len()];
            for region in topology.regions_of(spec) {
                let r = topology
                    .regions
                    .iter()
                    .position(|x| x == region)
                    .expect("validated");
                for n in 0..spec.instances {
                    per_region[r].push(instances.len());
                    let name = if regions.len() == 1 {
                        format!("{}-{n}", spec.name)
                    } else {
                        format!("{}-{region}-{n}", spec.name)
                    };
                    instances.push(PlannedInstance {
                        service: id,
                        region: r,
                        name: name.into(),
                    });
                }
            }
            let mut calls_within: BTreeMap<Option<OperationId>, Vec<CallId>> = BTreeMap::new();
            for (call_id, c) in topology.calls.iter().enumerate() {
                if c.from == spec.name {
                    let within = c.within.as_deref().map(&mut intern);
                    calls_within.entry(within).or_default().push(call_id);
                }
            }
            services.push(PlannedService {
                name: spec.name.as_str().into(),
                kind: spec.kind,
                system: spec.system.as_deref().map(Into::into),
                protocol: spec.protocol,
                concurrency: spec.concurrency,
                cpus: spec.cpus,
                memory_mb: spec.memory_mb,
                self_time: (spec.self_ms > 0.0).then(|| log_normal(spec.self_ms, spec.sigma)),
                error_rate: spec.error_rate,
                instrumented: spec.instrumented,
                instances: per_region,
                calls_by_operation: BTreeMap::new(),
                calls_always: calls_within.remove(&None).unwrap_or_default(),
            });
            within_by_service.push(calls_within);
        }
        // Each operation a service serves: its own calls and the
        // operation-independent ones, merged in file order.
        for call in &calls {
            let service = &mut services[call.to];
            if service.calls_by_operation.contains_key(&call.operation) {
                continue;
            }
            let mut merged = service.calls_always.clone();
            if let Some(specific) = within_by_service[call.to].get(&Some(call.operation)) {
                merged.extend(specific);
            }
            merged.sort_unstable();
            service.calls_by_operation.insert(call.operation, merged);
        }
        let entry = index(&topology.entry);
        let entry_mix: Vec<(CallId, f64)> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.from == entry)
            .map(|(id, _)| (id, topology.calls[id].weight))
            .collect();
        let versions = topology
            .services
            .iter()
            .map(|s| s.version.as_str().into())
            .collect();
        let entry_instances = services[entry].instances.concat();
        Self {
            entry_instances,
            namespace: topology.namespace.as_str().into(),
            regions,
            services,
            instances,
            calls,
            operations,
            entry,
            entry_weight: entry_mix.iter().map(|(_, w)| w).sum(),
            entry_mix,
            rate: topology.rate,
            cross_region_ns: topology.cross_region_ms * MS,
            versions,
        }
    }

    /// The calls `service` makes while serving `operation`, in file order.
    pub(crate) fn calls_for(&self, service: ServiceId, operation: OperationId) -> &[CallId] {
        let service = &self.services[service];
        service
            .calls_by_operation
            .get(&operation)
            .unwrap_or(&service.calls_always)
    }

    pub(crate) fn service_of(&self, instance: InstanceId) -> &PlannedService {
        &self.services[self.instances[instance].service]
    }

    /// The services that call `service`, directly or through others.
    pub(crate) fn upstream_of(&self, service: ServiceId) -> Vec<ServiceId> {
        self.reach(service, |c| (c.to, c.from))
    }

    /// The services `service` calls, directly or through others.
    pub(crate) fn downstream_of(&self, service: ServiceId) -> Vec<ServiceId> {
        self.reach(service, |c| (c.from, c.to))
    }

    fn reach(
        &self,
        start: ServiceId,
        edge: impl Fn(&PlannedCall) -> (usize, usize),
    ) -> Vec<ServiceId> {
        let mut seen = vec![false; self.services.len()];
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(at) = stack.pop() {
            for call in &self.calls {
                let (from, to) = edge(call);
                if from == at && !seen[to] {
                    seen[to] = true;
                    stack.push(to);
                }
            }
        }
        seen[start] = false;
        (0..seen.len()).filter(|&s| seen[s]).collect()
    }
}

pub(crate) fn log_normal(median_ms: f64, sigma: f64) -> LogNormal<f64> {
    LogNormal::new((median_ms * MS).ln(), sigma).expect("validated topology values")
}
