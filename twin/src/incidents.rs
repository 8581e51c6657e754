//! Alarms grouped into incidents: close in time and on the graph.
//!
//! Each evaluated bucket's alarms are taken in order. An alarm joins the
//! oldest open incident that alarmed within [`JOIN_GAP_NANOS`] and touches
//! its node or a neighbour of one of its nodes. Otherwise it waits, with
//! the other unclaimed alarms of the last [`PENDING_NANOS`]; a connected
//! group of waiting alarms in which one symptom (not a surge of traffic)
//! alarmed in [`CONFIRMING_BUCKETS`] buckets (or in
//! [`CONFIRMING_BUCKETS_SPREAD`] when symptoms show on two nodes) opens an
//! incident (a blip does not). An incident with no
//! alarm for [`QUIET_NANOS`] is resolved. Everything runs on event time.

use std::sync::Arc;

use meshtwin_model::anomaly::{Anomaly, Deviation, Signal, Subject};
use meshtwin_model::incident::{Incident, IncidentSignal, IncidentState, anomaly_nodes};

const SECOND: u64 = 1_000_000_000;
/// An open incident takes alarms up to this long after its latest.
const JOIN_GAP_NANOS: u64 = 120 * SECOND;
/// An incident with no alarm for this long is resolved.
const QUIET_NANOS: u64 = 120 * SECOND;
/// Unclaimed alarms wait this long for company: a fault that bursts every
/// 30 s confirms with its third burst.
const PENDING_NANOS: u64 = 70 * SECOND;
/// A symptom confirms an incident once it alarmed in this many buckets...
const CONFIRMING_BUCKETS: usize = 3;
/// ...or in this many, when symptoms show on two nodes' own series (a fault
/// spreading to a caller, not one noisy series and its edge).
const CONFIRMING_BUCKETS_SPREAD: usize = 2;
/// At most this many unclaimed alarms wait; the oldest go first.
const MAX_PENDING: usize = 2_000;
/// At most this many signals are listed per incident (alarms beyond are
/// still counted).
const MAX_SIGNALS: usize = 200;
/// Incidents kept (in memory, the API and the data directory).
pub(crate) const KEPT_INCIDENTS: usize = 500;

/// How nodes connect, by id: the same node, or an edge either way.
pub(crate) trait Neighbours {
    fn connected(&self, a: &str, b: &str) -> bool;
}

#[derive(Default)]
pub(crate) struct Incidents {
    /// Oldest first.
    list: Arc<Vec<Incident>>,
    next_id: u64,
    pending: Vec<Anomaly>,
    /// Ids opened, updated or resolved since [`Self::take_changed`].
    changed: Vec<u64>,
}

impl Incidents {
    /// Starts from incidents kept before a restart (ids continue after them).
    pub(crate) fn restore(&mut self, mut incidents: Vec<Incident>) {
        incidents.sort_by_key(|i| i.id);
        let excess = incidents.len().saturating_sub(KEPT_INCIDENTS);
        incidents.drain(..excess);
        self.next_id = incidents.last().map_or(0, |i| i.id);
        self.list = Arc::new(incidents);
    }

    pub(crate) fn all(&self) -> Arc<Vec<Incident>> {
        self.list.clone()
    }

    /// The incidents that changed since the last call, oldest first.
    pub(crate) fn take_changed(&mut self) -> Vec<Incident> {
        let mut ids = std::mem::take(&mut self.changed);
        ids.sort_unstable();
        ids.dedup();
        self.list
            .iter()
            .filter(|i| ids.binary_search(&i.id).is_ok())
            .cloned()
            .collect()
    }

    /// Takes the alarms of the bucket that ended at `end`, evaluated when
    /// the twin's clock read `now`.
    pub(crate) fn observe(
        &mut self,
        alarms: &[Anomaly],
        end: u64,
        now: u64,
        graph: &impl Neighbours,
    ) {
        for anomaly in alarms {
            match self.joinable(anomaly, end, graph) {
                Some(index) => self.attach(index, anomaly),
                None => self.pending.push(anomaly.clone()),
            }
        }
        self.pending
            .retain(|a| a.at_unix_nanos + PENDING_NANOS >= end);
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        self.pending.drain(..excess);
        self.open_confirmed(now, graph);
        self.resolve_quiet(end);
    }

    /// The oldest open incident `anomaly` may join.
    fn joinable(&self, anomaly: &Anomaly, end: u64, graph: &impl Neighbours) -> Option<usize> {
        let nodes = anomaly_nodes(anomaly);
        self.list.iter().position(|incident| {
            incident.is_open()
                && incident.updated_unix_nanos + JOIN_GAP_NANOS >= end
                && incident
                    .nodes
                    .iter()
                    .any(|known| nodes.iter().any(|node| graph.connected(known, node)))
        })
    }

    fn attach(&mut self, index: usize, anomaly: &Anomaly) {
        let incident = &mut Arc::make_mut(&mut self.list)[index];
        add_alarm(incident, anomaly);
        self.changed.push(incident.id);
    }

    /// Opens an incident for each connected group of waiting alarms in
    /// which one signal alarmed in two buckets or more: from that signal's
    /// first alarm on (earlier alarms of the group are left to expire, so a
    /// blip just before a fault does not date its incident).
    fn open_confirmed(&mut self, now: u64, graph: &impl Neighbours) {
        let groups = connected_groups(&self.pending, graph);
        let mut taken = vec![false; self.pending.len()];
        for group in groups {
            let Some(since) = first_persistent(&self.pending, &group) else {
                continue;
            };
            let members: Vec<usize> = group
                .into_iter()
                .filter(|&i| self.pending[i].at_unix_nanos >= since)
                .collect();
            self.next_id += 1;
            let mut incident = Incident {
                id: self.next_id,
                state: IncidentState::Open,
                opened_unix_nanos: since,
                confirmed_unix_nanos: now,
                updated_unix_nanos: since,
                resolved_unix_nanos: None,
                nodes: Vec::new(),
                signals: Vec::new(),
                anomalies: 0,
            };
            for &i in &members {
                add_alarm(&mut incident, &self.pending[i]);
                taken[i] = true;
            }
            self.changed.push(incident.id);
            let list = Arc::make_mut(&mut self.list);
            list.push(incident);
            let excess = list.len().saturating_sub(KEPT_INCIDENTS);
            list.drain(..excess);
        }
        let mut index = 0;
        self.pending.retain(|_| {
            index += 1;
            !taken[index - 1]
        });
    }

    fn resolve_quiet(&mut self, end: u64) {
        let quiet: Vec<usize> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_open() && i.updated_unix_nanos + QUIET_NANOS < end)
            .map(|(index, _)| index)
            .collect();
        if quiet.is_empty() {
            return;
        }
        let list = Arc::make_mut(&mut self.list);
        for index in quiet {
            let incident = &mut list[index];
            incident.state = IncidentState::Resolved;
            incident.resolved_unix_nanos = Some(end);
            self.changed.push(incident.id);
        }
    }
}

fn add_alarm(incident: &mut Incident, anomaly: &Anomaly) {
    incident.anomalies += 1;
    incident.opened_unix_nanos = incident.opened_unix_nanos.min(anomaly.at_unix_nanos);
    incident.updated_unix_nanos = incident.updated_unix_nanos.max(anomaly.at_unix_nanos);
    for node in anomaly_nodes(anomaly) {
        if let Err(at) = incident.nodes.binary_search_by(|n| n.as_str().cmp(node)) {
            incident.nodes.insert(at, node.to_owned());
        }
    }
    let listed = incident.signals.len();
    match incident.signals.iter_mut().find(|s| s.matches(anomaly)) {
        Some(signal) => signal.absorb(anomaly),
        None if listed < MAX_SIGNALS => {
            incident.signals.push(IncidentSignal::from_anomaly(anomaly));
        }
        None => {}
    }
}

/// Whether an alarm says something is wrong: slower, failing, or less
/// traffic. More traffic alone (a surge) opens no incident, though it
/// joins one.
fn is_symptom(alarm: &Anomaly) -> bool {
    !(alarm.signal == Signal::Throughput && alarm.deviation == Deviation::Above)
}

/// The first alarm of the earliest symptom in `group` that alarmed in
/// enough buckets, if one did.
fn first_persistent(alarms: &[Anomaly], group: &[usize]) -> Option<u64> {
    let mut sick_nodes: Vec<&str> = group
        .iter()
        .map(|&i| &alarms[i])
        .filter(|a| a.subject == Subject::Node && is_symptom(a))
        .map(|a| a.id.as_str())
        .collect();
    sick_nodes.sort_unstable();
    sick_nodes.dedup();
    let needed = if sick_nodes.len() >= 2 {
        CONFIRMING_BUCKETS_SPREAD
    } else {
        CONFIRMING_BUCKETS
    };
    let mut first = None;
    for (n, &a) in group.iter().enumerate() {
        if !is_symptom(&alarms[a]) {
            continue;
        }
        let same = |&b: &usize| {
            let (x, y) = (&alarms[a], &alarms[b]);
            x.subject == y.subject && x.id == y.id && x.signal == y.signal
        };
        let mut buckets: Vec<u64> = group[n..]
            .iter()
            .filter(|b| same(b))
            .map(|&b| alarms[b].at_unix_nanos)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        if buckets.len() >= needed && buckets[0] == alarms[a].at_unix_nanos {
            let at = alarms[a].at_unix_nanos;
            first = Some(first.map_or(at, |f: u64| f.min(at)));
        }
    }
    first
}

/// Indices of `alarms` grouped by graph connection (transitively), each
/// group in input order.
fn connected_groups(alarms: &[Anomaly], graph: &impl Neighbours) -> Vec<Vec<usize>> {
    let mut group_of: Vec<usize> = (0..alarms.len()).collect();
    fn root(group_of: &mut [usize], mut i: usize) -> usize {
        while group_of[i] != i {
            group_of[i] = group_of[group_of[i]];
            i = group_of[i];
        }
        i
    }
    let nodes: Vec<Vec<&str>> = alarms.iter().map(anomaly_nodes).collect();
    for a in 0..alarms.len() {
        for b in a + 1..alarms.len() {
            let near = nodes[a]
                .iter()
                .any(|x| nodes[b].iter().any(|y| graph.connected(x, y)));
            if near {
                let (ra, rb) = (root(&mut group_of, a), root(&mut group_of, b));
                group_of[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of_root = vec![usize::MAX; alarms.len()];
    for i in 0..alarms.len() {
        let r = root(&mut group_of, i);
        if index_of_root[r] == usize::MAX {
            index_of_root[r] = groups.len();
            groups.push(Vec::new());
        }
        groups[index_of_root[r]].push(i);
    }
    groups
}

#[cfg(test)]
mod tests;
