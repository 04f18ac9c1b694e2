//! The demo organisation: a deterministic generator of a realistic sales history,
//! used by `pacer demo`, by tests and by benchmarks.
//!
//! For a seed and a "now" it builds reps in teams, regions and product lines; a
//! 24-month top-down plan that started 12 months before now (and a mid-year revision);
//! and the history since: deals opened, moved, won and lost, renewals, expansions,
//! contractions and churn, activities and customer ratings, with seasonality,
//! months that back-load, a product-heavy rep, a rep who neglects new business and
//! a few reps clearly off plan. Deals that would close after "now" are still open:
//! that is the pipeline. With `daily_ticks`, every working day ends with a
//! `clock_tick`, as a running Pacer would have logged; the history ends with one at
//! "now". Nothing here reads the clock.

use chrono_tz::Tz;
use pacer_projections::bucket::Bucket;
use pacer_projections::event::*;
use pacer_projections::money::{Currency, Money};
use pacer_projections::time::{Date, Month, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoSpec {
    pub reps: usize,
    pub seed: u64,
    pub now: Timestamp,
    pub timezone: Tz,
    pub currency: Currency,
    /// A `clock_tick` at the end of every working day of the history (18:00 local),
    /// as a running Pacer would have logged: the alerts of every past day are then in
    /// the log's fold, and `pacer alerts backtest` can score them. Only [`generate`]
    /// places them; [`generate_sliced`] ends with the one tick at "now".
    pub daily_ticks: bool,
    /// Months of history before the plan's start, under the previous year's plan: a
    /// track record for the first months of the plan (what an org that imported its
    /// history into Pacer has). 0: the history starts with the plan; at most 12.
    pub prior_months: u32,
}

/// The generated organisation's shape, for the summary and for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoRep {
    pub id: String,
    pub team: String,
    /// Performance against plan the generator aimed for, in percent.
    pub performance_pct: u32,
}

/// A generated history: events in the order they are ingested.
#[derive(Clone, Debug)]
pub struct Demo {
    pub events: Vec<Event>,
    pub reps: Vec<DemoRep>,
}

const TEAMS: [(&str, &str, &str); 5] = [
    ("north", "Maria Keller", "emea"),
    ("south", "Luis Ortega", "emea"),
    ("east", "Priya Nair", "apac"),
    ("west", "Sam Carter", "amer"),
    ("central", "Ingrid Olsen", "amer"),
];
const PRODUCTS: [&str; 4] = ["analytics", "platform", "insights", "connect"];
/// Default product mix of a plan, in percent (same order as PRODUCTS).
const PRODUCT_MIX_PCT: [i64; 4] = [35, 30, 20, 15];
const FIRST_NAMES: [&str; 48] = [
    "ana", "ben", "chloe", "dev", "elena", "farid", "grace", "hugo", "ines", "jonas", "kira",
    "liam", "mila", "noah", "olga", "pablo", "quinn", "rosa", "sven", "tara", "umar", "vera",
    "wes", "xena", "yusuf", "zoe", "arjun", "bea", "carl", "dana", "emil", "fay", "gus", "hana",
    "ivan", "jade", "kai", "lena", "marc", "nina", "omar", "pia", "raj", "sara", "tom", "ula",
    "vik", "wen",
];
/// Month-of-year seasonality in percent (January first): a strong quarter end and
/// December, a quiet summer.
const SEASONALITY_PCT: [i64; 12] = [80, 90, 115, 95, 100, 115, 85, 80, 105, 100, 105, 130];
/// Activities planned per month at 100% (kind, count).
const ACTIVITY_PLAN: [(&str, i64); 4] =
    [("call", 60), ("meeting", 20), ("demo", 8), ("proposal", 5)];

struct Rep {
    id: String,
    name: String,
    team: usize,
    region: &'static str,
    /// Monthly quota in major units of the currency.
    quota: i64,
    performance_pct: i64,
    new_share_pct: i64,
    product_weights: [u32; 4],
    rating_base: u8,
}

/// Builds events with deterministic ids and timestamps.
struct Builder {
    rng: ChaCha8Rng,
    tz: Tz,
    currency: Currency,
    today: Date,
    now: Timestamp,
    /// (occurred_at, generation order, event).
    out: Vec<(Timestamp, u64, Event)>,
    counter: u64,
}

impl Builder {
    fn at(&mut self, day: Date, hour_from: u32, hour_to: u32) -> Timestamp {
        let hour = self.rng.gen_range(hour_from..hour_to);
        let minute = self.rng.gen_range(0..60i64);
        Timestamp::from_micros(day.at_local_hour(hour, self.tz).micros() + minute * 60_000_000)
    }

    fn push(&mut self, occurred_at: Timestamp, id: String, body: EventBody) {
        if occurred_at > self.now {
            return;
        }
        self.counter += 1;
        let source = match body {
            EventBody::PlanPublished(_) | EventBody::CompPlanPublished(_) => "finance",
            EventBody::RepRegistered(_) | EventBody::RepReassigned(_) => "hris",
            EventBody::CustomerRated(_) => "survey",
            _ => "crm",
        };
        self.out.push((
            occurred_at,
            self.counter,
            Event {
                event_id: id,
                source: source.into(),
                occurred_at,
                body,
            },
        ));
    }

    fn money(&self, major: i64) -> Money {
        Money::new(major * 10i64.pow(self.currency.exponent()), self.currency)
    }

    /// A random working day of `month`.
    fn working_day(&mut self, month: Month) -> Date {
        let days: Vec<Date> = month.days().filter(|d| d.is_working_day()).collect();
        days[self.rng.gen_range(0..days.len())]
    }

    /// A random working day of `month` on which revenue closes: B2B months
    /// back-load, so working day i of n is drawn with weight n + 2i (the last day
    /// about three times as likely as the first; half the month's revenue lands in
    /// its last 40%).
    fn closing_day(&mut self, month: Month) -> Date {
        let days: Vec<Date> = month.days().filter(|d| d.is_working_day()).collect();
        let n = days.len();
        let total: usize = (0..n).map(|i| n + 2 * i).sum();
        let mut x = self.rng.gen_range(0..total);
        for (i, d) in days.iter().enumerate() {
            if x < n + 2 * i {
                return *d;
            }
            x -= n + 2 * i;
        }
        days[n - 1]
    }

    fn pick_product(&mut self, weights: &[u32; 4]) -> &'static str {
        let total: u32 = weights.iter().sum();
        let mut x = self.rng.gen_range(0..total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return PRODUCTS[i];
            }
            x -= w;
        }
        PRODUCTS[0]
    }
}

/// Generates the demo history.
pub fn generate(spec: &DemoSpec) -> Demo {
    let org = Org::new(spec);
    let mut b = org.builder(spec);
    let reps = make_reps(&mut b.rng, spec.reps.max(1));
    registrations(&mut b, &org, &reps);
    for (at, id, body) in plan_events(&org, &reps, spec.currency) {
        b.push(at, id, body);
    }
    reassignment(&mut b, &org, &reps);
    for r in &reps {
        rep_history(&mut b, &org, r);
    }
    if spec.daily_ticks {
        daily_ticks(&mut b, &org);
    }
    let mut events = b.take_sorted();
    events.push(final_tick(spec.now));
    Demo {
        events,
        reps: demo_reps(&reps),
    }
}

/// Generates the same events as [`generate`], without ever holding the whole history:
/// `sink` receives them in slices, in this order — the registrations and the team
/// move, then each plan event on its own (one per month and version, every rep's
/// lines), then the history of `reps_per_slice` reps at a time (deals, retention,
/// activities, ratings, pipeline and commits, in time order within the slice), and
/// last the `clock_tick` at "now". The random draws are those of [`generate`], in the
/// same order, so the events are the same set; only their order in the log differs,
/// and no fold result depends on it (no alert is evaluated before the final tick, and
/// each rep's and each deal's events keep their relative order).
///
/// For logs too large to generate at once (`pacer bench --reps 10000`). Returns the
/// organisation's reps; stops at the first error of `sink`.
pub fn generate_sliced<E>(
    spec: &DemoSpec,
    reps_per_slice: usize,
    mut sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<Vec<DemoRep>, E> {
    let org = Org::new(spec);
    let mut b = org.builder(spec);
    let reps = make_reps(&mut b.rng, spec.reps.max(1));
    // The plans draw nothing at random: generating them after the team move keeps
    // the draws in `generate`'s order.
    registrations(&mut b, &org, &reps);
    reassignment(&mut b, &org, &reps);
    sink(b.take_sorted())?;
    for (at, id, body) in plan_events(&org, &reps, spec.currency) {
        b.push(at, id, body);
        sink(b.take_sorted())?;
    }
    for slice in reps.chunks(reps_per_slice.max(1)) {
        for r in slice {
            rep_history(&mut b, &org, r);
        }
        sink(b.take_sorted())?;
    }
    sink(vec![final_tick(spec.now)])?;
    Ok(demo_reps(&reps))
}

/// The teams of the demo organisation: (team, manager, region).
pub fn teams() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    TEAMS.into_iter()
}

/// The months and days every part of the history is placed by.
struct Org {
    today: Date,
    now_month: Month,
    horizon_start: Month,
    /// The first month of the history: `prior_months` before the plan's start.
    history_start: Month,
    /// The month the plan's revision (version 2) takes effect.
    revision_from: Month,
    timezone: Tz,
}

impl Org {
    fn new(spec: &DemoSpec) -> Org {
        let today = spec.now.local_date(spec.timezone);
        let now_month = today.month();
        let horizon_start = now_month.plus(-12);
        Org {
            today,
            now_month,
            horizon_start,
            // The previous year's plan covers at most the 12 months before this one.
            history_start: horizon_start.plus(-(spec.prior_months.min(12) as i32)),
            revision_from: horizon_start.plus(7),
            timezone: spec.timezone,
        }
    }

    fn builder(&self, spec: &DemoSpec) -> Builder {
        Builder {
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            tz: spec.timezone,
            currency: spec.currency,
            today: self.today,
            now: spec.now,
            out: Vec::new(),
            counter: 0,
        }
    }
}

impl Builder {
    /// The events pushed so far, in time order (generation order between equals).
    fn take_sorted(&mut self) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.out);
        out.sort_by_key(|(t, n, _)| (*t, *n));
        out.into_iter().map(|(_, _, e)| e).collect()
    }
}

/// A `clock_tick` at 18:00 local on every working day from the history's start to
/// today (those after "now" are not emitted).
fn daily_ticks(b: &mut Builder, org: &Org) {
    let mut day = org.history_start.first_day();
    while day <= org.today {
        if day.is_working_day() {
            let at = crate::replay::day_end(day, org.timezone);
            b.push(
                at,
                format!("pacer-tick-{}", at.to_rfc3339()),
                EventBody::ClockTick,
            );
        }
        day = day.add_days(1);
    }
}

/// The `clock_tick` at "now" that ends every demo history.
fn final_tick(now: Timestamp) -> Event {
    Event {
        event_id: format!("pacer-tick-{}", now.to_rfc3339()),
        source: "pacer".into(),
        occurred_at: now,
        body: EventBody::ClockTick,
    }
}

fn demo_reps(reps: &[Rep]) -> Vec<DemoRep> {
    reps.iter()
        .map(|r| DemoRep {
            id: r.id.clone(),
            team: TEAMS[r.team].0.into(),
            performance_pct: r.performance_pct as u32,
        })
        .collect()
}

/// Every rep joins, months before the plan starts.
fn registrations(b: &mut Builder, org: &Org, reps: &[Rep]) {
    let setup_day = org.history_start.first_day().add_days(-120);
    for r in reps {
        let (team, manager, _) = TEAMS[r.team];
        let at = b.at(setup_day, 9, 10);
        let start_month = org.horizon_start.plus(-b.rng.gen_range(3..36));
        b.push(
            at,
            format!("hris-{}-registered", r.id),
            EventBody::RepRegistered(RepRegistered {
                rep: r.id.clone(),
                name: r.name.clone(),
                team: team.into(),
                manager: manager.into(),
                region: Some(r.region.into()),
                start_month: Some(start_month),
            }),
        );
    }
}

/// The plan events, lazily, in log order: the previous year's plan for the months
/// of history before this plan (if any); version 1, the top-down plan for the whole
/// horizon, published before it starts; version 2, a revision half-way through, 5%
/// up from its effective month on. Each is published as one `plan_published` per
/// month (effective from that month, in month order), so a plan for many reps stays
/// within the per-event line limit. Nothing here is random.
fn plan_events<'a>(
    org: &'a Org,
    reps: &'a [Rep],
    currency: Currency,
) -> impl Iterator<Item = (Timestamp, String, EventBody)> + 'a {
    let horizon_start = org.horizon_start;
    let prior_start = horizon_start.plus(-12);
    let prior_at = org
        .history_start
        .first_day()
        .add_days(-10)
        .at_local_hour(9, org.timezone);
    let prior = (0..org.history_start.months_until(horizon_start))
        .map(move |k| org.history_start.plus(k))
        .map(move |month| {
            (
                prior_at,
                format!("finance-prior-plan-{month}"),
                EventBody::PlanPublished(PlanPublished {
                    plan: "demo-plan-prior".into(),
                    version: 1,
                    basis: PlanBasis::TopDown,
                    horizon_start: prior_start,
                    effective_from: month,
                    currency,
                    lines: plan_lines(reps, month, currency, 100),
                }),
            )
        });
    let versions = [
        (
            1,
            PlanBasis::TopDown,
            horizon_start,
            horizon_start.first_day().add_days(-10),
            100,
        ),
        (
            2,
            PlanBasis::Revision,
            org.revision_from,
            org.revision_from.first_day().add_days(-5),
            105,
        ),
    ];
    prior
        .chain(std::iter::once(comp_plan_event(org, currency)))
        .chain(
            versions
                .into_iter()
                .flat_map(move |(version, basis, from, day, level_pct)| {
                    let at = day.at_local_hour(9, org.timezone);
                    (0..PlanPublished::HORIZON_MONTHS)
                        .map(move |k| horizon_start.plus(k))
                        .filter(move |month| *month >= from)
                        .map(move |month| {
                            (
                                at,
                                format!("finance-plan-v{version}-{month}"),
                                EventBody::PlanPublished(PlanPublished {
                                    plan: "demo-plan".into(),
                                    version,
                                    basis,
                                    horizon_start,
                                    effective_from: month,
                                    currency,
                                    lines: plan_lines(reps, month, currency, level_pct),
                                }),
                            )
                        })
                }),
        )
}

/// The demo's incentive plan, from the plan's first month: quarterly, every team's
/// reps on 15 000 of variable pay, paid for balance — total 40% (no accelerator
/// unless retention is at 90%), new customers 25%, retention 20%, the report card 15%.
fn comp_plan_event(org: &Org, currency: Currency) -> (Timestamp, String, EventBody) {
    use pacer_projections::event::{
        CompAssignment, CompGate, CompMeasure, CompMeasureKind, CompPeriod, CompPlanPublished,
        CurvePoint,
    };
    let curve = |points: &[(u32, u32)]| -> Vec<CurvePoint> {
        points
            .iter()
            .map(|&(a, p)| CurvePoint {
                attainment_bp: a * 100,
                payout_bp: p * 100,
            })
            .collect()
    };
    let pay = 15_000 * 10i64.pow(currency.exponent());
    let at = org
        .horizon_start
        .first_day()
        .add_days(-9)
        .at_local_hour(9, org.timezone);
    let bucket = |b: Bucket| CompMeasureKind::Bucket(b);
    (
        at,
        "finance-comp-plan-v1".into(),
        EventBody::CompPlanPublished(CompPlanPublished {
            comp_plan: "demo-comp".into(),
            version: 1,
            effective_from: org.horizon_start,
            period: CompPeriod::Quarter,
            currency,
            assignments: TEAMS
                .iter()
                .map(|(team, _, _)| CompAssignment {
                    rep: None,
                    team: Some((*team).to_owned()),
                    variable_pay: pay,
                })
                .collect(),
            measures: vec![
                CompMeasure {
                    kind: bucket(Bucket::Total),
                    weight_bp: 4_000,
                    curve: curve(&[(50, 0), (100, 100)]),
                    accelerator: Some(200),
                    cap_bp: Some(20_000),
                    gate: Some(CompGate {
                        bucket: Bucket::Retention,
                        min_bp: 9_000,
                    }),
                },
                CompMeasure {
                    kind: bucket(Bucket::NewCustomer),
                    weight_bp: 2_500,
                    curve: curve(&[(50, 0), (100, 100)]),
                    accelerator: Some(150),
                    cap_bp: Some(20_000),
                    gate: None,
                },
                CompMeasure {
                    kind: bucket(Bucket::Retention),
                    weight_bp: 2_000,
                    curve: curve(&[(70, 0), (100, 100)]),
                    accelerator: None,
                    cap_bp: Some(15_000),
                    gate: None,
                },
                CompMeasure {
                    kind: CompMeasureKind::ReportCard { target_score: 400 },
                    weight_bp: 1_500,
                    curve: curve(&[(80, 0), (100, 100)]),
                    accelerator: None,
                    cap_bp: Some(10_000),
                    gate: None,
                },
            ],
        }),
    )
}

/// One rep moves team half-way through.
fn reassignment(b: &mut Builder, org: &Org, reps: &[Rep]) {
    if reps.len() <= 5 {
        return;
    }
    let mover = &reps[reps.len() / 2];
    let to = (mover.team + 1) % TEAMS.len().min(reps.len());
    let effective = org.horizon_start.plus(6);
    let at = b.at(effective.first_day().add_days(-3), 9, 10);
    b.push(
        at,
        format!("hris-{}-reassigned", mover.id),
        EventBody::RepReassigned(RepReassigned {
            rep: mover.id.clone(),
            team: Some(TEAMS[to].0.into()),
            manager: Some(TEAMS[to].1.into()),
            region: None,
            effective_month: effective,
        }),
    );
}

/// One rep's history from the history's start (`prior_months` before the plan's),
/// the deals of the next two months already open, and the rep's commits.
fn rep_history(b: &mut Builder, org: &Org, r: &Rep) {
    // Through the month after next: the deals of the next two months that are
    // already open are the pipeline (opportunities open weeks to months ahead).
    for k in org.horizon_start.months_until(org.history_start)..=14 {
        let month = org.horizon_start.plus(k);
        history_month(b, r, month, org.revision_from);
    }
    // The rep's bottom-up commit for this month and the next.
    for (i, month) in [org.now_month, org.now_month.plus(1)]
        .into_iter()
        .enumerate()
    {
        let target = monthly_target(r, month, if month >= org.revision_from { 105 } else { 100 });
        let commit = target * (r.performance_pct + b.rng.gen_range(-5..10)) / 100;
        let day = org.today.add_days(-(b.rng.gen_range(1..5) + 7 * i as i32));
        let at = b.at(day.min(org.today), 9, 12);
        b.push(
            at,
            format!("crm-{}-commit-{month}", r.id),
            EventBody::ForecastSubmitted(ForecastSubmitted {
                rep: r.id.clone(),
                month,
                amount: b.money(commit.max(0)),
                category: Some(ForecastCategory::Commit),
            }),
        );
    }
}

fn make_reps(rng: &mut ChaCha8Rng, n: usize) -> Vec<Rep> {
    let teams = TEAMS.len().min(n);
    (0..n)
        .map(|i| {
            let first = FIRST_NAMES[i % FIRST_NAMES.len()];
            let id = if i < FIRST_NAMES.len() {
                first.to_owned()
            } else {
                format!("{first}{}", i / FIRST_NAMES.len() + 1)
            };
            let team = i % teams;
            let mut name = first.to_owned();
            name[..1].make_ascii_uppercase();
            // A few reps clearly off plan; one product-heavy; one who neglects new business.
            let performance_pct = match i {
                3 | 17 | 29 => rng.gen_range(45..62),
                _ => rng.gen_range(88..118),
            };
            let product_weights = if i == 8 {
                [85, 5, 5, 5]
            } else {
                [35, 30, 20, 15]
            };
            let new_share_pct = if i == 12 { 12 } else { rng.gen_range(40..60) };
            Rep {
                id,
                name: format!(
                    "{name} {}",
                    ["Silva", "Meyer", "Chen", "Okafor", "Novak", "Rossi"][i % 6]
                ),
                team,
                region: TEAMS[team].2,
                quota: rng.gen_range(60..140) * 1000,
                performance_pct,
                new_share_pct,
                product_weights,
                rating_base: if performance_pct < 70 { 3 } else { 4 },
            }
        })
        .collect()
}

/// A rep's revenue target for a month, in major units, at `level_pct` of the base plan.
fn monthly_target(r: &Rep, month: Month, level_pct: i64) -> i64 {
    r.quota * SEASONALITY_PCT[month.month_of_year() as usize - 1] / 100 * level_pct / 100
}

/// The plan lines of one month for every rep, at `level_pct` of the base plan.
fn plan_lines(reps: &[Rep], month: Month, currency: Currency, level_pct: i64) -> Vec<PlanLine> {
    let unit = 10i64.pow(currency.exponent());
    let mut lines = Vec::new();
    for r in reps {
        let total = monthly_target(r, month, level_pct) * unit;
        let mut line = |bucket: Bucket, target: i64| {
            lines.push(PlanLine {
                rep: r.id.clone(),
                month,
                bucket,
                target,
            })
        };
        line(Bucket::Total, total);
        let new = total / 2;
        line(Bucket::NewCustomer, new);
        line(Bucket::Retention, total - new);
        line(Bucket::Geo(r.region.into()), total);
        let mut left = total;
        for (i, p) in PRODUCTS.iter().enumerate() {
            let share = if i + 1 == PRODUCTS.len() {
                left
            } else {
                total * PRODUCT_MIX_PCT[i] / 100
            };
            left -= share;
            line(Bucket::Product((*p).into()), share);
        }
        for (kind, count) in ACTIVITY_PLAN {
            line(Bucket::Activity(kind.into()), count * level_pct / 100);
        }
    }
    lines
}

/// One rep's month: won and lost deals (and their openings), retention movements,
/// activities and ratings. Events after "now" are not emitted; deals that would close
/// after "now" stay open.
fn history_month(b: &mut Builder, r: &Rep, month: Month, revision_from: Month) {
    let level = if month >= revision_from { 105 } else { 100 };
    let target = monthly_target(r, month, level);
    let noise = b.rng.gen_range(85..116);
    let revenue = target * r.performance_pct / 100 * noise / 100;
    let new_revenue = revenue * r.new_share_pct / 100;
    let existing_revenue = revenue - new_revenue;
    let tag = format!("{}-{month}", r.id);

    // New business: 1-4 won deals, and about as many lost.
    let wins = b.rng.gen_range(1..5);
    for (i, amount) in split_amount(&mut b.rng, new_revenue, wins)
        .into_iter()
        .enumerate()
    {
        deal(
            b,
            r,
            month,
            &format!("{tag}-n{i}"),
            CustomerKind::New,
            amount,
            true,
        );
    }
    // Existing customers: an upsell deal, renewals, an expansion, and some losses.
    let upsell = existing_revenue * 35 / 100;
    deal(
        b,
        r,
        month,
        &format!("{tag}-x0"),
        CustomerKind::Existing,
        upsell,
        true,
    );
    let churn = if b.rng.gen_range(0..3) == 0 {
        existing_revenue * b.rng.gen_range(3..12) / 100
    } else {
        0
    };
    let contraction = if b.rng.gen_range(0..2) == 0 {
        existing_revenue * b.rng.gen_range(2..6) / 100
    } else {
        0
    };
    let renewals = existing_revenue - upsell + churn + contraction;
    let expansion = renewals * 20 / 100;
    let movements = [
        (RetentionKind::Renewed, renewals - expansion),
        (RetentionKind::Expanded, expansion),
        (RetentionKind::Contracted, contraction),
        (RetentionKind::Churned, churn),
    ];
    for (j, (kind, amount)) in movements.into_iter().enumerate() {
        if amount <= 0 {
            continue;
        }
        let day = match kind {
            RetentionKind::Renewed | RetentionKind::Expanded => b.closing_day(month),
            RetentionKind::Contracted | RetentionKind::Churned => b.working_day(month),
        };
        let at = b.at(day, 9, 17);
        let product = b.pick_product(&r.product_weights);
        let account = format!("cust-{}-{}", r.id, b.rng.gen_range(1..40));
        let money = b.money(amount);
        b.push(
            at,
            format!("crm-{tag}-{}-{j}", kind.as_str()),
            EventBody::Retention(
                kind,
                RetentionChange {
                    rep: r.id.clone(),
                    account,
                    product: Some(product.into()),
                    region: Some(r.region.into()),
                    amount: money,
                    effective_on: day,
                },
            ),
        );
    }
    // Opportunities lost: about three times the month's bookings at face value, so
    // a healthy rep's pipeline covers a month about 3× (win rate by value ~25%); a
    // weaker rep's pipeline is thinner in proportion.
    let losses = b.rng.gen_range(2..6);
    for i in 0..losses {
        let amount = target * r.performance_pct / 100 * b.rng.gen_range(60..140) / 100;
        let kind = if b.rng.gen_range(0..100) < r.new_share_pct {
            CustomerKind::New
        } else {
            CustomerKind::Existing
        };
        deal(b, r, month, &format!("{tag}-l{i}"), kind, amount, false);
    }

    // Activities: the off-plan reps do fewer of them.
    for (kind, planned) in ACTIVITY_PLAN.into_iter().chain([("email", 30)]) {
        let count = planned * r.performance_pct.min(110) / 100 * b.rng.gen_range(85..116) / 100;
        for i in 0..count {
            let day = b.working_day(month);
            let at = b.at(day, 8, 18);
            b.push(
                at,
                format!("crm-{tag}-{kind}-{i}"),
                EventBody::ActivityLogged(ActivityLogged {
                    rep: r.id.clone(),
                    kind: kind.into(),
                    account: None,
                    deal: None,
                }),
            );
        }
    }
    // Customer ratings: two a month.
    for i in 0..2 {
        let day = b.working_day(month);
        let at = b.at(day, 10, 16);
        let mut score = || (r.rating_base as i32 + b.rng.gen_range(-1..=1)).clamp(1, 5) as u8;
        let scores = [score(), score(), score(), score()];
        b.push(
            at,
            format!("survey-{tag}-{i}"),
            EventBody::CustomerRated(CustomerRated {
                rep: r.id.clone(),
                account: format!("cust-{}-{}", r.id, i + 1),
                listening: scores[0],
                trust: scores[1],
                problem_solving: scores[2],
                responsiveness: scores[3],
            }),
        );
    }
}

/// Splits `total` into `n` random positive parts (whole hundreds) that add up to it.
fn split_amount(rng: &mut ChaCha8Rng, total: i64, n: usize) -> Vec<i64> {
    if total <= 0 || n == 0 {
        return Vec::new();
    }
    let weights: Vec<i64> = (0..n).map(|_| rng.gen_range(1..10)).collect();
    let sum: i64 = weights.iter().sum();
    let mut parts: Vec<i64> = weights
        .iter()
        .map(|w| total * w / sum / 100 * 100)
        .collect();
    let assigned: i64 = parts.iter().sum();
    parts[0] += total - assigned;
    parts.into_iter().filter(|p| *p > 0).collect()
}

/// A deal's life: opened weeks before it closes, a stage change, then won or lost.
/// A deal whose close date is after today is still open (with a probability).
fn deal(
    b: &mut Builder,
    r: &Rep,
    month: Month,
    id: &str,
    kind: CustomerKind,
    amount: i64,
    wins: bool,
) {
    if amount <= 0 {
        return;
    }
    let close = b.closing_day(month);
    let opened = close.add_days(-b.rng.gen_range(20..100));
    let product = b.pick_product(&r.product_weights);
    let account = match kind {
        CustomerKind::New => format!("prospect-{id}"),
        CustomerKind::Existing => format!("cust-{}-{}", r.id, b.rng.gen_range(1..40)),
    };
    let money = b.money(amount);
    // Stage probabilities about as calibrated as a CRM's: the open pipeline,
    // weighted, is about what will be won.
    let open_probability = if wins {
        b.rng.gen_range(4..9) * 10
    } else {
        b.rng.gen_range(1..3) * 5
    };
    let at = b.at(opened, 9, 12);
    b.push(
        at,
        format!("crm-{id}-opened"),
        EventBody::DealOpened(DealOpened {
            deal: id.into(),
            rep: r.id.clone(),
            account: account.clone(),
            customer_kind: kind,
            product: Some(product.into()),
            region: Some(r.region.into()),
            amount: money,
            expected_close: close,
            probability: Percent::from_hundredths(20 * 100),
        }),
    );
    let middle = opened.add_days((close.to_naive() - opened.to_naive()).num_days() as i32 / 2);
    let at = b.at(middle, 9, 17);
    b.push(
        at,
        format!("crm-{id}-stage"),
        EventBody::DealStageChanged(DealStageChanged {
            deal: id.into(),
            stage: if wins {
                "proposal".into()
            } else {
                "qualification".into()
            },
            probability: Percent::from_hundredths(open_probability * 100),
            amount: None,
            expected_close: None,
        }),
    );
    if close > b.today {
        return;
    }
    let at = b.at(close, 14, 17);
    let body = if wins {
        EventBody::DealWon(DealWon {
            deal: id.into(),
            rep: r.id.clone(),
            account,
            customer_kind: kind,
            product: Some(product.into()),
            region: Some(r.region.into()),
            amount: money,
            closed_on: close,
            splits: Vec::new(),
        })
    } else {
        let reason = ["price", "competitor", "no decision", "timing"][b.rng.gen_range(0..4)];
        EventBody::DealLost(DealLost {
            deal: id.into(),
            reason: Some(reason.into()),
        })
    };
    let suffix = if wins { "won" } else { "lost" };
    b.push(at, format!("crm-{id}-{suffix}"), body);
}

/// A demo organisation of `reps` reps (seed `seed`, generated at
/// 2026-11-18T15:00Z for the default org) written to a log in `dir`: what the
/// engine's tests replay and query.
#[cfg(test)]
pub(crate) fn demo_log(
    dir: &std::path::Path,
    reps: usize,
    seed: u64,
) -> (crate::log::Log, pacer_projections::config::OrgConfig) {
    let org = crate::config::Config::default().org;
    let now = Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").expect("a time");
    let demo = generate(&DemoSpec {
        reps,
        seed,
        now,
        timezone: org.timezone,
        currency: org.currency,
        daily_ticks: false,
        prior_months: 0,
    });
    let mut log = crate::log::Log::open(dir).expect("a log opens");
    log.bind_org(&org).expect("the org binds");
    log.append_batch(demo.events, now)
        .expect("the demo appends");
    (log, org)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> DemoSpec {
        DemoSpec {
            reps: 12,
            seed,
            now: Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").unwrap(),
            timezone: chrono_tz::UTC,
            currency: Currency::from_code("EUR").unwrap(),
            daily_ticks: false,
            prior_months: 0,
        }
    }

    /// A rep page asks for one rep's productivity, a team page for one team's: the
    /// narrow paths read only their deals, actuals and plan lines, and must give
    /// exactly the organisation's rows for them.
    #[test]
    fn productivity_of_one_rep_or_team_is_the_orgs_row_for_them() {
        use pacer_projections::productivity::productivity;
        use pacer_projections::report::ReportQuery;
        let state = demo_state(40, 11);
        let now = Month::parse("2026-11").unwrap();
        let mut compared = 0;
        for month in [now.plus(-2), now.plus(-1), now, now.plus(1)] {
            let all = productivity(&state, month, &ReportQuery::default());
            assert!(!all.is_empty(), "{month}");
            for rep in state.reps().keys() {
                let one = productivity(
                    &state,
                    month,
                    &ReportQuery {
                        rep: Some(rep.clone()),
                        ..ReportQuery::default()
                    },
                );
                let want: Vec<_> = all.iter().filter(|p| &p.rep == rep).cloned().collect();
                assert_eq!(one, want, "{rep} {month}");
                compared += one.len();
            }
            for team in state.teams_now() {
                let one = productivity(
                    &state,
                    month,
                    &ReportQuery {
                        team: Some(team.clone()),
                        ..ReportQuery::default()
                    },
                );
                let want: Vec<_> = all.iter().filter(|p| p.team == team).cloned().collect();
                assert_eq!(one, want, "{team} {month}");
            }
        }
        assert!(compared > 100, "only {compared} rows compared");
    }

    /// A team page or inbox lists one team's (or rep's, or manager's) alerts: the
    /// narrow path reads only theirs, and must list exactly what the whole book's
    /// listing holds for them, in the same order, focus included.
    #[test]
    fn alerts_of_a_team_rep_or_manager_are_the_books_for_them() {
        use pacer_projections::alerts::{alert_views, AlertQuery, AlertView, StatusFilter};
        let state = demo_state(40, 13);
        let key = |v: &AlertView| {
            (
                v.alert.id.clone(),
                v.status,
                v.focus,
                v.team.clone(),
                v.manager.clone(),
                v.ack.is_some(),
            )
        };
        let all = alert_views(
            &state,
            &AlertQuery {
                status: StatusFilter::All,
                ..AlertQuery::default()
            },
        );
        assert!(all.len() > 100, "only {} alerts", all.len());
        let managers: std::collections::BTreeSet<String> =
            all.iter().map(|v| v.manager.clone()).collect();
        let mut compared = 0;
        for status in ["open", "acknowledged", "resolved", "all"] {
            let status = StatusFilter::parse(status).unwrap();
            let mut queries = vec![AlertQuery {
                status,
                ..AlertQuery::default()
            }];
            for team in state.teams_now() {
                queries.push(AlertQuery {
                    status,
                    team: Some(team),
                    ..AlertQuery::default()
                });
            }
            for rep in state.reps().keys() {
                queries.push(AlertQuery {
                    status,
                    rep: Some(rep.clone()),
                    ..AlertQuery::default()
                });
            }
            for m in &managers {
                queries.push(AlertQuery {
                    status,
                    manager: Some(m.clone()),
                    ..AlertQuery::default()
                });
            }
            for q in queries {
                let got: Vec<_> = alert_views(&state, &q).iter().map(key).collect();
                let want: Vec<_> = all
                    .iter()
                    .filter(|v| {
                        q.status.admits(v.status)
                            && q.team.as_ref().is_none_or(|t| *t == v.team)
                            && q.manager.as_ref().is_none_or(|m| *m == v.manager)
                            && q.rep.as_ref().is_none_or(|r| *r == v.alert.rep)
                    })
                    .map(key)
                    .collect();
                assert_eq!(got, want, "{q:?}");
                compared += got.len();
            }
        }
        assert!(compared > 1000, "only {compared} compared");
    }

    /// The demo's state: `reps` reps of seed `seed`, every event folded.
    fn demo_state(reps: usize, seed: u64) -> pacer_projections::model::Model {
        let d = generate(&DemoSpec {
            reps,
            daily_ticks: true,
            ..spec(seed)
        });
        let mut config = crate::Config::default();
        config.org.currency = Currency::from_code("EUR").unwrap();
        let mut state = pacer_projections::model::Model::new(config.org);
        for (i, event) in d.events.into_iter().enumerate() {
            let rec = pacer_projections::event::Recorded {
                seq: i as u64 + 1,
                recorded_at: event.occurred_at,
                event,
            };
            state.apply(&rec, None);
        }
        state
    }

    #[test]
    fn the_same_seed_gives_the_same_history() {
        let a = generate(&spec(7));
        let b = generate(&spec(7));
        assert_eq!(a.events, b.events);
        let c = generate(&spec(8));
        assert_ne!(a.events, c.events);
    }

    #[test]
    fn nothing_happens_after_now_and_ids_are_unique() {
        let d = generate(&spec(1));
        let now = spec(1).now;
        assert!(d.events.iter().all(|e| e.occurred_at <= now));
        assert!(matches!(
            d.events.last().unwrap().body,
            EventBody::ClockTick
        ));
        let mut ids: Vec<&str> = d.events.iter().map(|e| e.event_id.as_str()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "event ids are unique");
        assert!(d
            .events
            .windows(2)
            .all(|w| w[0].occurred_at <= w[1].occurred_at));
    }

    #[test]
    fn the_sliced_generator_gives_the_same_events_as_the_whole_one() {
        let whole = generate(&spec(5));
        let mut slices = Vec::new();
        let reps = generate_sliced(&spec(5), 5, |events| {
            slices.push(events);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(reps, whole.reps);
        // Registrations and the move, 24 + 17 plan events and the comp plan, 3 slices
        // of reps, the tick.
        assert_eq!(slices.len(), 1 + 24 + 17 + 1 + 3 + 1);
        let mut sliced: Vec<Event> = slices.into_iter().flatten().collect();
        assert_eq!(sliced.last(), whole.events.last(), "the tick ends both");
        let mut all = whole.events.clone();
        let by_id = |a: &Event, b: &Event| a.event_id.cmp(&b.event_id);
        sliced.sort_by(by_id);
        all.sort_by(by_id);
        assert_eq!(sliced, all);
    }
}
