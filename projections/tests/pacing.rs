//! The pacing curve learned from the log's history, and the evidence `behind_pace`
//! needs before it calls a breakdown or a critical: hand-computed histories.
//!
//! History months May to October 2026 have 21, 22, 23, 21, 22 and 22 working days
//! (131 in all); November has 21, and Wednesday the 18th is its 13th. A booking on
//! working day w of a month of n_m days counts as landed by November's day k when
//! w × 21 ≤ k × n_m.

use pacer_projections::alerts::{AlertConfig, Rule, Severity};
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{CustomerKind, EventBody, PlanBasis, PlanLine, PlanPublished};
use pacer_projections::model::Model;
use pacer_projections::pacing::CurveSource;
use pacer_projections::report::{report, ReportQuery};

mod common;
use common::*;

const HISTORY: [&str; 6] = [
    "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10",
];

/// 100 000.00 a month for each of `reps`, from May to November: one plan event a
/// month with every rep's line (the last plan published for a month governs it).
fn plans(log: &mut Log, reps: &[&str]) {
    for m in HISTORY.iter().chain(["2026-11"].iter()) {
        plan_of_all(log, m, reps);
    }
}

/// `rep` of `team`, each of `months` booked by `book(working days) → (working day
/// index, minor)`.
fn rep_with_history(
    log: &mut Log,
    rep: &str,
    team: &str,
    months: &[&str],
    book: impl Fn(&[pacer_projections::time::Date]) -> Vec<(usize, i64)>,
) {
    register(log, rep, team);
    for m in months {
        let days = working_days(m);
        for (i, (w, minor)) in book(&days).into_iter().enumerate() {
            let on = days[w].to_string();
            log.add(
                &format!("{on}T10:00:00Z"),
                won_by(
                    rep,
                    &format!("{rep}-{m}-{i}"),
                    minor,
                    &on,
                    CustomerKind::New,
                    "analytics",
                ),
            );
        }
    }
}

/// 30 000.00 on the first working day, 70 000.00 on the last: a back-loaded month.
fn back_loaded(days: &[pacer_projections::time::Date]) -> Vec<(usize, i64)> {
    vec![(0, 3_000_000), (days.len() - 1, 7_000_000)]
}

/// 1 000.00 on every working day: a flat month.
fn flat(days: &[pacer_projections::time::Date]) -> Vec<(usize, i64)> {
    (0..days.len()).map(|w| (w, 100_000)).collect()
}

fn total_row(state: &Model, rep: &str) -> (Option<i64>, Option<CurveSource>) {
    let rows = report(
        state,
        month("2026-11"),
        &ReportQuery {
            rep: Some(rep.into()),
            bucket: Some(Bucket::Total),
            ..ReportQuery::default()
        },
    );
    (rows[0].expected_to_date, rows[0].curve)
}

#[test]
fn expected_to_date_follows_each_teams_curve_and_falls_back_to_the_organisations() {
    let mut log = Log::new();
    plans(&mut log, &["nora", "sam", "eve"]);
    // north back-loads: by day 13 only the first-day bookings (30 000.00 of each
    // 100 000.00) have landed, whatever the month's length: 30%.
    rep_with_history(&mut log, "nora", "north", &HISTORY, back_loaded);
    // south is flat: by day 13, floor(13 × n_m ÷ 21) of each month's n_m days:
    // 13 + 13 + 14 + 13 + 13 + 13 = 79 of 131.
    rep_with_history(&mut log, "sam", "south", &HISTORY, flat);
    // east has five months only (June to October), back-loaded: too little for a
    // curve of its own, so the organisation's: 30 000.00 × 6 + 79 000.00 +
    // 30 000.00 × 5 = 409 000.00 of 600 000.00 + 131 000.00 + 500 000.00.
    rep_with_history(&mut log, "eve", "east", &HISTORY[1..], back_loaded);
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    assert_eq!(
        total_row(&s, "nora"),
        (Some(3_000_000), Some(CurveSource::Team { months: 6 }))
    );
    // A learned share is rounded to a whole percent: 79 / 131 = 60.3% → 60%.
    assert_eq!(
        total_row(&s, "sam"),
        (Some(6_000_000), Some(CurveSource::Team { months: 6 }))
    );
    // 409 000 / 1 231 000 = 33.2% → 33%.
    assert_eq!(
        total_row(&s, "eve"),
        (Some(3_300_000), Some(CurveSource::Org { months: 6 }))
    );
    // Activities always follow the straight line; the linear setting, money too:
    // 10 000 000 × 13 / 21 = 6 190 476.19.
    let mut linear = log.org.clone();
    linear.pace.curve = pacer_projections::pacing::CurveMode::Linear;
    let mut s = Model::new(linear);
    for r in &log.events {
        s.apply(r, None);
    }
    assert_eq!(
        total_row(&s, "nora"),
        (Some(6_190_476), Some(CurveSource::Linear))
    );
}

#[test]
fn with_too_little_history_expected_to_date_is_linear() {
    // Five months back-loaded for the only team, and so for the organisation too.
    let mut log = Log::new();
    plans(&mut log, &["nora"]);
    rep_with_history(&mut log, "nora", "north", &HISTORY[1..], back_loaded);
    log.tick("2026-11-18T09:00:00Z");
    assert_eq!(
        total_row(&log.state(), "nora"),
        (Some(6_190_476), Some(CurveSource::Linear))
    );
    // The run-rate projection divides by the same share: 20 000.00 booked by the 18th
    // projects to 20 000.00 × 21/13 = 32 307.69.
    log.add(
        "2026-11-10T10:00:00Z",
        won_by(
            "nora",
            "n1",
            2_000_000,
            "2026-11-10",
            CustomerKind::New,
            "analytics",
        ),
    );
    let s = log.state();
    let rows = report(&s, month("2026-11"), &ReportQuery::default());
    let total = rows.iter().find(|r| *r.bucket == Bucket::Total).unwrap();
    assert_eq!(total.projection, Some(3_230_769));
}

/// Dana of team west: 6 months at 50% of a 100 000.00 plan, 16 000.00, 17 000.00 and
/// 17 000.00 booked on working days 5, 10 and 15 of each; nothing yet in November.
fn dana() -> Log {
    let mut log = Log::new();
    plans(&mut log, &["dana"]);
    rep_with_history(&mut log, "dana", "west", &HISTORY, |_| {
        vec![(4, 1_600_000), (9, 1_700_000), (14, 1_700_000)]
    });
    log
}

fn dana_on(tick: &str) -> (Severity, String) {
    let mut log = dana();
    log.tick(tick);
    let s = log.state();
    let a = s
        .alert_book()
        .iter()
        .find(|a| a.rep == "dana" && a.rule() == Rule::BehindPace && a.is_standing())
        .expect("dana is behind")
        .clone();
    (a.finding.severity, a.finding.message)
}

#[test]
fn a_rep_with_too_few_expected_deals_is_not_critical_yet() {
    // Three bookings a month; by day 3 none has typically landed (0 expected): her
    // record says 50%, but this month has shown nothing either way yet. A warning.
    assert_eq!(dana_on("2026-11-04T09:00:00Z").0, Severity::Warning);
    // Day 8 (the 11th): the day-5 booking has typically landed, 16 000 of 50 000 of a
    // month's bookings: 3 × 0.32 = 0.96 expected, still short of one.
    assert_eq!(dana_on("2026-11-11T09:00:00Z").0, Severity::Warning);
    // Day 10 (the 13th): 3 × 33 000 / 50 000 = 1.98 expected, nothing booked, and a
    // record of 50%: the month will very likely end below 70%.
    let (severity, message) = dana_on("2026-11-13T09:00:00Z");
    assert_eq!(severity, Severity::Critical);
    assert!(
        message.contains("dana closed 50% of plan over the last 3 months"),
        "{message}"
    );
}

/// Ed of team east: 100 000.00 a month, half new, half retention; 95 000.00 in
/// analytics, 5 000.00 in connect. Each history month: four new deals of 10 000.00
/// (working days 2, 4, 6, 8) and 57 500.00 analytics + 2 500.00 connect renewed by
/// existing customers (days 3 and 5): 6 bookings, new_customer at 80% of plan,
/// connect at 50%. In November, 80 000.00 of existing business by the 18th, no new.
fn ed(cfg: AlertConfig) -> Model {
    let mut log = Log::with(cfg);
    register(&mut log, "ed", "east");
    let lines = [
        ("total", 10_000_000),
        ("new_customer", 5_000_000),
        ("retention", 5_000_000),
        ("product:analytics", 9_500_000),
        ("product:connect", 500_000),
    ];
    for m in HISTORY.iter().chain(["2026-11"].iter()) {
        plan_of(&mut log, "ed", m, &lines);
    }
    for m in HISTORY {
        let days = working_days(m);
        let mut deal = 0;
        let mut book = |w: usize, minor: i64, kind: CustomerKind, product: &str| {
            let on = days[w].to_string();
            deal += 1;
            log.add(
                &format!("{on}T10:00:00Z"),
                won_by("ed", &format!("ed-{m}-{deal}"), minor, &on, kind, product),
            );
        };
        for w in [1, 3, 5, 7] {
            book(w, 1_000_000, CustomerKind::New, "analytics");
        }
        book(2, 5_750_000, CustomerKind::Existing, "analytics");
        book(4, 250_000, CustomerKind::Existing, "connect");
    }
    log.add(
        "2026-11-10T10:00:00Z",
        won_by(
            "ed",
            "ed-nov",
            8_000_000,
            "2026-11-10",
            CustomerKind::Existing,
            "analytics",
        ),
    );
    log.tick("2026-11-18T09:00:00Z");
    log.state()
}

fn behind_buckets(s: &Model) -> Vec<Bucket> {
    s.alert_book()
        .iter()
        .filter(|a| a.rule() == Rule::BehindPace && a.is_standing())
        .filter_map(|a| a.finding.bucket.clone())
        .collect()
}

#[test]
fn a_breakdown_raises_only_when_its_shortfall_is_material_and_its_evidence_enough() {
    // Team east's history all landed by day 8, so the share by the 18th is 1.
    // total: this month's pace 80% weighs 6 ÷ (6 + 20) against the record's 100%:
    // 80 000 × 6/26 + 100 000 × 20/26 = 95 384.62, on track.
    // new_customer: 3 expected bookings (6 × 50 000 / 100 000), pace 0, record 80%:
    // 50 000 × 0.8 × 20/23 = 34 782.61, behind by 15 217.39 ≥ 10% of the total plan.
    // connect: 0.3 expected bookings, record 50%: 5 000 × 0.5 × 20/20.3 = 2 463.05,
    // behind by 2 536.95, under 10 000.00, and too few bookings due to judge.
    let s = ed(AlertConfig::default());
    assert_eq!(behind_buckets(&s), vec![Bucket::NewCustomer]);
    let a = s
        .alert_book()
        .iter()
        .find(|a| a.finding.bucket == Some(Bucket::NewCustomer))
        .unwrap();
    assert_eq!(a.finding.figures.projected, Some(3_478_261));
    assert_eq!(a.finding.severity, Severity::Warning);
    // Material at 2% of the month, but still too little evidence: silent.
    let mut cfg = AlertConfig::default();
    cfg.behind_pace.min_share_of_total_pct =
        pacer_projections::event::Percent::from_hundredths(200).unwrap();
    assert_eq!(behind_buckets(&ed(cfg.clone())), vec![Bucket::NewCustomer]);
    // And with no evidence asked for, connect raises too.
    cfg.behind_pace.min_expected_deals = 0;
    assert_eq!(
        behind_buckets(&ed(cfg)),
        vec![Bucket::NewCustomer, Bucket::Product("connect".into())]
    );
}

#[test]
fn a_late_booking_moves_the_curve_and_its_void_takes_it_back() {
    // A late booking of 50 000.00 for October (the 15th, working day 11: landed by
    // day 13) moves north's share from 180 000 / 600 000 = 30% to 230 000 / 650 000 =
    // 35.4% → 35%; voided again, it leaves every figure as it was.
    let mut log = Log::new();
    plans(&mut log, &["nora"]);
    rep_with_history(&mut log, "nora", "north", &HISTORY, back_loaded);
    log.tick("2026-11-18T09:00:00Z");
    let before = log.state();
    log.add_id(
        "late",
        "2026-11-18T10:00:00Z",
        won_by(
            "nora",
            "late",
            5_000_000,
            "2026-10-15",
            CustomerKind::New,
            "analytics",
        ),
    );
    assert_eq!(
        total_row(&log.state(), "nora"),
        (Some(3_500_000), Some(CurveSource::Team { months: 6 }))
    );
    log.add(
        "2026-11-18T11:00:00Z",
        EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: "late".into(),
            reason: None,
        }),
    );
    let after = log.state();
    assert_eq!(total_row(&after, "nora"), total_row(&before, "nora"));
    assert_eq!(
        report(&after, month("2026-11"), &ReportQuery::default()),
        report(&before, month("2026-11"), &ReportQuery::default())
    );
}

#[test]
fn when_the_organisations_curve_goes_every_rep_on_it_is_judged_again() {
    // A curve from one month of history. North's Nora booked in October; South's Sam
    // never did, so his team follows the organisation's curve: Nora's October.
    // Voiding her booking takes the organisation's curve away: Sam's expected-to-date
    // falls back to the straight line, and his standing alert must follow.
    let mut log = Log::new();
    log.org.pace.min_history_months = 1;
    register(&mut log, "nora", "north");
    register(&mut log, "sam", "south");
    for m in ["2026-10", "2026-11"] {
        plan_of_all(&mut log, m, &["nora", "sam"]);
    }
    log.add_id(
        "late",
        "2026-10-30T10:00:00Z",
        won_by(
            "nora",
            "n1",
            5_000_000,
            "2026-10-30",
            CustomerKind::New,
            "analytics",
        ),
    );
    log.tick("2026-11-18T09:00:00Z");
    let expected = |s: &Model| {
        s.alert_book()
            .iter()
            .find(|a| a.rep == "sam" && a.is_standing() && a.rule() == Rule::BehindPace)
            .and_then(|a| a.finding.figures.expected_to_date)
    };
    // The 30th is October's last working day: nothing has landed by day 13.
    assert_eq!(expected(&log.state()), Some(0));
    log.add(
        "2026-11-18T10:00:00Z",
        EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: "late".into(),
            reason: None,
        }),
    );
    // 100 000.00 × 13/21.
    assert_eq!(expected(&log.state()), Some(6_190_476));
}

/// 100 000.00 of `total` for each of `reps` in month `m`, in one plan event.
fn plan_of_all(log: &mut Log, m: &str, reps: &[&str]) {
    let version = log.events.len() as u32;
    log.add(
        "2026-01-02T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: "fy".into(),
            version,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-01"),
            effective_from: month(m),
            currency: eur(),
            lines: reps
                .iter()
                .map(|rep| PlanLine {
                    rep: (*rep).into(),
                    month: month(m),
                    bucket: Bucket::Total,
                    target: 10_000_000,
                })
                .collect(),
        }),
    );
}

/// The team page's course of the month, worked by hand on the straight line (no
/// history yet): November 2026 has 21 working days and the 18th is the 13th. Two reps
/// with 21 000.00 and 10 500.00 plans expect 1 500.00 a working day together; ana
/// booked 5 000.00 on the 2nd and 3 000.00 on Saturday the 7th (it counts from the
/// next working day on), bo nothing yet.
#[test]
fn a_teams_course_adds_up_day_by_day_and_draws_the_forecast_from_today() {
    let mut log = Log::new();
    register(&mut log, "ana", "north");
    register(&mut log, "bo", "north");
    log.add(
        "2026-10-01T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: "fy".into(),
            version: 1,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-01"),
            effective_from: month("2026-01"),
            currency: eur(),
            lines: [("ana", 2_100_000), ("bo", 1_050_000)]
                .iter()
                .map(|(rep, target)| PlanLine {
                    rep: (*rep).into(),
                    month: month("2026-11"),
                    bucket: Bucket::Total,
                    target: *target,
                })
                .collect(),
        }),
    );
    log.add(
        "2026-11-02T10:00:00Z",
        won_by("ana", "a1", 500_000, "2026-11-02", CustomerKind::New, "x"),
    );
    log.add(
        "2026-11-07T10:00:00Z",
        won_by("ana", "a2", 300_000, "2026-11-07", CustomerKind::New, "x"),
    );
    log.tick("2026-11-18T15:00:00Z");
    let state = log.state();
    let reps = [("ana", 2_100_000), ("bo", 1_050_000)];
    let course = pacer_projections::report::team_course(
        &state,
        "north",
        month("2026-11"),
        &reps,
        Some(3_000_000),
    );
    assert_eq!(course.len(), 21);
    let day = |i: usize| &course[i];
    assert_eq!(day(0).date.to_string(), "2026-11-02");
    assert_eq!(
        (day(0).plan_to_date, day(0).actual),
        (150_000, Some(500_000))
    );
    // Friday the 6th: the Saturday booking is not in yet; Monday the 9th: it is.
    assert_eq!(day(4).actual, Some(500_000));
    assert_eq!(day(5).actual, Some(800_000));
    // Today, the 13th working day: the forecast line starts at today's actual.
    assert_eq!(day(12).date.to_string(), "2026-11-18");
    assert_eq!(
        (day(12).plan_to_date, day(12).actual, day(12).forecast),
        (1_950_000, Some(800_000), Some(800_000))
    );
    // Eight working days to go, (30 000.00 − 8 000.00) ÷ 8 = 2 750.00 a day.
    assert_eq!((day(13).actual, day(13).forecast), (None, Some(1_075_000)));
    assert_eq!(day(20).forecast, Some(3_000_000));
    assert_eq!(day(20).plan_to_date, 3_150_000);
    assert!(course[..12].iter().all(|d| d.forecast.is_none()));
    // On today the plan expected is the sum of the report rows' expected_to_date.
    let rows = report(
        &state,
        month("2026-11"),
        &ReportQuery {
            bucket: Some(Bucket::Total),
            ..ReportQuery::default()
        },
    );
    let expected: i64 = rows.iter().filter_map(|r| r.expected_to_date).sum();
    assert_eq!(expected, day(12).plan_to_date);
}
