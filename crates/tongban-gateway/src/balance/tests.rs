use std::collections::HashMap;

use super::*;

fn set(weights: &[u32]) -> Vec<Arc<Endpoint>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| Arc::new(Endpoint::new(format!("10.0.0.{i}:80"), *w)))
        .collect()
}

const T0: Duration = Duration::from_secs(1000);

#[test]
fn round_robin_follows_weights_smoothly() {
    let b = Balancer::new(Strategy::RoundRobin, set(&[5, 1, 1]));
    let picks: Vec<usize> = (0..7)
        .map(|_| b.pick(T0, None, &[]).expect("pick"))
        .collect();
    assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
    // Smooth: the heavy instance is never picked more than twice in a row here.
    assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn least_request_avoids_the_busy_instance() {
    let eps = set(&[100, 100, 100]);
    let b = Balancer::new(Strategy::LeastRequest, eps.clone());
    let _busy: Vec<InFlight> = (0..50).map(|_| eps[0].start()).collect();
    let mut counts = HashMap::new();
    for _ in 0..3000 {
        *counts
            .entry(b.pick(T0, None, &[]).expect("pick"))
            .or_insert(0) += 1;
    }
    // With two choices the busy one wins only when drawn twice: never, as draws are distinct.
    assert_eq!(counts.get(&0), None, "{counts:?}");
    drop(_busy);
    assert_eq!(eps[0].in_flight(), 0);
}

#[test]
fn consistent_hash_keeps_users_and_moves_few_when_one_leaves() {
    let b = Balancer::new(Strategy::ConsistentHash, set(&[100, 100, 100]));
    let users: Vec<String> = (0..3000).map(|i| format!("user-{i}")).collect();
    let first: Vec<usize> = users
        .iter()
        .map(|u| b.pick(T0, Some(u), &[]).expect("p"))
        .collect();
    let again: Vec<usize> = users
        .iter()
        .map(|u| b.pick(T0, Some(u), &[]).expect("p"))
        .collect();
    assert_eq!(first, again);
    for i in 0..3 {
        let share = first.iter().filter(|&&x| x == i).count();
        assert!((700..=1300).contains(&share), "instance {i} got {share}");
    }
    // Excluding instance 1 (as a retry or an ejection would) moves only its users.
    let moved = users
        .iter()
        .zip(&first)
        .filter(|(u, f)| b.pick(T0, Some(u), &[1]).expect("p") != **f)
        .count();
    assert_eq!(moved, first.iter().filter(|&&x| x == 1).count());
}

#[test]
fn ejected_instances_are_skipped_then_return() {
    let eps = set(&[100, 100]);
    let b = Balancer::new(Strategy::RoundRobin, eps.clone());
    let rule = OutlierRule {
        consecutive_failures: 3,
        base_ejection_ms: 10_000,
    };
    assert!(!eps[0].report(false, T0, &rule));
    assert!(!eps[0].report(false, T0, &rule));
    assert!(eps[0].report(false, T0, &rule), "third failure ejects");
    for _ in 0..10 {
        assert_eq!(b.pick(T0, None, &[]), Some(1));
    }
    let later = T0 + Duration::from_secs(10);
    let picks: Vec<_> = (0..4)
        .map(|_| b.pick(later, None, &[]).expect("p"))
        .collect();
    assert!(picks.contains(&0), "back after the ejection time");
    // A second ejection lasts twice as long.
    for _ in 0..3 {
        eps[0].report(false, later, &rule);
    }
    assert!(eps[0].is_ejected(later + Duration::from_secs(19)));
    assert!(!eps[0].is_ejected(later + Duration::from_secs(20)));
}

#[test]
fn exclusions_relax_rather_than_fail() {
    let b = Balancer::new(Strategy::LeastRequest, set(&[100]));
    assert_eq!(
        b.pick(T0, None, &[0]),
        Some(0),
        "the only instance, tried again"
    );
    assert_eq!(
        Balancer::new(Strategy::RoundRobin, Vec::new()).pick(T0, None, &[]),
        None
    );
}

#[test]
fn instances_down_by_active_checks_are_skipped() {
    let eps = set(&[100, 100]);
    let b = Balancer::new(Strategy::LeastRequest, eps.clone());
    eps[1].set_down(true);
    assert!((0..50).all(|_| b.pick(T0, None, &[]) == Some(0)));
    eps[0].set_down(true);
    assert!(
        b.pick(T0, None, &[]).is_some(),
        "all down: still try rather than fail"
    );
}
