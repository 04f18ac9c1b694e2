//! `backtest` scores the alerts a fold raised against how their months ended: a
//! hand-made October, worked out in the comments.
//!
//! October 2026 has 22 working days: Monday the 5th is the 3rd, Wednesday the 14th
//! the 10th. Ana and Bob each plan 100 000.00 and have no history, so the projection
//! is actual + the rest of the month at plan pace, and critical is arithmetic.

use pacer_projections::alerts::backtest::{backtest, BacktestQuery, DaySet, ScoreRow};
use pacer_projections::alerts::{Rule, Severity};
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{CustomerKind, EventBody, PlanBasis, PlanLine, PlanPublished};

mod common;
use common::*;

fn october() -> Log {
    let mut log = Log::new();
    register(&mut log, "bob", "north");
    log.add(
        "2026-09-20T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: "fy".into(),
            version: 1,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-10"),
            effective_from: month("2026-10"),
            currency: eur(),
            lines: ["ana", "bob"]
                .into_iter()
                .map(|rep| PlanLine {
                    rep: rep.into(),
                    month: month("2026-10"),
                    bucket: Bucket::Total,
                    target: 10_000_000,
                })
                .collect(),
        }),
    );
    // Day 3: nothing booked, 0 + 100 000 × 19/22 = 86 363.64: both warned.
    log.tick("2026-10-05T18:00:00Z");
    // Day 10: 0 + 100 000 × 12/22 = 54 545.45, below 70% even at plan pace: both
    // critical (a new alert week, the same claims).
    log.tick("2026-10-14T18:00:00Z");
    log.tick("2026-10-15T18:00:00Z");
    // Ana ends at 50%, Bob at 95% (his alert resolves with the booking: as of the
    // clock's last tick, the 15th).
    log.add(
        "2026-10-20T10:00:00Z",
        won_by(
            "ana",
            "a1",
            5_000_000,
            "2026-10-20",
            CustomerKind::New,
            "analytics",
        ),
    );
    log.add(
        "2026-10-26T10:00:00Z",
        won_by(
            "bob",
            "b1",
            9_500_000,
            "2026-10-26",
            CustomerKind::New,
            "analytics",
        ),
    );
    log.tick("2026-10-30T18:00:00Z");
    // November: October is over (and reviewed: month_missed for both, below plan).
    log.tick("2026-11-02T18:00:00Z");
    log
}

fn row(rows: &[ScoreRow], rule: Rule, severity: Severity) -> ScoreRow {
    rows.iter()
        .find(|r| r.rule == rule && r.scope == "total" && r.severity == severity)
        .unwrap_or_else(|| panic!("no {rule} {severity} row in {rows:#?}"))
        .clone()
}

fn query(days: Option<&str>) -> BacktestQuery {
    BacktestQuery {
        from: month("2026-10"),
        to: month("2026-12"),
        days: days.map(|d| DaySet::parse(d).unwrap()),
        recall_by_day: 10,
    }
}

#[test]
fn claims_are_scored_against_how_the_month_ended() {
    let b = backtest(&october().state(), &query(None));
    // Only October has ended.
    assert_eq!(b.months, vec![month("2026-10")]);
    // Warnings: both claimed October would end below 90%; Ana's did (50%), Bob's not
    // (95%). Of the months below 90% (Ana's), all were flagged by day 10. Ana was
    // first warned on day 3: 19 working days before the end.
    let w = row(&b.rows, Rule::BehindPace, Severity::Warning);
    assert_eq!((w.alerts, w.right, w.ended_below, w.flagged), (2, 1, 1, 1));
    assert_eq!(w.precision_bp(), Some(5_000));
    assert_eq!(w.recall_bp(), Some(10_000));
    assert_eq!(w.lead_days, vec![19]);
    // Critical: both from day 10, below 70% claimed; only Ana's came true. 12 days ahead.
    let c = row(&b.rows, Rule::BehindPace, Severity::Critical);
    assert_eq!((c.alerts, c.right, c.ended_below, c.flagged), (2, 1, 1, 1));
    assert_eq!(c.lead_days, vec![12]);
    assert_eq!(c.median_lead_days(), Some(12));
    // month_missed states a fact: both were below plan, both named.
    let m = row(&b.rows, Rule::MonthMissed, Severity::Info);
    assert_eq!((m.alerts, m.right, m.ended_below, m.flagged), (2, 2, 2, 2));
}

#[test]
fn only_the_days_asked_for_count_and_recall_needs_the_flag_in_time() {
    // Seen from day 11 on only: the claims still stood then (Ana's and Bob's critical
    // alerts of the 14th stand until the month ends), first seen on day 11 (the 15th).
    let b = backtest(&october().state(), &query(Some("11-22")));
    let c = row(&b.rows, Rule::BehindPace, Severity::Critical);
    assert_eq!((c.alerts, c.right), (2, 1));
    assert_eq!(c.lead_days, vec![11]);
    // ... and after working day 10: Ana's month was not caught in time.
    assert_eq!((c.ended_below, c.flagged), (1, 0));
    assert_eq!(c.recall_bp(), Some(0));
    // Days 1-2 only: nothing stood yet.
    let b = backtest(&october().state(), &query(Some("1-2")));
    let c = row(&b.rows, Rule::BehindPace, Severity::Critical);
    assert_eq!((c.alerts, c.ended_below, c.flagged), (0, 1, 0));
}

#[test]
fn day_sets_parse_ranges_and_lists_and_refuse_nonsense() {
    let d = DaySet::parse("1-3,10").unwrap();
    assert!(d.contains(1) && d.contains(3) && d.contains(10));
    assert!(!d.contains(4) && !d.contains(0));
    for bad in ["", "0", "32", "5-3", "a", "1-"] {
        assert!(DaySet::parse(bad).is_err(), "{bad:?}");
    }
}
