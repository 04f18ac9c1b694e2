//! The alert rules on both sides of every threshold, switched off, silent without
//! inputs; and the life of an alert: raised once, escalated, resolved, reopened,
//! superseded by the next week's, acknowledged; the focus limit and promotion.
//!
//! Every expected figure is worked out by hand in the comments. The org is in UTC
//! unless a test says otherwise; 2026-11 has 21 working days and Wednesday
//! 2026-11-18 is the 13th of them, so f = 13/21 there. With less than six months of
//! history the pacing curve is the straight line, and a rep with no months before
//! this one has no track record and no bookings a month: `behind_pace` projects
//! actual + the rest of the month at plan pace, A + P × (1 − f).

use pacer_projections::alerts::{
    alert_id, alert_views, AlertConfig, AlertQuery, Change, Closure, Rule, Severity, Status,
    StatusFilter,
};
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{
    CustomerKind, DealLost, DealStageChanged, EventBody, Percent, PlanBasis, PlanLine,
    PlanPublished, RepDeparted,
};
use pacer_projections::model::Model;
use pacer_projections::time::{Date, IsoWeek};

mod common;
use common::*;

/// Ana's November: total plan 100 000.00 and the won amount given, ticked on
/// Wednesday 2026-11-18 (f = 13/21).
fn pace_case(won_minor: i64) -> Log {
    let mut log = Log::new();
    log.plan("2026-11", &[("total", 10_000_000)]);
    if won_minor > 0 {
        log.add(
            "2026-11-10T10:00:00Z",
            won("d1", won_minor, "2026-11-10", CustomerKind::New),
        );
    }
    log.tick("2026-11-18T09:00:00Z");
    log
}

// ---------------------------------------------------------------------------
// behind_pace
// ---------------------------------------------------------------------------

#[test]
fn behind_pace_fires_below_90_percent_projected_and_not_at_it() {
    // Projected = A + 10 000 000 × 8/21 = A + 3 809 523.81. A = 51 904.76:
    // 9 000 000.57 → 90 000.01, not below 90%. A = 51 904.75: 8 999 998.81 → 89 999.99.
    assert!(standing(&pace_case(5_190_476).state(), Rule::BehindPace).is_empty());
    let a = one(&pace_case(5_190_475).state(), Rule::BehindPace);
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.bucket, Some(Bucket::Total));
    assert_eq!(a.finding.month, month("2026-11"));
    assert_eq!(a.finding.figures.plan, Some(10_000_000));
    assert_eq!(a.finding.figures.actual, Some(5_190_475));
    assert_eq!(a.finding.figures.projected, Some(8_999_999));
    // Expected to date: 10 000 000 × 13 / 21 = 6 190 476.19 → 6 190 476.
    assert_eq!(a.finding.figures.expected_to_date, Some(6_190_476));
    assert_eq!(a.finding.figures.gap, Some(5_190_475 - 6_190_476));
    // Shortfall: plan − projected = 10 000 000 − 8 999 999 = 1 000 001 (10 000.01).
    assert_eq!(a.finding.money_at_stake, 1_000_001);
    // The percentage is cut, not rounded, so it never reads as the threshold itself.
    assert!(
        a.finding
            .message
            .contains("heading for 89.99% of plan for 2026-11: 89999.99 of 100000.00"),
        "{}",
        a.finding.message
    );
}

#[test]
fn behind_pace_is_critical_below_70_percent() {
    // Without history, critical is arithmetic: even the rest of the month at plan pace
    // ends below 70%. 3 190 475 + 3 809 524 = 6 999 999 < 7 000 000: critical;
    // 3 190 476 + 3 809 524 = 7 000 000: a warning.
    let a = one(&pace_case(3_190_475).state(), Rule::BehindPace);
    assert_eq!(a.severity, Severity::Critical);
    assert!(
        a.finding
            .message
            .contains("even the rest of the month at plan pace ends at 69.99%"),
        "{}",
        a.finding.message
    );
    assert_eq!(
        one(&pace_case(3_190_476).state(), Rule::BehindPace).severity,
        Severity::Warning
    );
}

#[test]
fn behind_pace_counts_the_weighted_pipeline_as_forecast() {
    // Actual 40 000.00 runs at 64 615.38; a 60 000.00 deal at 90% closing this month
    // makes the forecast 40 000 + 54 000 = 94 000.00 ≥ 90%: silent.
    let mut log = pace_case(4_000_000);
    log.add(
        "2026-11-18T10:00:00Z",
        opened(
            "d2",
            6_000_000,
            "2026-11-27",
            90,
            "analytics",
            CustomerKind::New,
        ),
    );
    assert!(standing(&log.state(), Rule::BehindPace).is_empty());
    // At 80% the forecast is 88 000.00: below 90%, warning; at stake 12 000.00.
    let mut log = pace_case(4_000_000);
    log.add(
        "2026-11-18T10:00:00Z",
        opened(
            "d2",
            6_000_000,
            "2026-11-27",
            80,
            "analytics",
            CustomerKind::New,
        ),
    );
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.finding.figures.forecast, Some(8_800_000));
    assert_eq!(a.finding.money_at_stake, 1_200_000);
    // At the tick, before the deal was opened, it was projected at 40 000.00 +
    // 38 095.24 = 78 095.24: a warning then too.
    assert_eq!(a.finding.severity, Severity::Warning);
    assert_eq!(a.severity, Severity::Warning);
}

#[test]
fn behind_pace_waits_for_three_working_days_and_can_be_switched_off() {
    // Nothing booked. Tuesday 2026-11-03 is working day 2: silent. Wednesday the 4th
    // is day 3: projected 0 + 100 000.00 × 18/21 = 85 714.29, a warning (the rest of
    // the month at plan pace still makes 70%).
    let mut log = Log::new();
    log.plan("2026-11", &[("total", 10_000_000)]);
    log.tick("2026-11-03T09:00:00Z");
    assert!(standing(&log.state(), Rule::BehindPace).is_empty());
    log.tick("2026-11-04T09:00:00Z");
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.figures.projected, Some(8_571_429));

    let mut off = AlertConfig::default();
    off.behind_pace.enabled = false;
    let mut log2 = Log::with(off);
    log2.events = log.events.clone();
    assert!(standing(&log2.state(), Rule::BehindPace).is_empty());
}

#[test]
fn no_plan_means_no_pace_alert() {
    let mut log = Log::new();
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    assert!(standing(&s, Rule::BehindPace).is_empty());
    assert!(standing(&s, Rule::ActivityBehind).is_empty());
    assert!(standing(&s, Rule::LowCoverage).is_empty());
    assert!(standing(&s, Rule::MonthMissed).is_empty());
}

#[test]
fn a_total_behind_pace_carries_the_breakdowns_that_explain_it() {
    // geo:emea has the same plan as total (one region); product:analytics is half,
    // product:platform a fifth. Nothing booked: the total is behind, and its
    // breakdowns are in its explanation, not alerts of their own. The region only
    // repeats the total and is left out; each product line is behind its
    // expected-to-date: 50 000.00 × 13/21 = 30 952.38 and 20 000.00 × 13/21 =
    // 12 380.95, both a tenth of the total's gap (61 904.76) or more.
    let mut log = Log::new();
    log.plan(
        "2026-11",
        &[
            ("total", 10_000_000),
            ("geo:emea", 10_000_000),
            ("product:analytics", 5_000_000),
            ("product:platform", 2_000_000),
        ],
    );
    log.tick("2026-11-18T09:00:00Z");
    let alerts = standing(&log.state(), Rule::BehindPace);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.finding.bucket, Some(Bucket::Total));
    let explained: Vec<(String, i64, i64)> = a
        .finding
        .explanation
        .iter()
        .map(|s| (s.bucket.to_string(), s.expected_to_date, s.gap()))
        .collect();
    assert_eq!(
        explained,
        vec![
            ("product:analytics".to_owned(), 3_095_238, -3_095_238),
            ("product:platform".to_owned(), 1_238_095, -1_238_095),
        ]
    );
    assert!(
        a.finding
            .message
            .contains("behind most in product:analytics (-30952.38), product:platform (-12380.95)"),
        "{}",
        a.finding.message
    );
}

// ---------------------------------------------------------------------------
// activity_behind
// ---------------------------------------------------------------------------

fn meetings_at(n: usize, tick: &str) -> Log {
    let mut log = Log::new();
    log.plan(
        "2026-11",
        &[("total", 10_000_000), ("activity:meeting", 21)],
    );
    for _ in 0..n {
        log.add("2026-11-10T10:00:00Z", activity("meeting"));
    }
    // Enough revenue that behind_pace stays out of the way.
    log.add(
        "2026-11-10T10:00:00Z",
        won("d1", 9_000_000, "2026-11-10", CustomerKind::New),
    );
    log.tick(tick);
    log
}

fn meetings(n: usize) -> Log {
    meetings_at(n, "2026-11-18T09:00:00Z")
}

#[test]
fn activity_behind_compares_with_expected_to_date() {
    // Expected: 21 × 13/21 = 13; the month heads for actual + 21 × 8/21 = actual + 8
    // (no record: the rest at plan pace). Behind needs both below 80%: of 13 (10.4)
    // and of 21 (16.8). 9 heads for 17: fine. 8 heads for 16: a warning.
    assert!(standing(&meetings(10).state(), Rule::ActivityBehind).is_empty());
    assert!(standing(&meetings(9).state(), Rule::ActivityBehind).is_empty());
    let a = one(&meetings(8).state(), Rule::ActivityBehind);
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.bucket, Some(Bucket::Activity("meeting".into())));
    assert_eq!(a.finding.figures.expected_to_date, Some(13));
    assert_eq!(a.finding.figures.gap, Some(-5));
    assert_eq!(a.finding.figures.projected, Some(16));
    // Revenue at risk: total plan × (13 − 8) / 21 = 2 380 952.38 → 2 380 952.
    assert_eq!(a.finding.money_at_stake, 2_380_952);
    // Mid-month none at all is still a warning: twice plan pace for the rest (16)
    // would make 50%.
    assert_eq!(
        one(&meetings(0).state(), Rule::ActivityBehind).severity,
        Severity::Warning
    );
    // Friday the 27th is day 20: the rest is 1 meeting at plan pace, 2 at twice it.
    // 8 + 2 = 10 < 10.5: critical; 9 + 2 = 11: a warning.
    assert_eq!(
        one(
            &meetings_at(8, "2026-11-27T09:00:00Z").state(),
            Rule::ActivityBehind
        )
        .severity,
        Severity::Critical
    );
    assert_eq!(
        one(
            &meetings_at(9, "2026-11-27T09:00:00Z").state(),
            Rule::ActivityBehind
        )
        .severity,
        Severity::Warning
    );

    let mut off = AlertConfig::default();
    off.activity_behind.enabled = false;
    let mut log = Log::with(off);
    log.events = meetings(2).events;
    assert!(standing(&log.state(), Rule::ActivityBehind).is_empty());
}

#[test]
fn activity_behind_waits_until_enough_activities_were_due() {
    // Two proposals planned: 2 × 13/21 = 1.24 → 1 due by the 18th, fewer than 5. None
    // done is no news yet.
    let mut log = Log::new();
    log.plan(
        "2026-11",
        &[("total", 10_000_000), ("activity:proposal", 2)],
    );
    log.add(
        "2026-11-10T10:00:00Z",
        won("d1", 9_000_000, "2026-11-10", CustomerKind::New),
    );
    log.tick("2026-11-18T09:00:00Z");
    assert!(standing(&log.state(), Rule::ActivityBehind).is_empty());
}

// ---------------------------------------------------------------------------
// product_concentration and customer_mix
// ---------------------------------------------------------------------------

/// Open deals closing in December (so no pace rule reacts), ticked on 2026-11-18.
fn pipeline(deals: &[(i64, &str, CustomerKind)], alerts: AlertConfig) -> Model {
    let mut log = Log::with(alerts);
    for (i, (minor, product, kind)) in deals.iter().enumerate() {
        log.add(
            "2026-11-02T10:00:00Z",
            opened(&format!("p{i}"), *minor, "2026-12-15", 50, product, *kind),
        );
    }
    log.tick("2026-11-18T09:00:00Z");
    log.state()
}

fn products(amounts: &[(i64, &str)]) -> Model {
    let deals: Vec<(i64, &str, CustomerKind)> = amounts
        .iter()
        .map(|(a, p)| (*a, *p, CustomerKind::New))
        .collect();
    let mut cfg = AlertConfig::default();
    cfg.customer_mix.enabled = false;
    pipeline(&deals, cfg)
}

fn products_with(amounts: &[(i64, &str)], mut cfg: AlertConfig) -> Model {
    let deals: Vec<(i64, &str, CustomerKind)> = amounts
        .iter()
        .map(|(a, p)| (*a, *p, CustomerKind::New))
        .collect();
    cfg.customer_mix.enabled = false;
    pipeline(&deals, cfg)
}

#[test]
fn product_concentration_fires_above_70_percent() {
    // 71% analytics: 7 100 of 10 000. At stake: 7 100.00 − 70% × 10 000.00 = 100.00.
    let s = products(&[
        (710_000, "analytics"),
        (200_000, "platform"),
        (90_000, "connect"),
    ]);
    let a = one(&s, Rule::ProductConcentration);
    assert_eq!(a.finding.bucket, Some(Bucket::Product("analytics".into())));
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.money_at_stake, 10_000);
    assert_eq!(a.finding.figures.pipeline, Some(1_000_000));
    // Exactly 70% is not over the threshold.
    let s = products(&[
        (700_000, "analytics"),
        (200_000, "platform"),
        (100_000, "connect"),
    ]);
    assert!(standing(&s, Rule::ProductConcentration).is_empty());
    // A concentrated pipeline is a risk, not a month that will be missed: never
    // critical by default, even at 91%.
    let concentrated = [
        (910_000, "analytics"),
        (50_000, "platform"),
        (40_000, "connect"),
    ];
    assert_eq!(
        one(&products(&concentrated), Rule::ProductConcentration).severity,
        Severity::Warning
    );
    // With a critical threshold of 90% configured: over it critical, at it a warning.
    let mut cfg = AlertConfig::default();
    cfg.product_concentration.critical_above_pct = Percent::from_hundredths(9_000);
    assert_eq!(
        one(
            &products_with(&concentrated, cfg.clone()),
            Rule::ProductConcentration
        )
        .severity,
        Severity::Critical
    );
    let s = products_with(
        &[
            (900_000, "analytics"),
            (50_000, "platform"),
            (50_000, "connect"),
        ],
        cfg,
    );
    assert_eq!(
        one(&s, Rule::ProductConcentration).severity,
        Severity::Warning
    );
}

#[test]
fn product_concentration_needs_three_open_deals_and_a_named_line() {
    // Two deals: a share says nothing yet.
    let s = products(&[(900_000, "analytics"), (100_000, "platform")]);
    assert!(standing(&s, Rule::ProductConcentration).is_empty());
    // No pipeline at all.
    assert!(standing(&products(&[]), Rule::ProductConcentration).is_empty());
    // Switched off.
    let mut cfg = AlertConfig::default();
    cfg.customer_mix.enabled = false;
    cfg.product_concentration.enabled = false;
    let s = pipeline(
        &[
            (900_000, "analytics", CustomerKind::New),
            (50_000, "platform", CustomerKind::New),
            (50_000, "connect", CustomerKind::New),
        ],
        cfg,
    );
    assert!(standing(&s, Rule::ProductConcentration).is_empty());
}

fn mix(new_minor: i64, existing_minor: i64) -> Model {
    mix_with(new_minor, existing_minor, AlertConfig::default())
}

fn mix_with(new_minor: i64, existing_minor: i64, mut cfg: AlertConfig) -> Model {
    cfg.product_concentration.enabled = false;
    pipeline(
        &[
            (new_minor, "analytics", CustomerKind::New),
            (existing_minor / 2, "platform", CustomerKind::Existing),
            (
                existing_minor - existing_minor / 2,
                "connect",
                CustomerKind::Existing,
            ),
        ],
        cfg,
    )
}

#[test]
fn customer_mix_fires_outside_50_plus_or_minus_20() {
    // 30% and 70% new are inside the band; 29% and 71% are outside.
    assert!(standing(&mix(300_000, 700_000), Rule::CustomerMix).is_empty());
    assert!(standing(&mix(700_000, 300_000), Rule::CustomerMix).is_empty());
    let low = one(&mix(290_000, 710_000), Rule::CustomerMix);
    assert_eq!(low.severity, Severity::Warning);
    // Outside the band by 30% × 10 000.00 − 2 900.00 = 100.00.
    assert_eq!(low.finding.money_at_stake, 10_000);
    assert!(low.finding.suggested_action.contains("new logos"));
    let high = one(&mix(710_000, 290_000), Rule::CustomerMix);
    assert!(high.finding.suggested_action.contains("existing customers"));
    // Never critical by default (the mix is a risk, not a missed month); with a
    // critical tolerance of ± 40 configured, 9% new is critical and 10% a warning.
    assert_eq!(
        one(&mix(90_000, 910_000), Rule::CustomerMix).severity,
        Severity::Warning
    );
    let mut cfg = AlertConfig::default();
    cfg.customer_mix.critical_tolerance_pct = Percent::from_hundredths(4_000);
    assert_eq!(
        one(&mix_with(90_000, 910_000, cfg.clone()), Rule::CustomerMix).severity,
        Severity::Critical
    );
    assert_eq!(
        one(&mix_with(100_000, 900_000, cfg), Rule::CustomerMix).severity,
        Severity::Warning
    );
}

#[test]
fn customer_mix_can_be_switched_off() {
    let mut cfg = AlertConfig::default();
    cfg.product_concentration.enabled = false;
    cfg.customer_mix.enabled = false;
    let s = pipeline(
        &[
            (900_000, "analytics", CustomerKind::New),
            (50_000, "platform", CustomerKind::New),
            (50_000, "connect", CustomerKind::New),
        ],
        cfg,
    );
    assert!(standing(&s, Rule::CustomerMix).is_empty());
}

// ---------------------------------------------------------------------------
// low_coverage
// ---------------------------------------------------------------------------

fn coverage(pipeline_minor: i64) -> Model {
    let mut cfg = AlertConfig::default();
    cfg.low_coverage.critical_min_ratio = Some(100);
    coverage_at(pipeline_minor, "2026-11-18T09:00:00Z", cfg)
}

/// December's plan and the pipeline for it, ticked at `tick` (2026-11-18 is working
/// day 13 of 21: 8 left, inside the last 10 where coverage is judged).
fn coverage_at(pipeline_minor: i64, tick: &str, mut cfg: AlertConfig) -> Model {
    cfg.product_concentration.enabled = false;
    cfg.customer_mix.enabled = false;
    let mut log = Log::with(cfg);
    log.plan("2026-12", &[("total", 1_000_000)]);
    if pipeline_minor > 0 {
        log.add(
            "2026-11-02T10:00:00Z",
            opened(
                "c1",
                pipeline_minor,
                "2026-12-10",
                30,
                "analytics",
                CustomerKind::New,
            ),
        );
    }
    // A deal closing in January does not cover December.
    log.add(
        "2026-11-02T10:00:00Z",
        opened(
            "c2",
            9_000_000,
            "2027-01-10",
            30,
            "analytics",
            CustomerKind::New,
        ),
    );
    log.tick(tick);
    log.state()
}

#[test]
fn low_coverage_fires_below_three_times_next_months_plan() {
    // December plan 10 000.00: 30 000.00 of pipeline is 3×, enough.
    assert!(standing(&coverage(3_000_000), Rule::LowCoverage).is_empty());
    let a = one(&coverage(2_999_999), Rule::LowCoverage);
    assert_eq!(a.finding.month, month("2026-12"));
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.figures.pipeline, Some(2_999_999));
    // With a critical ratio of 1× configured (none by default): below it critical,
    // exactly at it a warning.
    assert_eq!(
        one(&coverage(999_999), Rule::LowCoverage).severity,
        Severity::Critical
    );
    assert_eq!(
        one(&coverage(1_000_000), Rule::LowCoverage).severity,
        Severity::Warning
    );
    // At stake with no pipeline: the whole remaining plan; with 15 000.00, 10 000 − 5 000.
    assert_eq!(
        one(&coverage(0), Rule::LowCoverage).finding.money_at_stake,
        1_000_000
    );
    assert_eq!(
        one(&coverage(1_500_000), Rule::LowCoverage)
            .finding
            .money_at_stake,
        500_000
    );
    // By default never critical; and early in November (Tuesday the 10th is day 7,
    // 14 left) next month's pipeline is still being built: silent.
    let none = AlertConfig::default();
    assert_eq!(
        one(
            &coverage_at(0, "2026-11-18T09:00:00Z", none.clone()),
            Rule::LowCoverage
        )
        .severity,
        Severity::Warning
    );
    assert!(standing(
        &coverage_at(0, "2026-11-10T09:00:00Z", none),
        Rule::LowCoverage
    )
    .is_empty());
}

// ---------------------------------------------------------------------------
// report_card_drop
// ---------------------------------------------------------------------------

fn ratings(list: &[(&str, [u8; 4])]) -> Model {
    let mut cfg = AlertConfig::default();
    cfg.report_card_drop.critical_below_score = Some(250);
    ratings_with(list, cfg)
}

/// Ratings, ticked on 2026-11-18, with the report card's critical threshold at 2.5
/// (none by default: a low rating is a risk to the month, not a missed month).
fn ratings_with(list: &[(&str, [u8; 4])], cfg: AlertConfig) -> Model {
    let mut log = Log::with(cfg);
    for (at, scores) in list {
        log.add(at, rated(*scores));
    }
    log.tick("2026-11-18T09:00:00Z");
    log.state()
}

#[test]
fn report_card_drop_fires_below_3_5() {
    // (3+3+4+3 + 4+3+3+4) / 8 = 3.375 < 3.5, shown cut to 3.37.
    let a = one(
        &ratings(&[
            ("2026-11-02T10:00:00Z", [3, 3, 4, 3]),
            ("2026-11-03T10:00:00Z", [4, 3, 3, 4]),
        ]),
        Rule::ReportCardDrop,
    );
    assert_eq!(a.finding.figures.score, Some(337));
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.finding.bucket, None);
    // Trust is the weakest: (3 + 3) / 2 = 3.
    assert!(
        a.finding.message.contains("weakest: trust 3"),
        "{}",
        a.finding.message
    );
    // Exactly 3.5 is fine.
    let s = ratings(&[
        ("2026-11-02T10:00:00Z", [3, 4, 3, 4]),
        ("2026-11-03T10:00:00Z", [4, 3, 4, 3]),
    ]);
    assert!(standing(&s, Rule::ReportCardDrop).is_empty());
    // Below 2.5 is critical when configured: (2+2+3+2 + 2+3+2+3) / 8 = 2.375; by
    // default it is a warning.
    let low = [
        ("2026-11-02T10:00:00Z", [2, 2, 3, 2]),
        ("2026-11-03T10:00:00Z", [2, 3, 2, 3]),
    ];
    assert_eq!(
        one(&ratings(&low), Rule::ReportCardDrop).severity,
        Severity::Critical
    );
    assert_eq!(
        one(
            &ratings_with(&low, AlertConfig::default()),
            Rule::ReportCardDrop
        )
        .severity,
        Severity::Warning
    );
}

#[test]
fn report_card_drop_needs_two_ratings_in_the_window() {
    // One rating, however bad, is not yet a trend.
    assert!(standing(
        &ratings(&[("2026-11-02T10:00:00Z", [1, 1, 1, 1])]),
        Rule::ReportCardDrop
    )
    .is_empty());
    // August is outside the three-month window (September to November).
    let s = ratings(&[
        ("2026-08-20T10:00:00Z", [1, 1, 1, 1]),
        ("2026-11-02T10:00:00Z", [1, 1, 1, 1]),
    ]);
    assert!(standing(&s, Rule::ReportCardDrop).is_empty());
    let s = ratings(&[
        ("2026-09-20T10:00:00Z", [1, 1, 1, 1]),
        ("2026-11-02T10:00:00Z", [1, 1, 1, 1]),
    ]);
    assert_eq!(one(&s, Rule::ReportCardDrop).severity, Severity::Critical);
}

// ---------------------------------------------------------------------------
// month_missed
// ---------------------------------------------------------------------------

fn october(won_minor: i64, alerts: AlertConfig) -> Model {
    october_at(won_minor, alerts, "2026-11-04T09:00:00Z")
}

/// October's plan and a win against it, ticked at `tick` (Wednesday 2026-11-04 is
/// November's working day 3: inside the first 5, when last month is reviewed).
fn october_at(won_minor: i64, alerts: AlertConfig, tick: &str) -> Model {
    let mut log = Log::with(alerts);
    log.plan("2026-10", &[("total", 1_000_000)]);
    log.add(
        "2026-10-20T10:00:00Z",
        won("o1", won_minor, "2026-10-20", CustomerKind::New),
    );
    log.tick(tick);
    log.state()
}

#[test]
fn month_missed_stands_for_the_review_of_last_month() {
    // Monday the 9th is working day 6: the review is over, the alert resolves.
    let missed = AlertConfig::default();
    assert_eq!(
        standing(
            &october_at(0, missed.clone(), "2026-11-06T09:00:00Z"),
            Rule::MonthMissed
        )
        .len(),
        1
    );
    assert!(standing(
        &october_at(0, missed, "2026-11-09T09:00:00Z"),
        Rule::MonthMissed
    )
    .is_empty());
}

#[test]
fn month_missed_reports_last_month_below_plan() {
    assert!(standing(
        &october(1_000_000, AlertConfig::default()),
        Rule::MonthMissed
    )
    .is_empty());
    let a = one(&october(999_999, AlertConfig::default()), Rule::MonthMissed);
    assert_eq!(a.finding.month, month("2026-10"));
    assert_eq!(a.severity, Severity::Info);
    assert_eq!(a.finding.money_at_stake, 1);
    let mut off = AlertConfig::default();
    off.month_missed.enabled = false;
    assert!(standing(&october(0, off), Rule::MonthMissed).is_empty());
}

// ---------------------------------------------------------------------------
// The life of an alert
// ---------------------------------------------------------------------------

#[test]
fn an_alert_is_raised_once_and_its_figures_follow_the_events() {
    let mut log = pace_case(5_000_000);
    let first = one(&log.state(), Rule::BehindPace);
    assert_eq!(
        first.id,
        alert_id(
            &(Rule::BehindPace, Some(Bucket::Total), month("2026-11")),
            "ana",
            IsoWeek::parse("2026-W47").unwrap()
        )
    );
    assert_eq!(first.act_by, ts("2026-11-20T17:00:00Z"));
    assert_eq!(first.raised_at, ts("2026-11-18T09:00:00Z"));
    // A small win the same day: still behind, the same alert, new figures, no change
    // to announce.
    log.add(
        "2026-11-18T11:00:00Z",
        won("d9", 100_000, "2026-11-18", CustomerKind::New),
    );
    let s = log.state();
    let again = one(&s, Rule::BehindPace);
    assert_eq!(again.id, first.id);
    assert_eq!(again.raised_at, first.raised_at);
    assert_eq!(again.finding.figures.actual, Some(5_100_000));
    assert!(
        s.alert_book().changes().is_empty(),
        "{:?}",
        s.alert_book().changes()
    );
    assert_eq!(s.alert_book().iter().count(), 1);
}

#[test]
fn an_alert_is_raised_again_in_its_week_only_when_it_escalates() {
    // 50 000.00 runs at 5 000 000 × 21/13 = 8 076 923 (80.8%): a warning.
    let mut log = pace_case(5_000_000);
    let id = one(&log.state(), Rule::BehindPace).id;
    // Lose revenue: the won deal is voided, projected 0 → critical.
    log.add(
        "2026-11-18T12:00:00Z",
        EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: "e3".into(),
            reason: None,
        }),
    );
    let s = log.state();
    let a = one(&s, Rule::BehindPace);
    assert_eq!(a.id, id);
    assert_eq!(a.severity, Severity::Critical);
    // Times are the engine's "now": the latest clock_tick, not the event's own time.
    assert_eq!(a.escalated_at, Some(ts("2026-11-18T09:00:00Z")));
    assert_eq!(s.alert_book().changes(), &[(id.clone(), Change::Escalated)]);
    // Back up to a warning: no new announcement, the alert keeps its peak.
    log.add(
        "2026-11-18T13:00:00Z",
        won("d2", 5_000_000, "2026-11-18", CustomerKind::New),
    );
    let s = log.state();
    let a = one(&s, Rule::BehindPace);
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.finding.severity, Severity::Warning);
    assert!(s.alert_book().changes().is_empty());
}

#[test]
fn an_alert_resolves_itself_and_reopens_under_the_same_id_that_week() {
    let mut log = pace_case(5_000_000);
    let id = one(&log.state(), Rule::BehindPace).id;
    log.add(
        "2026-11-18T11:00:00Z",
        won("d2", 4_000_000, "2026-11-18", CustomerKind::New),
    );
    let s = log.state();
    assert!(standing(&s, Rule::BehindPace).is_empty());
    let a = s.alert_book().get(&id).unwrap();
    assert_eq!(
        a.closed,
        Some((ts("2026-11-18T09:00:00Z"), Closure::Resolved))
    );
    assert_eq!(s.alert_book().changes(), &[(id.clone(), Change::Resolved)]);
    let views = alert_views(
        &s,
        &AlertQuery {
            status: StatusFilter::Resolved,
            ..AlertQuery::default()
        },
    );
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].status, Status::Resolved);
    // The deal is voided: behind again, the same alert reopens.
    log.add(
        "2026-11-18T12:00:00Z",
        EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: "e5".into(),
            reason: None,
        }),
    );
    let s = log.state();
    assert_eq!(one(&s, Rule::BehindPace).id, id);
    assert_eq!(s.alert_book().changes(), &[(id.clone(), Change::Reopened)]);
    assert_eq!(s.alert_book().iter().count(), 1);
}

#[test]
fn a_new_week_with_the_condition_still_true_raises_a_new_alert() {
    let mut log = pace_case(5_000_000);
    let old = one(&log.state(), Rule::BehindPace);
    // Monday 2026-11-23: W48. Still behind (A = 50 000.00 at day 16 of 21 runs at
    // 65 625.00).
    log.tick("2026-11-23T09:00:00Z");
    let s = log.state();
    let new = one(&s, Rule::BehindPace);
    assert_ne!(new.id, old.id);
    assert_eq!(new.week, IsoWeek::parse("2026-W48").unwrap());
    assert_eq!(new.act_by, ts("2026-11-27T17:00:00Z"));
    assert_eq!(
        s.alert_book().get(&old.id).unwrap().closed,
        Some((ts("2026-11-23T09:00:00Z"), Closure::Superseded))
    );
    assert_eq!(
        s.alert_book().changes(),
        &[
            (old.id.clone(), Change::Superseded),
            (new.id.clone(), Change::Raised)
        ]
    );
}

#[test]
fn friday_afternoon_alerts_belong_to_next_week_and_carry_over_the_weekend() {
    // Raised Friday 2026-11-20 at 13:00: due next Friday, in W48.
    let mut log = Log::new();
    log.plan("2026-11", &[("total", 10_000_000)]);
    log.tick("2026-11-20T13:00:00Z");
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.week, IsoWeek::parse("2026-W48").unwrap());
    assert_eq!(a.act_by, ts("2026-11-27T17:00:00Z"));
    // Saturday and Monday: the same alert.
    log.tick("2026-11-21T10:00:00Z");
    log.tick("2026-11-23T09:00:00Z");
    let s = log.state();
    assert_eq!(one(&s, Rule::BehindPace).id, a.id);
    assert_eq!(s.alert_book().iter().count(), 1);
}

#[test]
fn a_friday_morning_alert_stands_until_its_act_by_then_the_next_week_takes_over() {
    let mut log = Log::new();
    log.plan("2026-11", &[("total", 10_000_000)]);
    log.tick("2026-11-20T09:00:00Z");
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.act_by, ts("2026-11-20T17:00:00Z"));
    // 14:00: past noon, but the alert is still due at 17:00 today: it stands.
    log.tick("2026-11-20T14:00:00Z");
    assert_eq!(one(&log.state(), Rule::BehindPace).id, a.id);
    // 17:30: its act_by has passed; next week's alert takes over.
    log.tick("2026-11-20T17:30:00Z");
    let b = one(&log.state(), Rule::BehindPace);
    assert_ne!(b.id, a.id);
    assert_eq!(b.act_by, ts("2026-11-27T17:00:00Z"));
}

#[test]
fn acknowledged_alerts_stay_acknowledged_and_are_not_raised_again_that_week() {
    let mut log = pace_case(5_000_000);
    let id = one(&log.state(), Rule::BehindPace).id;
    log.add("2026-11-18T10:00:00Z", ack(&id));
    let s = log.state();
    assert_eq!(
        s.alert_book().changes(),
        &[(id.clone(), Change::Acknowledged)]
    );
    let v = alert_views(
        &s,
        &AlertQuery {
            status: StatusFilter::Acknowledged,
            ..AlertQuery::default()
        },
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].ack.unwrap().by, "maria");
    assert!(
        alert_views(&s, &AlertQuery::default()).is_empty(),
        "not open any more"
    );
    // Escalation after the acknowledgement: no announcement, still acknowledged.
    log.add(
        "2026-11-18T12:00:00Z",
        EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: "e3".into(),
            reason: None,
        }),
    );
    let s = log.state();
    assert!(s.alert_book().changes().is_empty());
    assert_eq!(one(&s, Rule::BehindPace).severity, Severity::Critical);
    let v = alert_views(
        &s,
        &AlertQuery {
            status: StatusFilter::All,
            ..AlertQuery::default()
        },
    );
    assert_eq!(v[0].status, Status::Acknowledged);
    // The next week's alert is a new one, open.
    log.tick("2026-11-23T09:00:00Z");
    let s = log.state();
    let v = alert_views(&s, &AlertQuery::default());
    assert_eq!(v.len(), 1);
    assert_ne!(v[0].alert.id, id);
    assert_eq!(v[0].status, Status::Open);
}

#[test]
fn the_focus_limit_ranks_critical_first_then_money_at_stake_and_promotes() {
    // Total 100 000.00 with 31 000.00 booked: projected 31 000.00 + 38 095.24 =
    // 69 095.24, critical, at stake 30 904.76. No calls of 42 (26 due): at stake
    // 100 000.00 × 26/42 = 61 904.76. 5 meetings of 21 (13 due, heading for 13):
    // at stake 100 000.00 × 8/21 = 38 095.24. The critical alert comes first
    // whatever its money; then money at stake.
    let mut log = Log::new();
    log.plan(
        "2026-11",
        &[
            ("total", 10_000_000),
            ("activity:call", 42),
            ("activity:meeting", 21),
        ],
    );
    log.add(
        "2026-11-10T10:00:00Z",
        won("d1", 3_100_000, "2026-11-10", CustomerKind::New),
    );
    for _ in 0..5 {
        log.add("2026-11-10T10:00:00Z", activity("meeting"));
    }
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    let all = alert_views(&s, &AlertQuery::default());
    let at_stake: Vec<(Option<Bucket>, Severity, i64)> = all
        .iter()
        .map(|v| {
            (
                v.alert.finding.bucket.clone(),
                v.alert.severity,
                v.alert.finding.money_at_stake,
            )
        })
        .collect();
    assert_eq!(
        at_stake,
        vec![
            (Some(Bucket::Total), Severity::Critical, 3_090_476),
            (
                Some(Bucket::Activity("call".into())),
                Severity::Warning,
                6_190_476
            ),
            (
                Some(Bucket::Activity("meeting".into())),
                Severity::Warning,
                3_809_524
            ),
        ]
    );
    let focus = |s: &Model| -> Vec<Option<Bucket>> {
        alert_views(s, &AlertQuery::default())
            .into_iter()
            .filter(|v| v.focus)
            .map(|v| v.alert.finding.bucket.clone())
            .collect()
    };
    assert_eq!(
        focus(&s),
        vec![Some(Bucket::Total), Some(Bucket::Activity("call".into()))]
    );
    // Calls catch up (26 of 26 due): the call alert resolves and meetings are promoted.
    for _ in 0..26 {
        log.add("2026-11-18T10:00:00Z", activity("call"));
    }
    assert_eq!(
        focus(&log.state()),
        vec![
            Some(Bucket::Total),
            Some(Bucket::Activity("meeting".into()))
        ]
    );
}

#[test]
fn max_focus_per_rep_is_configurable() {
    let mut log = Log::with(AlertConfig {
        max_focus_per_rep: 1,
        ..AlertConfig::default()
    });
    log.plan("2026-11", &[("total", 10_000_000), ("activity:call", 21)]);
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    let views = alert_views(&s, &AlertQuery::default());
    assert_eq!(views.len(), 2);
    assert_eq!(views.iter().filter(|v| v.focus).count(), 1);
}

#[test]
fn a_departed_rep_has_no_standing_alerts() {
    let mut log = pace_case(0);
    assert_eq!(standing(&log.state(), Rule::BehindPace).len(), 1);
    log.add(
        "2026-11-18T10:00:00Z",
        EventBody::RepDeparted(RepDeparted {
            rep: "ana".into(),
            effective_month: month("2026-11"),
        }),
    );
    assert!(standing(&log.state(), Rule::BehindPace).is_empty());
}

#[test]
fn a_deal_lost_or_moved_changes_the_alerts_of_its_rep() {
    // Forecast: 50 000 won + 60 000 × 80% = 98 000: fine. The deal is lost → behind.
    let mut log = pace_case(5_000_000);
    log.add(
        "2026-11-18T10:00:00Z",
        opened(
            "d2",
            6_000_000,
            "2026-11-27",
            80,
            "analytics",
            CustomerKind::New,
        ),
    );
    assert!(standing(&log.state(), Rule::BehindPace).is_empty());
    log.add(
        "2026-11-18T11:00:00Z",
        EventBody::DealLost(DealLost {
            deal: "d2".into(),
            reason: None,
        }),
    );
    assert_eq!(standing(&log.state(), Rule::BehindPace).len(), 1);
    // The same with a deal pushed into December by a stage change.
    let mut log = pace_case(5_000_000);
    log.add(
        "2026-11-18T10:00:00Z",
        opened(
            "d2",
            6_000_000,
            "2026-11-27",
            80,
            "analytics",
            CustomerKind::New,
        ),
    );
    log.add(
        "2026-11-18T11:00:00Z",
        EventBody::DealStageChanged(DealStageChanged {
            deal: "d2".into(),
            stage: "negotiation".into(),
            probability: None,
            amount: None,
            expected_close: Some(Date::parse("2026-12-04").unwrap()),
        }),
    );
    assert_eq!(standing(&log.state(), Rule::BehindPace).len(), 1);
}

#[test]
fn alerts_follow_the_org_time_zone() {
    // Friday 2026-11-20 10:30 UTC is 11:30 in Berlin (morning) but 19:30 in Tokyo
    // (afternoon): due this Friday in Berlin, next Friday in Tokyo.
    for (tz, act_by) in [
        (chrono_tz::Europe::Berlin, "2026-11-20T16:00:00Z"),
        (chrono_tz::Asia::Tokyo, "2026-11-27T08:00:00Z"),
    ] {
        let mut log = Log::new();
        log.org.timezone = tz;
        log.plan("2026-11", &[("total", 10_000_000)]);
        log.tick("2026-11-20T10:30:00Z");
        assert_eq!(
            one(&log.state(), Rule::BehindPace).act_by,
            ts(act_by),
            "{tz}"
        );
    }
}

#[test]
fn nothing_is_raised_before_the_first_tick() {
    let mut log = Log::new();
    log.plan("2026-11", &[("total", 10_000_000)]);
    log.add("2026-11-10T10:00:00Z", activity("call"));
    assert_eq!(log.state().alert_book().iter().count(), 0);
}

// ---------------------------------------------------------------------------
// The digest's pipeline change and the productivity median
// ---------------------------------------------------------------------------

fn moved(deal: &str, close: &str) -> EventBody {
    EventBody::DealStageChanged(DealStageChanged {
        deal: deal.into(),
        stage: "negotiation".into(),
        probability: None,
        amount: None,
        expected_close: Some(Date::parse(close).unwrap()),
    })
}

#[test]
fn the_digest_counts_the_weeks_pipeline_moves() {
    use pacer_projections::digest::{digest, Audience, Deals};
    let new = CustomerKind::New;
    let mut log = Log::new();
    // Week 47 is Monday 16 to Sunday 22 November.
    log.add(
        "2026-11-17T10:00:00Z",
        opened("a", 100_000, "2026-11-30", 50, "x", new),
    );
    log.add(
        "2026-11-02T10:00:00Z",
        opened("b", 200_000, "2026-11-17", 50, "x", new),
    );
    log.add("2026-11-17T15:00:00Z", won("b", 250_000, "2026-11-17", new));
    log.add(
        "2026-11-02T10:00:00Z",
        opened("c", 300_000, "2026-11-20", 50, "x", new),
    );
    log.add(
        "2026-11-18T08:00:00Z",
        EventBody::DealLost(DealLost {
            deal: "c".into(),
            reason: None,
        }),
    );
    log.add(
        "2026-11-02T10:00:00Z",
        opened("d", 400_000, "2026-11-25", 50, "x", new),
    );
    log.add("2026-11-17T11:00:00Z", moved("d", "2026-12-04"));
    // Moved out the week before: not this week's news.
    log.add(
        "2026-11-02T10:00:00Z",
        opened("e", 500_000, "2026-11-25", 50, "x", new),
    );
    log.add("2026-11-10T11:00:00Z", moved("e", "2026-12-04"));
    // Opened last week.
    log.add(
        "2026-11-12T10:00:00Z",
        opened("f", 600_000, "2026-11-30", 50, "x", new),
    );
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    let d = digest(
        &s,
        &Audience::Team("north".into()),
        IsoWeek::parse("2026-W47").unwrap(),
    )
    .unwrap();
    assert_eq!(d.reps.len(), 1);
    let p = d.reps[0].pipeline;
    assert_eq!(
        p.opened,
        Deals {
            count: 1,
            amount: 100_000
        }
    );
    assert_eq!(
        p.won,
        Deals {
            count: 1,
            amount: 250_000
        }
    );
    assert_eq!(
        p.lost,
        Deals {
            count: 1,
            amount: 300_000
        }
    );
    assert_eq!(
        p.moved_out,
        Deals {
            count: 1,
            amount: 400_000
        }
    );
    // The week before: f opened, e moved out (b, c, d were opened on 2 November).
    let d = digest(
        &s,
        &Audience::Manager("maria".into()),
        IsoWeek::parse("2026-W46").unwrap(),
    )
    .unwrap();
    let p = d.reps[0].pipeline;
    assert_eq!(
        p.opened,
        Deals {
            count: 1,
            amount: 600_000
        }
    );
    assert_eq!(
        p.moved_out,
        Deals {
            count: 1,
            amount: 500_000
        }
    );
    assert_eq!(p.won, Deals::default());
    // Another manager's digest has nobody in it.
    assert!(digest(
        &s,
        &Audience::Manager("luis".into()),
        IsoWeek::parse("2026-W47").unwrap()
    )
    .unwrap()
    .reps
    .is_empty());
}

#[test]
fn the_median_sales_cycle_of_an_even_count_is_the_mean_of_the_middle_two() {
    use pacer_projections::productivity::productivity;
    use pacer_projections::report::ReportQuery;
    let new = CustomerKind::New;
    let mut log = Log::new();
    // Cycles: 3, 10, 12 and 30 days → median (10 + 12) / 2 = 11 days = 22 half days.
    // A fifth deal of 9 days makes the count odd: the median is then 10 days.
    for (deal, opened_on, won_on) in [
        ("a", "2026-11-02", "2026-11-05"),
        ("b", "2026-11-01", "2026-11-11"),
        ("c", "2026-11-01", "2026-11-13"),
        ("d", "2026-10-14", "2026-11-13"),
    ] {
        log.add(
            &format!("{opened_on}T10:00:00Z"),
            opened(deal, 100, won_on, 50, "x", new),
        );
        log.add(&format!("{won_on}T10:00:00Z"), won(deal, 100, won_on, new));
    }
    log.tick("2026-11-18T09:00:00Z");
    let rows = productivity(&log.state(), month("2026-11"), &ReportQuery::default());
    assert_eq!(rows[0].cycle_days, vec![3, 10, 12, 30]);
    assert_eq!(rows[0].median_cycle_half_days(), Some(22));
    log.add(
        "2026-11-02T10:00:00Z",
        opened("e", 100, "2026-11-11", 50, "x", new),
    );
    log.add("2026-11-11T10:00:00Z", won("e", 100, "2026-11-11", new));
    let rows = productivity(&log.state(), month("2026-11"), &ReportQuery::default());
    assert_eq!(rows[0].median_cycle_half_days(), Some(20));
    assert_eq!(rows[0].won_deals, 5);
}

#[test]
fn a_week_53_alert_spans_the_month_end_and_the_month_closes_under_it() {
    // Tuesday 2026-12-29 is in 2026-W53, which runs to Sunday 3 January 2027. Nothing
    // booked against December's 10 000.00: behind pace, due Friday 1 January.
    let mut log = Log::new();
    log.plan("2026-12", &[("total", 1_000_000)]);
    log.tick("2026-12-29T09:00:00Z");
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.week, IsoWeek::parse("2026-W53").unwrap());
    assert_eq!(a.act_by, ts("2027-01-01T17:00:00Z"));
    assert_eq!(
        a.id,
        alert_id(
            &(Rule::BehindPace, Some(Bucket::Total), month("2026-12")),
            "ana",
            IsoWeek::parse("2026-W53").unwrap()
        )
    );
    // Friday 1 January, morning: a new month in the same alert week. December's pace
    // alert resolves (its month is over) and the rear-view month_missed takes over.
    log.tick("2027-01-01T09:00:00Z");
    let s = log.state();
    assert!(standing(&s, Rule::BehindPace).is_empty());
    assert_eq!(
        s.alert_book().get(&a.id).unwrap().closed.map(|c| c.1),
        Some(Closure::Resolved)
    );
    let missed = one(&s, Rule::MonthMissed);
    assert_eq!(missed.finding.month, month("2026-12"));
    assert_eq!(missed.week, IsoWeek::parse("2026-W53").unwrap());
}

// ---------------------------------------------------------------------------
// Edges found in review
// ---------------------------------------------------------------------------

#[test]
fn the_report_card_threshold_is_compared_exactly() {
    // 99 fours and 101 threes over 50 ratings: 699 / 200 = 3.495, below 3.5 although it
    // would round to 3.50. The score shown is cut, not rounded: 3.49.
    let mut list = vec![("2026-11-02T10:00:00Z", [4, 4, 4, 4]); 24];
    list.push(("2026-11-02T10:00:00Z", [4, 4, 4, 3]));
    list.extend(vec![("2026-11-03T10:00:00Z", [3, 3, 3, 3]); 25]);
    let a = one(&ratings(&list), Rule::ReportCardDrop);
    assert_eq!(a.finding.figures.score, Some(349));
}

#[test]
fn a_bucket_with_the_totals_plan_but_other_actuals_is_checked() {
    // new_customer is planned at the whole total, but the month was booked from an
    // existing customer: the total is on pace, new business is not. October (fully
    // booked, 5 deals, half new) gives Ana a track record of 100% and 5 bookings a
    // month: 5 × 13/21 = 3.10 expected by the 18th, enough evidence for a breakdown.
    let mut log = Log::new();
    log.plan(
        "2026-10",
        &[
            ("total", 10_000_000),
            ("new_customer", 5_000_000),
            ("retention", 5_000_000),
        ],
    );
    for (i, (minor, kind)) in [
        (2_000_000, CustomerKind::New),
        (2_000_000, CustomerKind::New),
        (1_000_000, CustomerKind::New),
        (3_000_000, CustomerKind::Existing),
        (2_000_000, CustomerKind::Existing),
    ]
    .into_iter()
    .enumerate()
    {
        log.add(
            "2026-10-20T10:00:00Z",
            won(&format!("o{i}"), minor, "2026-10-20", kind),
        );
    }
    log.plan(
        "2026-11",
        &[("total", 10_000_000), ("new_customer", 10_000_000)],
    );
    log.add(
        "2026-11-10T10:00:00Z",
        won("d1", 10_000_000, "2026-11-10", CustomerKind::Existing),
    );
    log.tick("2026-11-18T09:00:00Z");
    let a = one(&log.state(), Rule::BehindPace);
    assert_eq!(a.finding.bucket, Some(Bucket::NewCustomer));
    // This month's pace (0) weighs 3.10 ÷ (3.10 + 20); the record (100%) the rest:
    // 100 000.00 × 20 ÷ 23.10 = 86 580.09. A breakdown warns, never more.
    assert_eq!(a.finding.figures.projected, Some(8_658_009));
    assert_eq!(a.severity, Severity::Warning);
}

#[test]
fn a_rep_known_only_from_the_plan_is_checked() {
    let mut log = Log::new();
    log.add(
        "2026-10-01T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: "fy27".into(),
            version: 1,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-10"),
            effective_from: month("2026-11"),
            currency: eur(),
            lines: vec![PlanLine {
                rep: "zoe".into(),
                month: month("2026-11"),
                bucket: Bucket::Total,
                target: 10_000_000,
            }],
        }),
    );
    log.tick("2026-11-18T09:00:00Z");
    let s = log.state();
    let a = one(&s, Rule::BehindPace);
    assert_eq!(a.rep, "zoe");
}

#[test]
fn a_month_turning_mid_week_does_not_raise_pipeline_alerts_again() {
    // Concentrated pipeline on Monday 30 November; Tuesday 1 December is the same
    // alert week: the same alert, still acknowledged.
    let mut cfg = AlertConfig::default();
    cfg.customer_mix.enabled = false;
    let mut log = Log::with(cfg);
    for (i, (minor, product)) in [
        (900_000, "analytics"),
        (50_000, "platform"),
        (50_000, "connect"),
    ]
    .into_iter()
    .enumerate()
    {
        log.add(
            "2026-11-02T10:00:00Z",
            opened(
                &format!("p{i}"),
                minor,
                "2027-01-15",
                50,
                product,
                CustomerKind::New,
            ),
        );
    }
    log.tick("2026-11-30T09:00:00Z");
    let a = one(&log.state(), Rule::ProductConcentration);
    log.add("2026-11-30T10:00:00Z", ack(&a.id));
    log.tick("2026-12-01T09:00:00Z");
    let s = log.state();
    let b = one(&s, Rule::ProductConcentration);
    assert_eq!(b.id, a.id);
    assert!(s.alert_book().changes().is_empty());
    assert_eq!(s.alert_book().iter().count(), 1);
}
