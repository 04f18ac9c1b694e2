//! Top-down drafts, checked line by line against plans worked by hand: the history is
//! the complete months (the current one only when asked), growth compounds per year,
//! and each allocation method holds in both years of the horizon.
//!
//! The history: ana books 1 000.00 on the 10th of every month from November 2025 to
//! October 2026 (12 complete months, 12 000.00), 2 000.00 in March 2026 instead;
//! November 2026, the current month ("now" is the 18th), has 5 000.00 so far.

use pacer_projections::bucket::Bucket;
use pacer_projections::draft::{
    draft, prior_year, year_totals, Allocate, DraftSpec, Seasonality, Total,
};
use pacer_projections::event::{CustomerKind, PlanLine};
use pacer_projections::model::Model;

mod common;
use common::*;

fn history(log: &mut Log, rep: &str, per_month: impl Fn(&str) -> i64) {
    let months = [
        "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
        "2026-07", "2026-08", "2026-09", "2026-10", "2026-11",
    ];
    for m in months {
        let on = format!("{m}-10");
        log.add(
            &format!("{on}T10:00:00Z"),
            won_by(
                rep,
                &format!("{rep}-{m}"),
                per_month(m),
                &on,
                CustomerKind::New,
                "x",
            ),
        );
    }
}

fn ana_only() -> Model {
    let mut log = Log::new();
    history(&mut log, "ana", |m| match m {
        "2026-03" => 200_000,
        "2026-11" => 500_000,
        _ => 100_000,
    });
    log.tick("2026-11-18T15:00:00Z");
    log.state()
}

fn spec(total: Total, seasonality: Seasonality) -> DraftSpec {
    DraftSpec {
        start: month("2026-12"),
        months: 24,
        total,
        allocate: Allocate::Even,
        seasonality,
        ramp: Vec::new(),
        include_current: false,
    }
}

/// The `total` line of `rep` in `m`.
fn total_of(lines: &[PlanLine], rep: &str, m: &str) -> i64 {
    lines
        .iter()
        .find(|l| l.rep == rep && l.month == month(m) && l.bucket == Bucket::Total)
        .map_or(0, |l| l.target)
}

#[test]
fn growth_compounds_per_year_on_the_complete_months() {
    let state = ana_only();
    // The base is November 2025 to October 2026: 11 × 1 000.00 + 2 000.00.
    let base = 1_300_000;
    // Year 1 (December 2026 to November 2027): base × 1.10 = 14 300.00;
    // year 2: base × 1.21 = 15 730.00.
    assert_eq!(year_totals(base, 1_000, 24), [1_430_000, 1_573_000]);
    // Eighteen months: the second year is half a year: 15 730.00 ÷ 2.
    assert_eq!(year_totals(base, 1_000, 18), [1_430_000, 786_500]);
    let lines = draft(&state, &spec(Total::Growth(1_000), Seasonality::Flat)).unwrap();
    // Flat within each year: 14 300.00 ÷ 12 = 1 191.666… (8 months of 1 191.67 and
    // 4 of 1 191.66 by largest remainders), year 2 15 730.00 ÷ 12 = 1 310.8333….
    let year1: i64 = (0..12)
        .map(|k| total_of(&lines, "ana", &month("2026-12").plus(k).to_string()))
        .sum();
    let year2: i64 = (12..24)
        .map(|k| total_of(&lines, "ana", &month("2026-12").plus(k).to_string()))
        .sum();
    assert_eq!((year1, year2), (1_430_000, 1_573_000));
    for k in 0..12 {
        let t = total_of(&lines, "ana", &month("2026-12").plus(k).to_string());
        assert!(t == 119_167 || t == 119_166, "month {k}: {t}");
    }
    for k in 12..24 {
        let t = total_of(&lines, "ana", &month("2026-12").plus(k).to_string());
        assert!(t == 131_083 || t == 131_084, "month {k}: {t}");
    }
    // Counting the unfinished November: the base is December 2025 to November 2026,
    // 10 × 1 000.00 + 2 000.00 + 5 000.00 = 17 000.00; year 1 is 18 700.00.
    let with = DraftSpec {
        include_current: true,
        ..spec(Total::Growth(1_000), Seasonality::Flat)
    };
    let lines = draft(&state, &with).unwrap();
    let year1: i64 = (0..12)
        .map(|k| total_of(&lines, "ana", &month("2026-12").plus(k).to_string()))
        .sum();
    assert_eq!(year1, 1_870_000);
}

#[test]
fn seasonality_from_history_leaves_the_unfinished_month_out() {
    let state = ana_only();
    // Twelve months of 13 000.00 by the history's mix: each calendar month of the
    // complete history weighs 1 000.00, March 2 000.00 (13 000.00 in all), so each
    // month plans 1 000.00 and March 2027 2 000.00.
    let s = DraftSpec {
        months: 12,
        ..spec(Total::Target(1_300_000), Seasonality::History)
    };
    let lines = draft(&state, &s).unwrap();
    assert_eq!(total_of(&lines, "ana", "2027-03"), 200_000);
    assert_eq!(total_of(&lines, "ana", "2027-11"), 100_000);
    assert_eq!(total_of(&lines, "ana", "2027-01"), 100_000);
    // With the unfinished month: November weighs 1 000.00 + 5 000.00 of 18 000.00,
    // so 13 000.00 × 6/18 = 4 333.333…, March 1 444.444…, the ten others 722.222…
    // each. The floors leave three cents: to March (.44), November (.33) and the first
    // of the .22s, so November plans 4 333.34.
    let with = DraftSpec {
        include_current: true,
        ..s
    };
    let lines = draft(&state, &with).unwrap();
    assert_eq!(total_of(&lines, "ana", "2027-11"), 433_334);
    assert_eq!(total_of(&lines, "ana", "2027-03"), 144_445);
}

#[test]
fn each_allocation_method_in_both_years_and_prior_year_reads_the_last_year_with_history() {
    let mut log = Log::new();
    register(&mut log, "bo", "north");
    // ana books three times what bo books, every month; in December 2025 it is 3:1
    // as well, and that is what December 2027 (year 2) falls back to.
    history(&mut log, "ana", |_| 300_000);
    history(&mut log, "bo", |_| 100_000);
    log.tick("2026-11-18T15:00:00Z");
    let state = log.state();
    let end = month("2026-10");
    assert_eq!(prior_year(month("2026-12"), end), month("2025-12"));
    assert_eq!(prior_year(month("2027-12"), end), month("2025-12"));
    assert_eq!(prior_year(month("2027-10"), end), month("2026-10"));
    let s = DraftSpec {
        allocate: Allocate::PriorYear,
        ..spec(Total::Target(4_800_000), Seasonality::Flat)
    };
    let lines = draft(&state, &s).unwrap();
    // 48 000.00 over 24 flat months: 2 000.00 a month, 3:1 → 1 500.00 and 500.00,
    // in year 1 and in year 2 alike.
    for m in ["2026-12", "2027-06", "2027-12", "2028-11"] {
        assert_eq!(
            (total_of(&lines, "ana", m), total_of(&lines, "bo", m)),
            (150_000, 50_000),
            "{m}"
        );
    }
    // The trailing 12 complete months say 3:1 as well, in every month; even says 1:1.
    for (allocate, want) in [
        (Allocate::Trailing12, (150_000, 50_000)),
        (Allocate::Even, (100_000, 100_000)),
    ] {
        let s = DraftSpec {
            allocate,
            ..spec(Total::Target(4_800_000), Seasonality::Flat)
        };
        let lines = draft(&state, &s).unwrap();
        for m in ["2026-12", "2027-12", "2028-11"] {
            assert_eq!(
                (total_of(&lines, "ana", m), total_of(&lines, "bo", m)),
                want,
                "{allocate:?} {m}"
            );
        }
    }
}

/// A rep with no history of their own is drafted with their team's mix (accounts
/// aside): cy joins north, whose only history is ana's — all new business, product
/// x, region emea, 20 calls a month for 1 000.00 — so cy's 500.00 a month is all new
/// customer, emea and product x, with 10 calls, not 50/50 under product:unassigned.
#[test]
fn a_new_rep_is_drafted_with_the_teams_mix_and_activity_targets() {
    let mut log = Log::new();
    history(&mut log, "ana", |_| 100_000);
    for m in [
        "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
        "2026-07", "2026-08", "2026-09", "2026-10",
    ] {
        for d in 0..20 {
            let at = format!("{m}-{:02}T09:00:00Z", 1 + d);
            log.add(&at, activity("call"));
        }
    }
    register(&mut log, "cy", "north");
    log.tick("2026-11-18T15:00:00Z");
    let state = log.state();
    let s = DraftSpec {
        months: 12,
        ..spec(Total::Target(1_200_000), Seasonality::Flat)
    };
    let lines = draft(&state, &s).unwrap();
    let of = |rep: &str, bucket: &str| -> Option<i64> {
        lines
            .iter()
            .find(|l| l.rep == rep && l.month == month("2026-12") && l.bucket.to_string() == bucket)
            .map(|l| l.target)
    };
    assert_eq!(of("cy", "total"), Some(50_000));
    assert_eq!(of("cy", "new_customer"), Some(50_000));
    assert_eq!(of("cy", "retention"), Some(0));
    assert_eq!(of("cy", "geo:emea"), Some(50_000));
    assert_eq!(of("cy", "product:x"), Some(50_000));
    assert_eq!(of("cy", "product:unassigned"), None);
    // 240 calls for 12 000.00 of revenue: 500.00 of plan is 10 calls.
    assert_eq!(of("cy", "activity:call"), Some(10));
    // Accounts are other reps' customers: none is drafted for cy.
    assert!(lines
        .iter()
        .all(|l| !(l.rep == "cy" && matches!(l.bucket, Bucket::Account(_)))));
}
