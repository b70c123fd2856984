use super::*;

fn rule(trip: Trip, threshold: f64) -> BreakerRule {
    BreakerRule {
        trip,
        threshold,
        slow_ms: 100,
        min_requests: 5,
        stat_interval_ms: 1_000,
        open_ms: 5_000,
    }
}

const T0: Duration = Duration::from_secs(1_000);
const MS: Duration = Duration::from_millis(1);

fn call(b: &mut Breaker, now: Duration, rt: Duration, error: bool) -> State {
    let p = b.try_acquire(now).expect("admitted");
    b.on_complete(p, now, rt, error)
}

#[test]
fn error_ratio_needs_the_minimum_amount() {
    let mut b = Breaker::new(rule(Trip::ErrorRatio, 0.5));
    for _ in 0..4 {
        assert_eq!(
            call(&mut b, T0, MS, true),
            State::Closed,
            "below min_requests"
        );
    }
    assert_eq!(call(&mut b, T0, MS, true), State::Open);
    assert_eq!(b.try_acquire(T0 + 4_999 * MS), None);
}

#[test]
fn error_ratio_is_strictly_above_the_threshold() {
    let mut b = Breaker::new(rule(Trip::ErrorRatio, 0.5));
    for i in 0..10 {
        assert_eq!(
            call(&mut b, T0, MS, i % 2 == 1),
            State::Closed,
            "never above 50 %"
        );
    }
    assert_eq!(call(&mut b, T0, MS, true), State::Open, "6 of 11");
}

#[test]
fn slow_ratio_counts_slow_calls_not_errors() {
    let mut b = Breaker::new(rule(Trip::SlowRatio, 0.6));
    for _ in 0..5 {
        assert_eq!(
            call(&mut b, T0, MS, true),
            State::Closed,
            "fast errors are not slow"
        );
    }
    for _ in 0..8 {
        call(&mut b, T0, 101 * MS, false);
    }
    assert_eq!(b.state(T0), State::Open, "8 slow of 13");
}

#[test]
fn error_count_trips_above_the_count() {
    let mut b = Breaker::new(rule(Trip::ErrorCount, 3.0));
    for _ in 0..3 {
        call(&mut b, T0, MS, true);
    }
    for _ in 0..10 {
        call(&mut b, T0, MS, false);
    }
    assert_eq!(b.state(T0), State::Closed);
    assert_eq!(call(&mut b, T0, MS, true), State::Open);
}

#[test]
fn old_calls_leave_the_window() {
    let mut b = Breaker::new(rule(Trip::ErrorCount, 3.0));
    for _ in 0..3 {
        call(&mut b, T0, MS, true);
    }
    // A second later the errors are outside the interval.
    let later = T0 + Duration::from_millis(1_000);
    assert_eq!(b.counts(later), (0, 0, 0));
    assert_eq!(call(&mut b, later, MS, true), State::Closed);
    assert_eq!(b.counts(later).1, 1);
}

#[test]
fn half_open_lets_one_probe_and_it_decides() {
    let mut b = Breaker::new(rule(Trip::ErrorRatio, 0.5));
    for _ in 0..5 {
        call(&mut b, T0, MS, true);
    }
    let t = T0 + Duration::from_millis(5_000);
    assert_eq!(b.state(t), State::HalfOpen);
    let probe = b.try_acquire(t).expect("probe");
    assert_eq!(probe, Permit::Probe);
    assert_eq!(b.try_acquire(t), None, "only one probe");
    assert_eq!(
        b.on_complete(probe, t, MS, true),
        State::Open,
        "failed probe reopens"
    );
    assert_eq!(b.try_acquire(t + 4_999 * MS), None);
    let t = t + Duration::from_millis(5_000);
    let probe = b.try_acquire(t).expect("probe");
    assert_eq!(b.on_complete(probe, t, MS, false), State::Closed);
    assert_eq!(b.counts(t), (0, 0, 0), "closing starts a fresh count");
    assert_eq!(b.try_acquire(t), Some(Permit::Normal));
}

#[test]
fn rules_are_validated() {
    assert!(rule(Trip::ErrorRatio, 1.5).validate().is_err());
    assert!(rule(Trip::ErrorCount, 15.0).validate().is_ok());
    assert!(rule(Trip::SlowRatio, f64::NAN).validate().is_err());
}
