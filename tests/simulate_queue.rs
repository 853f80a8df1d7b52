//! `vaxel simulate-queue`'s model against Erlang C: with no patience and no
//! policy, the real ACD on virtual time must agree with the formula within
//! sampling error. Tolerances: the queue's service level within 3 points
//! and the mean wait within 15 % (25 % at 0.95, where waits are long and
//! strongly correlated, so a run of ~85,000 calls still varies by ±15 %);
//! fixed seeds keep the runs reproducible.

use std::time::{Duration, Instant};
use vaxel::acd::sim::{self, SimSettings};
use vaxel::acd::QueueSettings;

fn run(per_hour: f64, hours: u64, seed: u64) -> sim::SimReport {
    let s = SimSettings {
        queue: QueueSettings::new("kundtjanst"),
        agents: 6,
        arrivals_per_hour: per_hour,
        aht: Duration::from_secs(240),
        patience: None,
        duration: Duration::from_secs(hours * 3600),
        seed,
        service_level: Duration::from_secs(20),
        callback_accept: 0.0,
    };
    sim::run(Instant::now(), &s)
}

fn check(per_hour: f64, hours: u64, wait_tolerance: f64) {
    let r = run(per_hour, hours, 7);
    let e = r.erlang.expect("below capacity");
    let sl = r.service_level().unwrap();
    let wait = r.asa().unwrap().as_secs_f64();
    let predicted = e.mean_wait.as_secs_f64();
    println!(
        "utilisation {:.2}: {} calls; service level {:.1} % (Erlang C {:.1} %), mean wait {:.1} s (Erlang C {:.1} s)",
        r.utilisation, r.offered, sl * 100.0, e.service_level * 100.0, wait, predicted
    );
    assert!(r.offered > 5_000, "thousands of calls: {}", r.offered);
    assert_eq!(r.answered, r.offered, "no patience: everyone is answered");
    assert!(
        (sl - e.service_level).abs() < 0.03,
        "service level {sl} vs {}",
        e.service_level
    );
    assert!(
        (wait - predicted).abs() <= wait_tolerance * predicted.max(1.0),
        "mean wait {wait} vs {predicted}"
    );
}

#[test]
fn agrees_with_erlang_c_at_utilisation_0_5() {
    check(45.0, 500, 0.15);
}

#[test]
fn agrees_with_erlang_c_at_utilisation_0_8() {
    check(72.0, 1000, 0.15);
}

#[test]
fn agrees_with_erlang_c_at_utilisation_0_95() {
    check(85.5, 3000, 0.25);
}

#[test]
fn erlang_c_known_values() {
    // 2 agents, 1 erlang: P(wait) = 1/3, mean wait = AHT/3 (textbook M/M/2).
    let e = sim::erlang_c(2, 15.0, Duration::from_secs(240), Duration::from_secs(20)).unwrap();
    assert!((e.p_wait - 1.0 / 3.0).abs() < 1e-9);
    assert!((e.mean_wait.as_secs_f64() - 80.0).abs() < 1e-6);
    assert!(sim::erlang_c(6, 90.0, Duration::from_secs(240), Duration::from_secs(20)).is_none());
}

#[test]
fn patience_and_a_high_load_policy_change_the_figures() {
    let mut q = QueueSettings::new("kundtjanst");
    q.high_load = Some(vaxel::acd::load::HighLoadPolicy {
        name: "busy".into(),
        enter_ewt: Some(Duration::from_secs(300)),
        enter_waiting: None,
        enter_available: None,
        leave_ewt: Some(Duration::from_secs(60)),
        leave_waiting: None,
        leave_available: None,
        min_duration: Duration::from_secs(60),
        announcement: None,
        offer_callback: true,
        overflow: None,
        wrap_up: None,
    });
    let s = SimSettings {
        queue: q,
        agents: 6,
        arrivals_per_hour: 90.0,
        aht: Duration::from_secs(240),
        patience: Some(Duration::from_secs(180)),
        duration: Duration::from_secs(8 * 3600),
        seed: 3,
        service_level: Duration::from_secs(20),
        callback_accept: 0.5,
    };
    let r = sim::run(Instant::now(), &s);
    assert!(r.abandoned > 0, "patience makes callers give up");
    assert!(
        r.high_load > Duration::ZERO,
        "full load switches the policy on"
    );
    assert!(r.callbacks_booked > 0 && r.callbacks_completed == r.callbacks_booked);
    assert_eq!(r.answered + r.abandoned + r.callbacks_booked, r.offered);
    assert!(r.ewt_error.is_some());
}
