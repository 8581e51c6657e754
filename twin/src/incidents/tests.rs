//! Grouping, confirmation, resolution and restore of incidents, on a small
//! graph: a → b → c, and d alone.

use meshtwin_model::anomaly::{AlarmKind, Anomaly, Deviation, Signal, Subject};
use meshtwin_model::incident::IncidentState;
use proptest::prelude::*;

use super::*;

const T0: u64 = 1_790_000_000 * SECOND;

struct Chain;

impl Neighbours for Chain {
    fn connected(&self, a: &str, b: &str) -> bool {
        let edges = [("a", "b"), ("b", "c")];
        a == b
            || edges
                .iter()
                .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b))
    }
}

fn alarm(id: &str, bucket: u64) -> Anomaly {
    Anomaly {
        subject: if id.contains("->") {
            Subject::Edge
        } else {
            Subject::Node
        },
        id: id.to_owned(),
        signal: Signal::ErrorRate,
        kind: AlarmKind::Spike,
        deviation: Deviation::Above,
        at_unix_nanos: T0 + bucket * 10 * SECOND,
        value: 0.5,
        expected: 0.01,
        lower: 0.0,
        upper: 0.05,
    }
}

fn bucket_end(bucket: u64) -> u64 {
    T0 + bucket * 10 * SECOND
}

/// Feeds `alarms` per bucket (index = bucket), then `quiet` empty buckets.
fn feed(incidents: &mut Incidents, alarms: &[Vec<Anomaly>]) {
    for (bucket, alarms) in alarms.iter().enumerate() {
        incidents.observe(
            alarms,
            bucket_end(bucket as u64),
            bucket_end(bucket as u64),
            &Chain,
        );
    }
}

#[test]
fn a_blip_opens_nothing_and_three_buckets_of_one_symptom_do() {
    let mut incidents = Incidents::default();
    feed(&mut incidents, &[vec![alarm("b", 0), alarm("a->b", 0)]]);
    assert!(incidents.all().is_empty(), "one bucket alone");
    incidents.observe(&[alarm("b", 1)], bucket_end(1), bucket_end(1), &Chain);
    assert!(
        incidents.all().is_empty(),
        "two buckets of one node's series"
    );
    incidents.observe(&[alarm("b", 2)], bucket_end(2), bucket_end(2) + 5, &Chain);
    let all = incidents.all();
    assert_eq!(all.len(), 1);
    let incident = &all[0];
    assert_eq!((incident.id, incident.state), (1, IncidentState::Open));
    assert_eq!(incident.nodes, ["a", "b"]);
    assert_eq!(incident.anomalies, 4);
    assert_eq!(incident.opened_unix_nanos, bucket_end(0));
    assert_eq!(incident.confirmed_unix_nanos, bucket_end(2) + 5);
    let b = incident
        .signals
        .iter()
        .find(|s| s.id == "b")
        .expect("b listed");
    assert_eq!(b.alarms, 3);
}

#[test]
fn two_buckets_confirm_when_symptoms_show_on_two_nodes() {
    let mut incidents = Incidents::default();
    feed(
        &mut incidents,
        &[vec![alarm("b", 0), alarm("a", 0)], vec![alarm("b", 1)]],
    );
    let all = incidents.all();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].nodes, ["a", "b"]);
}

#[test]
fn surges_alone_open_nothing() {
    let surge = |id: &str, bucket| Anomaly {
        signal: Signal::Throughput,
        ..alarm(id, bucket)
    };
    let mut incidents = Incidents::default();
    feed(
        &mut incidents,
        &(0..5)
            .map(|b| vec![surge("a", b), surge("b", b)])
            .collect::<Vec<_>>(),
    );
    assert!(incidents.all().is_empty());
}

#[test]
fn neighbours_join_one_incident_and_a_separate_part_opens_another() {
    let mut incidents = Incidents::default();
    feed(
        &mut incidents,
        &[
            vec![alarm("c", 0), alarm("d", 0)],
            vec![alarm("c", 1), alarm("d", 1)],
            vec![alarm("c", 2), alarm("d", 2)],
            vec![alarm("b->c", 3), alarm("a", 3)],
        ],
    );
    let all = incidents.all();
    assert_eq!(all.len(), 2, "{all:?}");
    // b->c touches c; then a is next to b, now in the incident.
    assert_eq!(all[0].nodes, ["a", "b", "c"]);
    assert_eq!(all[0].anomalies, 5);
    assert_eq!(all[1].nodes, ["d"]);
    assert_eq!(all[1].anomalies, 3);
}

#[test]
fn quiet_for_two_minutes_resolves_and_a_later_fault_opens_a_new_incident() {
    let mut incidents = Incidents::default();
    let mut buckets = vec![
        vec![alarm("b", 0)],
        vec![alarm("b", 1)],
        vec![alarm("b", 2)],
    ];
    buckets.extend((3..15).map(|_| vec![]));
    feed(&mut incidents, &buckets);
    assert_eq!(
        incidents.all()[0].state,
        IncidentState::Open,
        "120 s: not yet"
    );
    incidents.observe(&[], bucket_end(15), bucket_end(15), &Chain);
    let resolved = incidents.all()[0].clone();
    assert_eq!(resolved.state, IncidentState::Resolved);
    assert_eq!(resolved.resolved_unix_nanos, Some(bucket_end(15)));
    for bucket in 20..23 {
        incidents.observe(
            &[alarm("b", bucket)],
            bucket_end(bucket),
            bucket_end(bucket),
            &Chain,
        );
    }
    let all = incidents.all();
    assert_eq!(all.len(), 2);
    assert_eq!((all[1].id, all[1].state), (2, IncidentState::Open));
}

#[test]
fn changes_are_taken_once_each() {
    let mut incidents = Incidents::default();
    let three: Vec<_> = (0..3).map(|b| vec![alarm("b", b)]).collect();
    feed(&mut incidents, &three);
    let changed = incidents.take_changed();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].anomalies, 3);
    assert!(incidents.take_changed().is_empty());
    incidents.observe(&[alarm("a", 3)], bucket_end(3), bucket_end(3), &Chain);
    assert_eq!(incidents.take_changed()[0].anomalies, 4, "an update");
}

#[test]
fn a_restored_list_keeps_its_incidents_and_ids_continue() {
    let mut before = Incidents::default();
    let three: Vec<_> = (0..3).map(|b| vec![alarm("b", b)]).collect();
    feed(&mut before, &three);
    let kept = before.all().to_vec();
    let mut after = Incidents::default();
    after.restore(kept.clone());
    assert_eq!(*after.all(), kept);
    for bucket in 40..43 {
        after.observe(
            &[alarm("d", bucket)],
            bucket_end(bucket),
            bucket_end(bucket),
            &Chain,
        );
    }
    let all = after.all();
    assert_eq!(
        all[0].state,
        IncidentState::Resolved,
        "quiet since before the restart"
    );
    assert_eq!(all.last().unwrap().id, 2);
}

proptest! {
    /// Whatever the alarms, every alarm is counted at most once, ids
    /// increase, and the same input gives the same incidents.
    #[test]
    fn grouping_is_deterministic_and_counts_each_alarm_at_most_once(
        alarms in prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "c", "d", "a->b", "b->c"]), 0u64..40),
            0..60,
        ),
    ) {
        let mut per_bucket = vec![Vec::new(); 40];
        for (id, bucket) in &alarms {
            per_bucket[*bucket as usize].push(alarm(id, *bucket));
        }
        let mut first = Incidents::default();
        let mut second = Incidents::default();
        feed(&mut first, &per_bucket);
        feed(&mut second, &per_bucket);
        prop_assert_eq!(first.all(), second.all());
        let counted: u64 = first.all().iter().map(|i| i.anomalies).sum();
        prop_assert!(counted <= alarms.len() as u64);
        let ids: Vec<u64> = first.all().iter().map(|i| i.id).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
