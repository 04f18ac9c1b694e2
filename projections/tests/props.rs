//! Property and example tests of the pure fold: bucket invariants, incremental fold
//! vs batch computation, determinism, voids, and the plan-vs-actual report figures.
//!
//! Every expected number in the example tests is worked out by hand (or by plain
//! arithmetic here), never by calling the code under test.

use std::collections::{BTreeMap, HashSet};

use chrono_tz::Tz;
use pacer_projections::alerts::alert_id;
use pacer_projections::alerts::rules::findings;
use pacer_projections::bucket::Bucket;
use pacer_projections::contribution::{contributions, weighted, Movement};
use pacer_projections::event::{
    ActivityLogged, AlertAcknowledged, CustomerKind, CustomerRated, DealLost, DealOpened,
    DealStageChanged, DealWon, EventVoided, ForecastCategory, ForecastSubmitted, Percent,
    PlanBasis, PlanLine, PlanPublished, RepReassigned, RepRegistered, RetentionChange,
    RetentionKind, Split,
};
use pacer_projections::state::{is_voidable, void_target, DealStatus, DealView};
use pacer_projections::{
    report, Currency, Date, Event, EventBody, Model, Money, Month, OrgConfig, Recorded,
    ReportQuery, ReportRow, Timestamp,
};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const REPS: [&str; 3] = ["ana", "ben", "cy"];
const ACCOUNTS: [&str; 2] = ["a1", "a2"];
const DEALS: [&str; 3] = ["d1", "d2", "d3"];
const KINDS: [&str; 3] = ["call", "meeting", "demo"];
const PRODUCTS: [&str; 2] = ["p1", "p2"];
const REGIONS: [&str; 2] = ["emea", "us"];
/// The months a generated event can land in (activities near New Year's Eve land in
/// January in Europe/Berlin).
const REPORT_MONTHS: [&str; 4] = ["2026-10", "2026-11", "2026-12", "2027-01"];

type Actuals = BTreeMap<(String, Month), BTreeMap<Bucket, i64>>;

fn eur() -> Currency {
    Currency::from_code("EUR").unwrap()
}

fn money(minor: i64) -> Money {
    Money::new(minor, eur())
}

fn month(s: &str) -> Month {
    Month::parse(s).unwrap()
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn pct(hundredths: u16) -> Percent {
    Percent::from_hundredths(hundredths).unwrap()
}

fn berlin() -> OrgConfig {
    OrgConfig {
        timezone: chrono_tz::Europe::Berlin,
        currency: eur(),
        fiscal_year_start_month: 1,
        alerts: Default::default(),
        pace: Default::default(),
    }
}

fn utc() -> OrgConfig {
    OrgConfig {
        timezone: chrono_tz::UTC,
        currency: eur(),
        fiscal_year_start_month: 1,
        alerts: Default::default(),
        pace: Default::default(),
    }
}

fn recorded_at() -> Timestamp {
    ts("2027-02-01T00:00:00Z")
}

/// Numbers a list of (id, occurred_at, body) into a log: seq 1..n, fixed recorded_at.
fn log_of(items: Vec<(String, Timestamp, EventBody)>) -> Vec<Recorded> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, (event_id, occurred_at, body))| Recorded {
            seq: i as u64 + 1,
            recorded_at: recorded_at(),
            event: Event {
                event_id,
                source: "crm".into(),
                occurred_at,
                body,
            },
        })
        .collect()
}

/// A log from (occurred_at, body) pairs, with ids e0, e1, ...
fn simple_log(items: Vec<(&str, EventBody)>) -> Vec<Recorded> {
    log_of(
        items
            .into_iter()
            .enumerate()
            .map(|(i, (t, b))| (format!("e{i}"), ts(t), b))
            .collect(),
    )
}

fn renumber(log: &mut [Recorded]) {
    for (i, r) in log.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
    }
}

/// The event a void in `log` names, as a log would hand it over: the first stored
/// under that id (`None` for any other event).
fn target<'a>(log: &'a [Recorded], rec: &Recorded) -> Option<&'a Recorded> {
    let id = void_target(&rec.event)?;
    log.iter().find(|r| r.event.event_id == id)
}

fn fold(cfg: OrgConfig, log: &[Recorded]) -> Model {
    let mut s = Model::new(cfg);
    for r in log {
        s.apply(r, target(log, r));
    }
    s
}

fn reports(state: &Model) -> Vec<Vec<ReportRow<'_>>> {
    REPORT_MONTHS
        .iter()
        .map(|m| report(state, month(m), &ReportQuery::default()))
        .collect()
}

/// Ids that an `event_voided` somewhere in the log names, where the named event is in
/// the log and of a voidable type.
fn voided_ids(log: &[Recorded]) -> HashSet<String> {
    let named: HashSet<&str> = log
        .iter()
        .filter_map(|r| match &r.event.body {
            EventBody::EventVoided(v) => Some(v.voided_event_id.as_str()),
            _ => None,
        })
        .collect();
    log.iter()
        .filter(|r| named.contains(r.event.event_id.as_str()) && is_voidable(&r.event.body))
        .map(|r| r.event.event_id.clone())
        .collect()
}

/// The actuals computed in one go: the sum of the contributions of every event that is
/// not voided, zero entries dropped.
/// The state's actuals as one map, to compare with [`batch_actuals`].
fn actuals_of(state: &Model) -> Actuals {
    state
        .actuals()
        .map(|((rep, m), b)| {
            (
                (rep.to_owned(), m),
                b.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            )
        })
        .collect()
}

fn batch_actuals(log: &[Recorded], tz: Tz) -> Actuals {
    let voided = voided_ids(log);
    let mut out: Actuals = BTreeMap::new();
    for r in log.iter().filter(|r| !voided.contains(&r.event.event_id)) {
        for c in contributions(&r.event, tz) {
            *out.entry((c.rep, c.month))
                .or_default()
                .entry(c.bucket)
                .or_insert(0) += c.delta;
        }
    }
    for buckets in out.values_mut() {
        buckets.retain(|_, v| *v != 0);
    }
    out.retain(|_, b| !b.is_empty());
    out
}

fn row<'a, 's>(rows: &'a [ReportRow<'s>], rep: &str, bucket: &str) -> &'a ReportRow<'s> {
    let b = Bucket::parse(bucket).unwrap();
    rows.iter()
        .find(|r| r.rep == rep && *r.bucket == b)
        .unwrap_or_else(|| panic!("no row {rep} {bucket}"))
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(values).prop_map(str::to_owned)
}

fn rep() -> impl Strategy<Value = String> {
    one_of(&REPS)
}

fn account() -> impl Strategy<Value = String> {
    one_of(&ACCOUNTS)
}

fn deal() -> impl Strategy<Value = String> {
    one_of(&DEALS)
}

fn product() -> impl Strategy<Value = Option<String>> {
    prop::option::of(one_of(&PRODUCTS))
}

fn region() -> impl Strategy<Value = Option<String>> {
    prop::option::of(one_of(&REGIONS))
}

fn customer_kind() -> impl Strategy<Value = CustomerKind> {
    prop_oneof![Just(CustomerKind::New), Just(CustomerKind::Existing)]
}

/// Non-negative amounts, with small odd values to exercise split rounding.
fn amount() -> impl Strategy<Value = Money> {
    prop_oneof![0i64..=20, 0i64..=5_000_000].prop_map(money)
}

/// A date in 2026-10-01 ..= 2026-12-31.
fn day() -> impl Strategy<Value = Date> {
    (0i32..92).prop_map(|d| date("2026-10-01").add_days(d))
}

fn plan_month() -> impl Strategy<Value = Month> {
    (0i32..3).prop_map(|k| month("2026-10").plus(k))
}

/// An instant in 2026-10-01T00:00Z .. 2027-01-01T00:00Z, on the minute.
fn instant() -> impl Strategy<Value = Timestamp> {
    let base = ts("2026-10-01T00:00:00Z").micros();
    (0i64..92 * 24 * 60).prop_map(move |m| Timestamp::from_micros(base + m * 60_000_000))
}

fn percent() -> impl Strategy<Value = Percent> {
    (0u16..=10_000).prop_map(pct)
}

/// Splits that sum to exactly 100%: none, one rep, two distinct reps, or all three.
fn splits() -> impl Strategy<Value = Vec<Split>> {
    let split = |rep: &str, h: u16| Split {
        rep: rep.to_owned(),
        percent: pct(h),
    };
    prop_oneof![
        2 => Just(Vec::new()),
        1 => rep().prop_map(move |r| vec![split(&r, 10_000)]),
        1 => (0usize..3, 1usize..3, 1u16..10_000).prop_map(move |(i, j, a)| {
            vec![split(REPS[i], a), split(REPS[(i + j) % 3], 10_000 - a)]
        }),
        1 => (1u16..5_000, 1u16..5_000).prop_map(move |(a, b)| {
            vec![split("ana", a), split("ben", b), split("cy", 10_000 - a - b)]
        }),
    ]
}

fn deal_opened() -> impl Strategy<Value = EventBody> {
    (
        deal(),
        rep(),
        account(),
        customer_kind(),
        product(),
        region(),
        amount(),
        day(),
        prop::option::of(percent()),
    )
        .prop_map(
            |(
                deal,
                rep,
                account,
                customer_kind,
                product,
                region,
                amount,
                expected_close,
                probability,
            )| {
                EventBody::DealOpened(DealOpened {
                    deal,
                    rep,
                    account,
                    customer_kind,
                    product,
                    region,
                    amount,
                    expected_close,
                    probability,
                })
            },
        )
}

fn deal_stage_changed() -> impl Strategy<Value = EventBody> {
    (
        deal(),
        one_of(&["qualify", "proposal", "negotiation"]),
        prop::option::of(percent()),
        prop::option::of(amount()),
        prop::option::of(day()),
    )
        .prop_map(|(deal, stage, probability, amount, expected_close)| {
            EventBody::DealStageChanged(DealStageChanged {
                deal,
                stage,
                probability,
                amount,
                expected_close,
            })
        })
}

fn deal_won() -> impl Strategy<Value = EventBody> {
    (
        deal(),
        rep(),
        account(),
        customer_kind(),
        product(),
        region(),
        amount(),
        day(),
        splits(),
    )
        .prop_map(
            |(deal, rep, account, customer_kind, product, region, amount, closed_on, splits)| {
                EventBody::DealWon(DealWon {
                    deal,
                    rep,
                    account,
                    customer_kind,
                    product,
                    region,
                    amount,
                    closed_on,
                    splits,
                })
            },
        )
}

fn deal_lost() -> impl Strategy<Value = EventBody> {
    (deal(), prop::option::of(Just("price".to_owned())))
        .prop_map(|(deal, reason)| EventBody::DealLost(DealLost { deal, reason }))
}

fn activity_logged() -> impl Strategy<Value = EventBody> {
    (
        rep(),
        one_of(&KINDS),
        prop::option::of(account()),
        prop::option::of(deal()),
    )
        .prop_map(|(rep, kind, account, deal)| {
            EventBody::ActivityLogged(ActivityLogged {
                rep,
                kind,
                account,
                deal,
            })
        })
}

fn retention() -> impl Strategy<Value = EventBody> {
    (
        prop::sample::select(&RetentionKind::ALL[..]),
        rep(),
        account(),
        product(),
        region(),
        amount(),
        day(),
    )
        .prop_map(
            |(kind, rep, account, product, region, amount, effective_on)| {
                EventBody::Retention(
                    kind,
                    RetentionChange {
                        rep,
                        account,
                        product,
                        region,
                        amount,
                        effective_on,
                    },
                )
            },
        )
}

fn customer_rated() -> impl Strategy<Value = EventBody> {
    (rep(), account(), 1u8..=5, 1u8..=5, 1u8..=5, 1u8..=5).prop_map(
        |(rep, account, listening, trust, problem_solving, responsiveness)| {
            EventBody::CustomerRated(CustomerRated {
                rep,
                account,
                listening,
                trust,
                problem_solving,
                responsiveness,
            })
        },
    )
}

fn forecast_submitted() -> impl Strategy<Value = EventBody> {
    (
        rep(),
        plan_month(),
        amount(),
        prop::option::of(prop_oneof![
            Just(ForecastCategory::Commit),
            Just(ForecastCategory::BestCase)
        ]),
    )
        .prop_map(|(rep, month, amount, category)| {
            EventBody::ForecastSubmitted(ForecastSubmitted {
                rep,
                month,
                amount,
                category,
            })
        })
}

fn plan_published() -> impl Strategy<Value = EventBody> {
    let line = (
        rep(),
        plan_month(),
        one_of(&[
            "total",
            "new_customer",
            "retention",
            "geo:emea",
            "product:p1",
            "account:a1",
            "activity:call",
        ]),
        0i64..=2_000_000,
    )
        .prop_map(|(rep, month, bucket, target)| PlanLine {
            rep,
            month,
            bucket: Bucket::parse(&bucket).unwrap(),
            target,
        });
    (
        1u32..5,
        prop_oneof![
            Just(PlanBasis::TopDown),
            Just(PlanBasis::BottomUp),
            Just(PlanBasis::Revision)
        ],
        0i32..3,
        0i32..3,
        prop::collection::vec(line, 0..6),
    )
        .prop_map(|(version, basis, a, b, lines)| {
            EventBody::PlanPublished(PlanPublished {
                plan: "fy27".into(),
                version,
                basis,
                horizon_start: month("2026-10").plus(a.min(b)),
                effective_from: month("2026-10").plus(a.max(b)),
                currency: eur(),
                lines,
            })
        })
}

fn rep_registered() -> impl Strategy<Value = EventBody> {
    (rep(), one_of(&["north", "south"]), region()).prop_map(|(rep, team, region)| {
        EventBody::RepRegistered(RepRegistered {
            name: rep.to_uppercase(),
            rep,
            team,
            manager: "maria".into(),
            region,
            start_month: None,
        })
    })
}

fn rep_reassigned() -> impl Strategy<Value = EventBody> {
    (
        rep(),
        prop::option::of(one_of(&["north", "south"])),
        plan_month(),
    )
        .prop_map(|(rep, team, effective_month)| {
            EventBody::RepReassigned(RepReassigned {
                rep,
                team,
                manager: None,
                region: None,
                effective_month,
            })
        })
}

fn alert_acknowledged() -> impl Strategy<Value = EventBody> {
    one_of(&["al-1", "al-2"]).prop_map(|alert_id| {
        EventBody::AlertAcknowledged(AlertAcknowledged {
            alert_id,
            by: "maria".into(),
            note: None,
        })
    })
}

/// The events that move actuals.
fn contributing() -> impl Strategy<Value = EventBody> {
    prop_oneof![deal_won(), retention(), activity_logged()]
}

/// Every voidable event type.
fn voidable() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        forecast_submitted(),
        deal_opened(),
        deal_stage_changed(),
        deal_won(),
        deal_lost(),
        activity_logged(),
        retention(),
        customer_rated(),
    ]
}

/// One generated log entry; a void names an entry by a raw index that is reduced
/// modulo (log length + 2), so it can target an earlier event, a later one, itself,
/// or an id that never arrives.
#[derive(Clone, Debug)]
enum Gen {
    Body(EventBody),
    Void(usize),
}

fn gen_entry() -> impl Strategy<Value = (Timestamp, Gen)> {
    let body = prop_oneof![
        2 => rep_registered(),
        1 => rep_reassigned(),
        4 => deal_opened(),
        3 => deal_stage_changed(),
        5 => deal_won(),
        2 => deal_lost(),
        4 => activity_logged(),
        5 => retention(),
        1 => customer_rated(),
        1 => forecast_submitted(),
        1 => plan_published(),
        2 => Just(EventBody::ClockTick),
        1 => alert_acknowledged(),
    ];
    let entry = prop_oneof![6 => body.prop_map(Gen::Body), 1 => any::<usize>().prop_map(Gen::Void)];
    (instant(), entry)
}

fn build(entries: Vec<(Timestamp, Gen)>) -> Vec<Recorded> {
    let n = entries.len();
    log_of(
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (t, g))| {
                let body = match g {
                    Gen::Body(b) => b,
                    Gen::Void(raw) => EventBody::EventVoided(EventVoided {
                        voided_event_id: format!("e{}", raw % (n + 2)),
                        reason: None,
                    }),
                };
                (format!("e{i}"), t, body)
            })
            .collect(),
    )
}

fn event_log() -> impl Strategy<Value = Vec<Recorded>> {
    prop::collection::vec(gen_entry(), 0..200).prop_map(build)
}

fn config() -> ProptestConfig {
    // Fixed case count; no regression files are written next to the sources
    // (proptest prints the failing case and its seed on failure).
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// After every event of `log` folded with `cfg`, every rep's standing alerts are
/// exactly the conditions that hold for that rep now, with their current figures and
/// text; each alert's id is the hash of its rule, rep, bucket, month and week; and no
/// rep has more than `max_focus_per_rep` focus items.
fn standing_alerts_hold(cfg: OrgConfig, log: &[Recorded]) -> Result<(), TestCaseError> {
    let mut state = Model::new(cfg);
    for (i, rec) in log.iter().enumerate() {
        state.apply(rec, target(log, rec));
        let Some(now) = state.now() else {
            prop_assert_eq!(state.alert_book().iter().count(), 0);
            continue;
        };
        let book = state.alert_book();
        let cfg = &state.config().alerts;
        for rep in state.reps().keys() {
            let want = findings(&state, rep, now, cfg);
            let mut have: Vec<_> = book
                .iter()
                .filter(|a| a.rep == *rep && a.is_standing())
                .map(|a| a.finding.clone())
                .collect();
            have.sort_by_key(|f| f.key());
            prop_assert_eq!(
                have,
                want,
                "rep {} after event {} ({:?})",
                rep,
                i,
                rec.event.body
            );
        }
    }
    let book = state.alert_book();
    for a in book.iter() {
        prop_assert_eq!(&a.id, &alert_id(&a.finding.key(), &a.rep, a.week));
    }
    let cfg = &state.config().alerts;
    let focus = book.focus(cfg);
    let mut per_rep: BTreeMap<&str, u32> = BTreeMap::new();
    for a in book.iter().filter(|a| focus.contains(&a.id)) {
        prop_assert!(a.is_standing());
        *per_rep.entry(a.rep.as_str()).or_default() += 1;
    }
    prop_assert!(per_rep.values().all(|n| *n <= cfg.max_focus_per_rep));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// After every event of any log, every rep's standing alerts are exactly the
    /// conditions that hold for that rep now, with their current figures and text (so
    /// the fold re-evaluated every rule an event can change, for every rep it
    /// touched); each alert's id is the hash of its rule, rep, bucket, month and week;
    /// and no rep has more than `max_focus_per_rep` focus items.
    #[test]
    fn standing_alerts_are_exactly_the_conditions_that_hold_now(log in event_log()) {
        standing_alerts_hold(berlin(), &log)?;
    }

    /// The same with the pacing curve learned from a single month of history: an
    /// event in a past month moves every rep's expected-to-date, and every rep is
    /// re-evaluated for it.
    #[test]
    fn standing_alerts_hold_with_a_learned_curve(log in event_log()) {
        let mut cfg = berlin();
        cfg.pace.min_history_months = 1;
        standing_alerts_hold(cfg, &log)?;
    }

    /// The deal index the fold keeps in step (views changed in place as facts arrive,
    /// relinked on openings and voids) equals the views computed afresh from each
    /// deal's facts, and each rep's open deals are exactly its open views.
    #[test]
    fn deal_index_equals_views_from_facts(log in event_log()) {
        let state = fold(berlin(), &log);
        let fresh: Vec<DealView> =
            state.deals().filter_map(|d| d.view()).collect();
        let kept: Vec<DealView> = state.deal_views().collect();
        prop_assert_eq!(&kept, &fresh);
        for rep in state.reps().keys() {
            let open: Vec<DealView> = state.open_deals(rep).collect();
            let want: Vec<DealView> = fresh
                .iter()
                .filter(|v| v.rep == *rep && v.status == DealStatus::Open)
                .cloned()
                .collect();
            prop_assert_eq!(open, want, "rep {}", rep);
            let owned: Vec<DealView> = state.rep_deals(rep).collect();
            let want: Vec<DealView> = fresh.iter().filter(|v| v.rep == *rep).cloned().collect();
            prop_assert_eq!(owned, want, "rep {}", rep);
            // The open deals indexed by close month: the open views of the month.
            let mut months: Vec<Month> = fresh.iter().map(|v| v.expected_close.month()).collect();
            months.extend(REPORT_MONTHS.iter().map(|m| month(m)));
            months.sort();
            months.dedup();
            for m in months {
                let closing: Vec<DealView> = state.open_deals_closing(rep, m).collect();
                let want: Vec<DealView> = fresh
                    .iter()
                    .filter(|v| {
                        v.rep == *rep
                            && v.status == DealStatus::Open
                            && v.expected_close.month() == m
                    })
                    .cloned()
                    .collect();
                prop_assert_eq!(closing, want, "rep {} month {}", rep, m);
            }
        }
    }

    /// Every report row equals the figures computed afresh: plan lines and actuals
    /// looked up one by one, and the forecast's pipeline from views computed from each
    /// deal's facts. A team or bucket query gives exactly the rows of the full report
    /// with that team or bucket.
    #[test]
    fn report_rows_equal_a_fresh_computation(log in event_log()) {
        let state = fold(berlin(), &log);
        let fresh: Vec<DealView> =
            state.deals().filter_map(|d| d.view()).collect();
        for m in REPORT_MONTHS.iter().map(|m| month(m)) {
            let pace = state.pace().filter(|p| p.month == m);
            let mut cells: BTreeMap<(String, Bucket), (i64, i64)> = BTreeMap::new();
            for (rep, bucket, target) in state.plans().lines(m) {
                cells.entry((rep.to_owned(), bucket.clone())).or_default().0 = target;
            }
            for ((rep, am), buckets) in state.actuals() {
                if am == m {
                    for (bucket, actual) in buckets {
                        cells.entry((rep.to_owned(), bucket.clone())).or_default().1 = *actual;
                    }
                }
            }
            let mut pipeline: BTreeMap<(String, Bucket), i64> = BTreeMap::new();
            for v in fresh.iter().filter(|v| v.status == DealStatus::Open && v.expected_close.month() == m) {
                let movement = Movement {
                    rep: v.rep,
                    on: v.expected_close,
                    account: v.account,
                    customer_kind: v.customer_kind,
                    product: v.product,
                    region: v.region,
                    amount: weighted(v.amount, v.probability.map_or(0, |p| p.hundredths())),
                };
                for bucket in movement.buckets() {
                    let slot = pipeline.entry((v.rep.to_owned(), bucket)).or_insert(0);
                    *slot = slot.saturating_add(movement.amount);
                }
            }
            let want: Vec<_> = cells
                .iter()
                .map(|((rep, bucket), (plan, actual))| {
                    let weighted = pipeline.get(&(rep.clone(), bucket.clone())).copied().unwrap_or(0);
                    (
                        rep.clone(),
                        state.rep_at(rep, m).team,
                        bucket.clone(),
                        *plan,
                        *actual,
                        pace.map(|p| p.expected_to_date(*plan)),
                        pace.filter(|_| !bucket.is_activity()).map(|_| actual.saturating_add(weighted)),
                        pace.and_then(|p| p.run_rate_projection(*actual)),
                    )
                })
                .collect();
            let rows = report(&state, m, &ReportQuery::default());
            let got: Vec<_> = rows
                .iter()
                .map(|r| {
                    (
                        r.rep.to_owned(),
                        r.team.to_owned(),
                        r.bucket.clone(),
                        r.plan,
                        r.actual,
                        r.expected_to_date,
                        r.forecast,
                        r.projection,
                    )
                })
                .collect();
            prop_assert_eq!(&got, &want, "month {}", m);
            prop_assert!(rows.iter().all(|r| r.month == m && r.currency == state.config().currency));
            for team in ["north", "south", "unassigned"] {
                let only = report(&state, m, &ReportQuery { team: Some(team.into()), ..ReportQuery::default() });
                let want: Vec<_> = rows.iter().filter(|r| r.team == team).copied().collect();
                prop_assert_eq!(only, want, "team {} month {}", team, m);
            }
            for bucket in ["total", "retention", "activity:call"] {
                let b = Bucket::parse(bucket).unwrap();
                let only = report(&state, m, &ReportQuery { bucket: Some(b.clone()), ..ReportQuery::default() });
                let want: Vec<_> = rows.iter().filter(|r| *r.bucket == b).copied().collect();
                prop_assert_eq!(only, want, "bucket {} month {}", bucket, m);
            }
        }
    }

    /// new_customer + retention == total; geo:* and product:* each sum to total; and
    /// every report is sorted by rep then bucket name, with variance = A − P.
    #[test]
    fn bucket_invariants_hold_after_any_log(log in event_log()) {
        let state = fold(berlin(), &log);
        for ((rep, m), buckets) in state.actuals() {
            let get = |b: &Bucket| buckets.get(b).copied().unwrap_or(0);
            let total = get(&Bucket::Total);
            prop_assert_eq!(get(&Bucket::NewCustomer) + get(&Bucket::Retention), total, "{} {}", rep, m);
            let geo: i64 = buckets.iter().filter(|(b, _)| matches!(b, Bucket::Geo(_))).map(|(_, v)| v).sum();
            let product: i64 = buckets.iter().filter(|(b, _)| matches!(b, Bucket::Product(_))).map(|(_, v)| v).sum();
            prop_assert_eq!(geo, total, "geo {} {}", rep, m);
            prop_assert_eq!(product, total, "product {} {}", rep, m);
            prop_assert!(buckets.iter().all(|(_, v)| *v != 0), "zero bucket kept for {} {}", rep, m);
        }
        for rows in reports(&state) {
            let keys: Vec<(String, String)> = rows.iter().map(|r| (r.rep.to_owned(), r.bucket.to_string())).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&keys, &sorted);
            for r in &rows {
                prop_assert_eq!(r.variance(), r.actual - r.plan);
                prop_assert_eq!(r.attainment().is_none(), r.plan == 0);
            }
        }
    }

    /// Folding event by event gives the same actuals as summing the contributions of
    /// every non-voided event at once.
    #[test]
    fn incremental_fold_equals_batch(log in event_log()) {
        let state = fold(berlin(), &log);
        prop_assert_eq!(actuals_of(&state), batch_actuals(&log, chrono_tz::Europe::Berlin));
    }

    /// One go == two halves with reports computed in between; two rebuilds are equal.
    #[test]
    fn fold_is_deterministic_and_reports_do_not_disturb_it(log in event_log(), cut in any::<Index>()) {
        let whole = fold(berlin(), &log);
        let k = cut.index(log.len() + 1);
        let mut halves = Model::new(berlin());
        for r in &log[..k] {
            halves.apply(r, target(&log, r));
        }
        let _ = reports(&halves);
        let _ = halves.weighted_pipeline(month("2026-11"));
        for r in &log[k..] {
            halves.apply(r, target(&log, r));
        }
        prop_assert!(whole == halves, "state differs after folding in halves at {}", k);
        prop_assert!(whole == fold(berlin(), &log), "two rebuilds differ");
        prop_assert_eq!(reports(&whole), reports(&halves));
    }

    /// Appending a voidable event and then a void of it changes no report row and no
    /// actual.
    #[test]
    fn appending_an_event_and_its_void_changes_nothing(
        log in event_log(),
        extra in voidable(),
        at in instant(),
    ) {
        let before = fold(berlin(), &log);
        let mut longer = log.clone();
        longer.extend(log_of(vec![
            ("x-extra".into(), at, extra),
            (
                "x-void".into(),
                at,
                EventBody::EventVoided(EventVoided { voided_event_id: "x-extra".into(), reason: None }),
            ),
        ]));
        renumber(&mut longer);
        let after = fold(berlin(), &longer);
        prop_assert_eq!(actuals_of(&before), actuals_of(&after));
        prop_assert_eq!(reports(&before), reports(&after));
    }

    /// Voiding a contributing event removes exactly its contributions: the result is as
    /// if it had never been in the log.
    #[test]
    fn void_removes_exactly_its_contributions(
        entries in prop::collection::vec(gen_entry(), 0..200),
        target in contributing(),
        at in instant(),
        pos in any::<Index>(),
    ) {
        let mut entries = entries;
        let p = pos.index(entries.len() + 1);
        entries.insert(p, (at, Gen::Body(target)));
        let log = build(entries);
        let target_id = format!("e{p}");

        let mut voided = log.clone();
        voided.extend(log_of(vec![(
            "x-void".into(),
            at,
            EventBody::EventVoided(EventVoided { voided_event_id: target_id.clone(), reason: None }),
        )]));
        renumber(&mut voided);

        let mut without = log.clone();
        without.remove(p);
        renumber(&mut without);

        let a = fold(berlin(), &voided);
        let b = fold(berlin(), &without);
        prop_assert!(a.is_voided(&target_id));
        prop_assert_eq!(actuals_of(&a), actuals_of(&b));
        prop_assert_eq!(reports(&a), reports(&b));
    }
}

// ---------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------

fn won(
    deal: &str,
    rep: &str,
    account: &str,
    kind: CustomerKind,
    amount: i64,
    closed_on: &str,
) -> EventBody {
    EventBody::DealWon(DealWon {
        deal: deal.into(),
        rep: rep.into(),
        account: account.into(),
        customer_kind: kind,
        product: None,
        region: None,
        amount: money(amount),
        closed_on: date(closed_on),
        splits: Vec::new(),
    })
}

fn opened(
    deal: &str,
    rep: &str,
    amount: i64,
    expected_close: &str,
    probability: Option<u16>,
) -> EventBody {
    EventBody::DealOpened(DealOpened {
        deal: deal.into(),
        rep: rep.into(),
        account: "a1".into(),
        customer_kind: CustomerKind::New,
        product: None,
        region: None,
        amount: money(amount),
        expected_close: date(expected_close),
        probability: probability.map(pct),
    })
}

fn retention_change(
    kind: RetentionKind,
    rep: &str,
    account: &str,
    amount: i64,
    on: &str,
) -> EventBody {
    EventBody::Retention(
        kind,
        RetentionChange {
            rep: rep.into(),
            account: account.into(),
            product: Some("p1".into()),
            region: Some("us".into()),
            amount: money(amount),
            effective_on: date(on),
        },
    )
}

fn activity(rep: &str, kind: &str) -> EventBody {
    EventBody::ActivityLogged(ActivityLogged {
        rep: rep.into(),
        kind: kind.into(),
        account: None,
        deal: None,
    })
}

fn plan(
    version: u32,
    basis: PlanBasis,
    effective_from: &str,
    lines: &[(&str, &str, &str, i64)],
) -> EventBody {
    EventBody::PlanPublished(PlanPublished {
        plan: "fy27".into(),
        version,
        basis,
        horizon_start: month("2026-10"),
        effective_from: month(effective_from),
        currency: eur(),
        lines: lines
            .iter()
            .map(|(rep, m, bucket, target)| PlanLine {
                rep: (*rep).into(),
                month: month(m),
                bucket: Bucket::parse(bucket).unwrap(),
                target: *target,
            })
            .collect(),
    })
}

fn register(rep: &str, team: &str) -> EventBody {
    EventBody::RepRegistered(RepRegistered {
        rep: rep.into(),
        name: rep.to_uppercase(),
        team: team.into(),
        manager: "maria".into(),
        region: None,
        start_month: None,
    })
}

#[test]
fn a_won_deal_counts_its_amount_in_its_closed_on_month() {
    let amount = eur().parse_minor("12500.00").unwrap();
    assert_eq!(amount, 1_250_000);
    let body = EventBody::DealWon(DealWon {
        deal: "d-17".into(),
        rep: "ana".into(),
        account: "acme".into(),
        customer_kind: CustomerKind::New,
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: money(amount),
        closed_on: date("2026-11-03"),
        splits: Vec::new(),
    });
    // Occurred in October, closed in November: November counts.
    let state = fold(utc(), &simple_log(vec![("2026-10-28T10:00:00Z", body)]));
    let nov = month("2026-11");
    let expected: BTreeMap<Bucket, i64> = [
        "total",
        "geo:emea",
        "product:analytics",
        "account:acme",
        "new_customer",
    ]
    .iter()
    .map(|b| (Bucket::parse(b).unwrap(), 1_250_000))
    .collect();
    let mut all = Actuals::new();
    all.insert(("ana".into(), nov), expected);
    assert_eq!(actuals_of(&state), all);
    assert_eq!(state.actual("ana", month("2026-10"), &Bucket::Total), 0);
}

#[test]
fn a_split_deal_shares_the_amount_exactly() {
    let EventBody::DealWon(mut deal) =
        won("d1", "ana", "a1", CustomerKind::New, 10_001, "2026-11-03")
    else {
        unreachable!()
    };
    deal.splits = vec![
        Split {
            rep: "ana".into(),
            percent: pct(5_000),
        },
        Split {
            rep: "ben".into(),
            percent: pct(5_000),
        },
    ];
    let body = EventBody::DealWon(deal);
    let state = fold(utc(), &simple_log(vec![("2026-11-03T10:00:00Z", body)]));
    let nov = month("2026-11");
    // 100.01 EUR halved: 50.005 each; the odd cent goes to the first split on the tie.
    assert_eq!(state.actual("ana", nov, &Bucket::Total), 5_001);
    assert_eq!(state.actual("ben", nov, &Bucket::Total), 5_000);
    assert_eq!(state.actual("ben", nov, &Bucket::NewCustomer), 5_000);
}

#[test]
fn churn_and_contraction_subtract_renewal_and_expansion_add() {
    let log = simple_log(vec![
        (
            "2026-11-05T10:00:00Z",
            won("d1", "ana", "a1", CustomerKind::New, 100_000, "2026-11-05"),
        ),
        (
            "2026-11-20T10:00:00Z",
            retention_change(RetentionKind::Churned, "ana", "a2", 30_000, "2026-11-20"),
        ),
    ]);
    let state = fold(utc(), &log);
    let nov = month("2026-11");
    let a = |b: &str| state.actual("ana", nov, &Bucket::parse(b).unwrap());
    assert_eq!(a("total"), 100_000 - 30_000);
    assert_eq!(a("new_customer"), 100_000);
    assert_eq!(a("retention"), -30_000);
    assert_eq!(a("geo:unassigned"), 100_000);
    assert_eq!(a("geo:us"), -30_000);
    assert_eq!(a("product:unassigned"), 100_000);
    assert_eq!(a("product:p1"), -30_000);
    assert_eq!(a("account:a1"), 100_000);
    assert_eq!(a("account:a2"), -30_000);

    let log = simple_log(vec![
        (
            "2026-12-01T10:00:00Z",
            retention_change(RetentionKind::Renewed, "ben", "a1", 1_000, "2026-12-01"),
        ),
        (
            "2026-12-01T10:00:00Z",
            retention_change(RetentionKind::Expanded, "ben", "a1", 200, "2026-12-02"),
        ),
        (
            "2026-12-01T10:00:00Z",
            retention_change(RetentionKind::Contracted, "ben", "a1", 50, "2026-12-03"),
        ),
        (
            "2026-12-01T10:00:00Z",
            retention_change(RetentionKind::Churned, "ben", "a1", 7, "2026-12-04"),
        ),
    ]);
    let state = fold(utc(), &log);
    let dec = month("2026-12");
    assert_eq!(state.actual("ben", dec, &Bucket::Retention), 1_143);
    assert_eq!(state.actual("ben", dec, &Bucket::Total), 1_143);
    assert_eq!(state.actual("ben", dec, &Bucket::NewCustomer), 0);
}

#[test]
fn an_activity_counts_in_the_local_month_of_occurred_at() {
    let log = simple_log(vec![("2026-11-30T23:30:00Z", activity("ana", "call"))]);
    let call = Bucket::Activity("call".into());
    // 00:30 on 1 December in Berlin.
    let state = fold(berlin(), &log);
    assert_eq!(state.actual("ana", month("2026-12"), &call), 1);
    assert_eq!(state.actual("ana", month("2026-11"), &call), 0);
    // 23:30 on 30 November in UTC.
    let state = fold(utc(), &log);
    assert_eq!(state.actual("ana", month("2026-11"), &call), 1);
    assert_eq!(state.actual("ana", month("2026-12"), &call), 0);
}

#[test]
fn a_void_that_overtakes_its_event_makes_it_count_for_nothing() {
    let log = log_of(vec![
        (
            "v".into(),
            ts("2026-11-03T10:00:00Z"),
            EventBody::EventVoided(EventVoided {
                voided_event_id: "w".into(),
                reason: None,
            }),
        ),
        (
            "w".into(),
            ts("2026-11-03T10:00:00Z"),
            won("d1", "ana", "a1", CustomerKind::New, 500, "2026-11-03"),
        ),
        (
            "a".into(),
            ts("2026-11-03T10:00:00Z"),
            activity("ana", "call"),
        ),
    ]);
    let state = fold(utc(), &log);
    assert_eq!(state.actual("ana", month("2026-11"), &Bucket::Total), 0);
    assert_eq!(
        state.actual("ana", month("2026-11"), &Bucket::Activity("call".into())),
        1
    );
    assert_eq!(state.actuals().count(), 1);
}

#[test]
fn pace_expected_to_date_and_gap_in_the_current_month() {
    let plan_total = eur().parse_minor("100000.00").unwrap();
    assert_eq!(plan_total, 10_000_000);
    let log = simple_log(vec![
        ("2026-10-20T08:00:00Z", register("ana", "north")),
        (
            "2026-10-20T08:00:00Z",
            plan(
                1,
                PlanBasis::TopDown,
                "2026-11",
                &[("ana", "2026-11", "total", plan_total)],
            ),
        ),
        (
            "2026-11-10T10:00:00Z",
            won("d1", "ana", "a1", CustomerKind::New, 500_000, "2026-11-10"),
        ),
        ("2026-11-18T09:00:00Z", EventBody::ClockTick),
    ]);
    let state = fold(berlin(), &log);
    let rows = report(&state, month("2026-11"), &ReportQuery::default());
    let total = row(&rows, "ana", "total");
    assert_eq!(total.team, "north");
    assert_eq!(total.plan, 10_000_000);
    assert_eq!(total.actual, 500_000);
    assert_eq!(total.variance(), 500_000 - 10_000_000);
    // November 2026: 21 working days, Wednesday the 18th is the 13th.
    // 10 000 000 × 13 / 21 = 6 190 476.19… → 6 190 476.
    assert_eq!(total.expected_to_date, Some(6_190_476));
    assert_eq!(total.pace_gap(), Some(500_000 - 6_190_476));
    // 500 000 × 21 / 13 = 807 692.30… → 807 692.
    assert_eq!(total.projection, Some(807_692));
    let att = total.attainment().unwrap();
    assert_eq!((att.num, att.den), (500_000, 10_000_000));

    // A month that is not the current one has no pace figures.
    let oct = report(&state, month("2026-10"), &ReportQuery::default());
    assert!(oct.is_empty());
    let state_without_tick = fold(berlin(), &log[..3]);
    let rows = report(
        &state_without_tick,
        month("2026-11"),
        &ReportQuery::default(),
    );
    let total = row(&rows, "ana", "total");
    assert_eq!(
        (total.expected_to_date, total.forecast, total.projection),
        (None, None, None)
    );
}

#[test]
fn forecast_adds_each_open_deal_weighted_and_rounded_on_its_own() {
    let log = simple_log(vec![
        (
            "2026-10-20T08:00:00Z",
            plan(
                1,
                PlanBasis::TopDown,
                "2026-10",
                &[
                    ("ana", "2026-11", "total", 1_000_000),
                    ("ben", "2026-11", "total", 1),
                ],
            ),
        ),
        // 100 001 × 50% = 50 000.5 → 50 001.
        (
            "2026-11-02T10:00:00Z",
            opened("d1", "ana", 100_001, "2026-11-20", Some(5_000)),
        ),
        // 333 × 33.33% = 110.9889 → 111.
        (
            "2026-11-02T10:00:00Z",
            opened("d2", "ana", 333, "2026-11-25", Some(3_333)),
        ),
        // 1 × 50% (set by a stage change) = 0.5 → 1.
        (
            "2026-11-02T10:00:00Z",
            opened("d3", "ana", 1, "2026-11-26", None),
        ),
        (
            "2026-11-03T10:00:00Z",
            EventBody::DealStageChanged(DealStageChanged {
                deal: "d3".into(),
                stage: "proposal".into(),
                probability: Some(pct(5_000)),
                amount: None,
                expected_close: None,
            }),
        ),
        // Expected in December: not in November's forecast.
        (
            "2026-11-02T10:00:00Z",
            opened("d4", "ana", 500_000, "2026-12-05", Some(9_000)),
        ),
        // Lost: not in the forecast.
        (
            "2026-11-02T10:00:00Z",
            opened("d5", "ana", 200_000, "2026-11-20", Some(8_000)),
        ),
        (
            "2026-11-04T10:00:00Z",
            EventBody::DealLost(DealLost {
                deal: "d5".into(),
                reason: None,
            }),
        ),
        // Won: in the actual, no longer in the pipeline.
        (
            "2026-11-02T10:00:00Z",
            opened("d6", "ana", 300_000, "2026-11-20", Some(1_000)),
        ),
        (
            "2026-11-10T10:00:00Z",
            won("d6", "ana", "a1", CustomerKind::New, 300_000, "2026-11-10"),
        ),
        // Another rep's deal counts for that rep only: 100 000 × 50% = 50 000.
        (
            "2026-11-02T10:00:00Z",
            opened("d7", "ben", 100_000, "2026-11-20", Some(5_000)),
        ),
        // No probability at all: weight 0.
        (
            "2026-11-02T10:00:00Z",
            opened("d8", "ana", 7_777, "2026-11-20", None),
        ),
        ("2026-11-18T09:00:00Z", EventBody::ClockTick),
        ("2026-11-18T09:00:00Z", activity("ana", "call")),
    ]);
    let state = fold(utc(), &log);
    let rows = report(&state, month("2026-11"), &ReportQuery::default());
    let ana = row(&rows, "ana", "total");
    assert_eq!(ana.actual, 300_000);
    assert_eq!(ana.forecast, Some(300_000 + 50_001 + 111 + 1));
    assert_eq!(
        row(&rows, "ana", "new_customer").forecast,
        Some(300_000 + 50_001 + 111 + 1)
    );
    let ben = row(&rows, "ben", "total");
    assert_eq!(ben.actual, 0);
    assert_eq!(ben.forecast, Some(50_000));
    // Activity buckets have no money forecast.
    assert_eq!(row(&rows, "ana", "activity:call").forecast, None);
}

#[test]
fn attainment_is_none_where_the_plan_is_zero() {
    let log = simple_log(vec![
        (
            "2026-10-20T08:00:00Z",
            plan(
                1,
                PlanBasis::TopDown,
                "2026-10",
                &[
                    ("ana", "2026-11", "total", 400),
                    ("ana", "2026-11", "retention", 0),
                ],
            ),
        ),
        (
            "2026-11-10T10:00:00Z",
            won("d1", "ana", "a1", CustomerKind::New, 100, "2026-11-10"),
        ),
    ]);
    let state = fold(utc(), &log);
    let rows = report(&state, month("2026-11"), &ReportQuery::default());
    let total = row(&rows, "ana", "total").attainment().unwrap();
    assert_eq!((total.num, total.den), (100, 400));
    assert_eq!(row(&rows, "ana", "new_customer").plan, 0);
    assert_eq!(row(&rows, "ana", "new_customer").attainment(), None);
    // A plan line of 0 with no actual still shows, without attainment.
    let ret = row(&rows, "ana", "retention");
    assert_eq!((ret.plan, ret.actual, ret.attainment()), (0, 0, None));
}

#[test]
fn rows_are_sorted_by_rep_then_bucket_name() {
    let log = simple_log(vec![
        ("2026-11-02T10:00:00Z", activity("cy", "meeting")),
        ("2026-11-02T10:00:00Z", activity("ben", "call")),
        (
            "2026-11-03T10:00:00Z",
            EventBody::DealWon(DealWon {
                deal: "d1".into(),
                rep: "ana".into(),
                account: "a1".into(),
                customer_kind: CustomerKind::Existing,
                product: Some("p1".into()),
                region: Some("emea".into()),
                amount: money(100),
                closed_on: date("2026-11-03"),
                splits: Vec::new(),
            }),
        ),
        ("2026-11-02T10:00:00Z", activity("ana", "demo")),
        (
            "2026-10-20T08:00:00Z",
            plan(
                1,
                PlanBasis::TopDown,
                "2026-10",
                &[
                    ("cy", "2026-11", "total", 5),
                    ("ben", "2026-11", "geo:us", 9),
                ],
            ),
        ),
    ]);
    let state = fold(utc(), &log);
    let rows = report(&state, month("2026-11"), &ReportQuery::default());
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.rep, r.bucket))
        .collect();
    assert_eq!(
        got,
        [
            "ana account:a1",
            "ana activity:demo",
            "ana geo:emea",
            "ana product:p1",
            "ana retention",
            "ana total",
            "ben activity:call",
            "ben geo:us",
            "cy activity:meeting",
            "cy total",
        ]
    );
    // Filters keep the order and drop the rest.
    let only_ana = report(
        &state,
        month("2026-11"),
        &ReportQuery {
            rep: Some("ana".into()),
            ..Default::default()
        },
    );
    assert_eq!(only_ana.len(), 6);
    assert!(only_ana.iter().all(|r| r.rep == "ana"));
}

#[test]
fn a_plan_revision_replaces_lines_only_from_its_effective_month() {
    let log = simple_log(vec![
        (
            "2026-10-01T08:00:00Z",
            plan(
                1,
                PlanBasis::TopDown,
                "2026-10",
                &[
                    ("ana", "2026-10", "total", 100),
                    ("ana", "2026-11", "total", 200),
                    ("ana", "2026-12", "total", 300),
                    ("ana", "2026-12", "activity:call", 5),
                ],
            ),
        ),
        (
            "2026-11-02T08:00:00Z",
            plan(
                2,
                PlanBasis::Revision,
                "2026-11",
                &[
                    ("ana", "2026-10", "total", 999),
                    ("ana", "2026-11", "total", 250),
                    ("ana", "2026-12", "total", 350),
                ],
            ),
        ),
    ]);
    let state = fold(utc(), &log);
    let plan_of = |m: &str| -> Vec<(String, i64)> {
        report(&state, month(m), &ReportQuery::default())
            .iter()
            .map(|r| (r.bucket.to_string(), r.plan))
            .collect()
    };
    // October is before the revision's effective month: version 1 still governs.
    assert_eq!(plan_of("2026-10"), [("total".to_owned(), 100)]);
    assert_eq!(plan_of("2026-11"), [("total".to_owned(), 250)]);
    // From its effective month on the revision's lines replace version 1's for the month.
    assert_eq!(plan_of("2026-12"), [("total".to_owned(), 350)]);
    // Before the revision arrived, version 1 governed every month.
    let early = fold(utc(), &log[..1]);
    let rows = report(&early, month("2026-11"), &ReportQuery::default());
    assert_eq!(row(&rows, "ana", "total").plan, 200);
}

/// Facts can arrive out of order: a `deal_opened` that reaches the log after the
/// `deal_won` of the same deal must not re-open it (the forecast would count the won
/// amount twice, once as actual and once as weighted pipeline).
#[test]
fn a_late_deal_opened_does_not_reopen_a_won_deal() {
    let log = simple_log(vec![
        (
            "2026-11-10T10:00:00Z",
            won("d1", "ana", "a1", CustomerKind::New, 300_000, "2026-11-10"),
        ),
        (
            "2026-11-02T10:00:00Z",
            opened("d1", "ana", 300_000, "2026-11-20", Some(5_000)),
        ),
        ("2026-11-18T09:00:00Z", EventBody::ClockTick),
    ]);
    let state = fold(utc(), &log);
    let rows = report(&state, month("2026-11"), &ReportQuery::default());
    let total = row(&rows, "ana", "total");
    assert_eq!(total.actual, 300_000);
    // The deal is won: nothing of it is open pipeline.
    assert_eq!(total.forecast, Some(300_000));
}
