//! A plan version published in parts (several `plan_published` of one plan and
//! version: by team, by month, in any order): the lines in force for a month are
//! every part's, and a later revision still takes over from its effective month.

use pacer_projections::bucket::Bucket;
use pacer_projections::event::{EventBody, PlanBasis, PlanLine, PlanPublished};
use pacer_projections::model::Model;

mod common;
use common::*;

fn part(log: &mut Log, version: u32, effective: &str, lines: &[(&str, &str, i64)]) {
    log.add(
        "2026-10-01T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: "fy27".into(),
            version,
            basis: if version == 1 {
                PlanBasis::TopDown
            } else {
                PlanBasis::Revision
            },
            horizon_start: month("2026-11"),
            effective_from: month(effective),
            currency: eur(),
            lines: lines
                .iter()
                .map(|(rep, m, target)| PlanLine {
                    rep: (*rep).into(),
                    month: month(m),
                    bucket: Bucket::Total,
                    target: *target,
                })
                .collect(),
        }),
    );
}

fn plan(state: &Model, rep: &str, m: &str) -> i64 {
    state.plans().target(rep, month(m), &Bucket::Total)
}

#[test]
fn parts_by_team_in_either_order_give_every_rep_a_plan() {
    for flipped in [false, true] {
        let mut log = Log::new();
        register(&mut log, "bo", "south");
        let north = [("ana", "2026-11", 100), ("ana", "2026-12", 110)];
        let south = [("bo", "2026-11", 200), ("bo", "2026-12", 210)];
        let (first, second) = if flipped {
            (south, north)
        } else {
            (north, south)
        };
        part(&mut log, 1, "2026-11", &first);
        part(&mut log, 1, "2026-11", &second);
        let state = log.state();
        assert_eq!(
            [
                plan(&state, "ana", "2026-11"),
                plan(&state, "ana", "2026-12"),
                plan(&state, "bo", "2026-11"),
                plan(&state, "bo", "2026-12"),
            ],
            [100, 110, 200, 210],
            "flipped: {flipped}"
        );
        let lines: Vec<(&str, i64)> = state
            .plans()
            .lines(month("2026-12"))
            .map(|(r, _, t)| (r, t))
            .collect();
        assert_eq!(lines, [("ana", 110), ("bo", 210)], "by rep, every part's");
    }
}

#[test]
fn parts_by_month_published_latest_month_first_leave_no_month_without_a_plan() {
    let mut log = Log::new();
    // January to March first, then December (an earlier effective month) after.
    part(
        &mut log,
        1,
        "2027-01",
        &[
            ("ana", "2027-01", 300),
            ("ana", "2027-02", 310),
            ("ana", "2027-03", 320),
        ],
    );
    part(&mut log, 1, "2026-12", &[("ana", "2026-12", 290)]);
    let state = log.state();
    let got: Vec<i64> = ["2026-12", "2027-01", "2027-02", "2027-03"]
        .iter()
        .map(|m| plan(&state, "ana", m))
        .collect();
    assert_eq!(got, [290, 300, 310, 320]);
}

#[test]
fn a_revision_takes_over_from_its_month_and_the_parts_before_it_stay() {
    let mut log = Log::new();
    register(&mut log, "bo", "south");
    part(
        &mut log,
        1,
        "2026-11",
        &[("ana", "2026-11", 100), ("ana", "2027-02", 100)],
    );
    part(
        &mut log,
        1,
        "2026-11",
        &[("bo", "2026-11", 200), ("bo", "2027-02", 200)],
    );
    // Version 2 from February plans ana only: bo has no plan from February.
    part(&mut log, 2, "2027-02", &[("ana", "2027-02", 150)]);
    let state = log.state();
    assert_eq!(
        [
            plan(&state, "ana", "2026-11"),
            plan(&state, "bo", "2026-11"),
            plan(&state, "ana", "2027-02"),
            plan(&state, "bo", "2027-02"),
        ],
        [100, 200, 150, 0]
    );
}
