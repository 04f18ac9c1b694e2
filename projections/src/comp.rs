//! Pay for balance: what an incentive (comp) plan pays for the attainment the
//! buckets show, as a period closes (earned) and while it runs (projected at the
//! pace the alerts use, and at the pipeline forecast).
//!
//! **The arithmetic, to reproduce by hand.** For each measure:
//! 1. attainment = actual ÷ plan over the period's months (a bucket), or the period's
//!    average rating ÷ the target score (the report card), as an exact fraction; no
//!    plan (or no rating): no attainment, and the measure pays nothing;
//! 2. payout % = 0 below the curve's first point (the threshold); on a straight line
//!    between two points; above the last point, the last point's payout plus the
//!    accelerator × the attainment above it (1:1 without an accelerator, and 1:1 while
//!    the gate's bucket is below its minimum); at most the cap;
//! 3. pay = variable pay × weight × payout %, **rounded once, half away from zero, to
//!    the minor unit** (the one rounding of the statement). The total is the sum of
//!    the measures' pay.
//!
//! Months of an open period: a closed month counts its actual; the current month its
//! projection at today's pace (or its pipeline forecast); a later month of the period
//! its plan × the current month's projected attainment (nothing, when the current
//! month has no plan to take an attainment from). A period is the one holding the
//! month asked about, under the comp plan in force that month.
//!
//! Pure: no I/O, no clock ("now" is the state's latest tick).

use crate::bucket::Bucket;
use crate::event::{CompMeasure, CompMeasureKind, CompPeriod, CompPlanPublished};
use crate::money::div_round_half_away;
use crate::report::RowMaker;
use crate::state::names::BucketId;
use crate::state::{score_hundredths, State};
use crate::time::Month;

/// 100% in basis points.
pub const FULL_BP: i128 = 10_000;

/// An exact non-negative fraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frac {
    pub num: i128,
    pub den: i128,
}

impl Frac {
    pub fn new(num: i128, den: i128) -> Option<Frac> {
        (den > 0).then_some(Frac { num, den })
    }

    fn int(v: i128) -> Frac {
        Frac { num: v, den: 1 }
    }

    fn lt(self, o: Frac) -> bool {
        self.num * o.den < o.num * self.den
    }

    fn min(self, o: Frac) -> Frac {
        if o.lt(self) {
            o
        } else {
            self
        }
    }

    /// Rounded half away from zero to a whole number.
    pub fn rounded(self) -> i64 {
        div_round_half_away(self.num, self.den).clamp(i128::from(i64::MIN), i128::from(i64::MAX))
            as i64
    }

    /// Rounded half away from zero to `places` decimals, as text.
    pub fn decimal(self, places: u32) -> String {
        let scaled = div_round_half_away(self.num * 10i128.pow(places), self.den);
        let scaled = scaled.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        crate::money::format_decimal(scaled, places)
    }
}

/// The greatest common divisor (at least 1), by Stein's binary method: shifts and
/// subtractions, no 128-bit division (a statement reduces a few dozen fractions),
/// in 64 bits when both fit.
fn gcd(a: i128, b: i128) -> i128 {
    let (a, b) = (a.unsigned_abs(), b.unsigned_abs());
    let g = match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) => u128::from(binary_gcd(a, b)),
        _ => binary_gcd(a, b),
    };
    // Divides |a| and |b| (or is 1): at most 2^127, which only i128::MIN reaches.
    i128::try_from(g.max(1)).unwrap_or(1)
}

fn binary_gcd<T>(mut a: T, mut b: T) -> T
where
    T: Copy
        + Ord
        + std::ops::BitOr<Output = T>
        + std::ops::Shr<u32, Output = T>
        + std::ops::Shl<u32, Output = T>
        + std::ops::SubAssign
        + From<u8>
        + TrailingZeros,
{
    let zero = T::from(0);
    if a == zero || b == zero {
        return a | b;
    }
    let shift = (a | b).zeros();
    a = a >> a.zeros();
    loop {
        b = b >> b.zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == zero {
            return a << shift;
        }
    }
}

/// `trailing_zeros` of the unsigned integers [`binary_gcd`] works in.
trait TrailingZeros {
    fn zeros(self) -> u32;
}

impl TrailingZeros for u64 {
    fn zeros(self) -> u32 {
        self.trailing_zeros()
    }
}

impl TrailingZeros for u128 {
    fn zeros(self) -> u32 {
        self.trailing_zeros()
    }
}

fn reduce(num: i128, den: i128) -> Frac {
    let g = gcd(num, den);
    Frac {
        num: num / g,
        den: den / g,
    }
}

/// The payout, in basis points (a fraction), of a measure at `attainment_bp` (a
/// fraction of basis points), with the gate `open` or not. Worked out over the
/// attainment's numerator and denominator and reduced once.
pub fn payout_bp(m: &CompMeasure, attainment_bp: Frac, gate_open: bool) -> Frac {
    let Some(first) = m.curve.first() else {
        return Frac::int(0);
    };
    // The attainment n ÷ d (d > 0); below zero it counts as zero.
    let (n, d) = (attainment_bp.num.max(0), attainment_bp.den);
    let at = |bp: u32| i128::from(bp) * d;
    if n < at(first.attainment_bp) {
        return Frac::int(0);
    }
    let pay = match m.curve.windows(2).find(|w| n < at(w[1].attainment_bp)) {
        Some(w) => {
            // p0 + (a - a0) × (p1 - p0) ÷ (a1 - a0)
            let (a0, p0) = (i128::from(w[0].attainment_bp), i128::from(w[0].payout_bp));
            let (a1, p1) = (i128::from(w[1].attainment_bp), i128::from(w[1].payout_bp));
            reduce(p0 * (a1 - a0) * d + (n - a0 * d) * (p1 - p0), (a1 - a0) * d)
        }
        None => {
            // Past the last point: its payout plus the rest at the accelerator's
            // slope (with the gate open), else one for one.
            let last = m.curve[m.curve.len() - 1];
            let (rise, run) = match (m.accelerator, gate_open) {
                (Some(acc), true) => (i128::from(acc), 100),
                _ => (1, 1),
            };
            let (la, lp) = (i128::from(last.attainment_bp), i128::from(last.payout_bp));
            reduce(lp * run * d + (n - la * d) * rise, run * d)
        }
    };
    match m.cap_bp {
        Some(cap) => pay.min(Frac::int(i128::from(cap))),
        None => pay,
    }
}

/// A measure's pay: variable pay × weight × payout, rounded once (half away from
/// zero) to the minor unit.
pub fn measure_pay(variable_pay: i64, weight_bp: u32, payout: Frac) -> i64 {
    // Past i128 only with absurd figures: the most it can be, never a wrapped value.
    let Some(num) = i128::from(variable_pay)
        .checked_mul(i128::from(weight_bp))
        .and_then(|v| v.checked_mul(payout.num))
    else {
        return i64::MAX;
    };
    let Some(den) = (FULL_BP * FULL_BP).checked_mul(payout.den) else {
        return 0;
    };
    div_round_half_away(num, den).clamp(0, i128::from(i64::MAX)) as i64
}

/// What a plan says that cannot pay sensibly, with the field: weights that do not
/// sum to 100%, a curve that falls or does not rise in attainment, a cap below the
/// curve, a report card without a target.
pub fn check_plan(p: &CompPlanPublished) -> Result<(), (String, String)> {
    if p.measures.is_empty() {
        return Err((
            "measures".into(),
            "a comp plan needs at least one measure".into(),
        ));
    }
    if p.assignments.is_empty() {
        return Err((
            "assignments".into(),
            "a comp plan pays someone: name at least one rep or team".into(),
        ));
    }
    for (i, a) in p.assignments.iter().enumerate() {
        if a.rep.is_some() == a.team.is_some() {
            return Err((
                format!("assignments[{i}]"),
                "names a rep or a team, not both or neither".into(),
            ));
        }
        if a.variable_pay < 0 {
            return Err((
                format!("assignments[{i}].variable_pay"),
                "is negative".into(),
            ));
        }
    }
    for (i, a) in p.assignments.iter().enumerate() {
        if p.assignments[..i]
            .iter()
            .any(|o| o.rep == a.rep && o.team == a.team)
        {
            let who = a
                .rep
                .as_ref()
                .map(|r| format!("rep {r}"))
                .or_else(|| a.team.as_ref().map(|t| format!("team {t}")))
                .unwrap_or_default();
            return Err((format!("assignments[{i}]"), format!("{who} is paid twice")));
        }
    }
    let weights: u64 = p.measures.iter().map(|m| u64::from(m.weight_bp)).sum();
    if weights != FULL_BP as u64 {
        return Err((
            "measures".into(),
            format!(
                "the weights sum to {}%, not 100%",
                crate::money::format_decimal(weights as i64, 2)
            ),
        ));
    }
    for (i, m) in p.measures.iter().enumerate() {
        let f = |k: &str| format!("measures[{i}].{k}");
        if m.curve.is_empty() {
            return Err((f("curve"), "needs at least one point".into()));
        }
        for (j, w) in m.curve.windows(2).enumerate() {
            if w[1].attainment_bp <= w[0].attainment_bp {
                return Err((
                    format!("measures[{i}].curve[{}].attainment_pct", j + 1),
                    format!(
                        "{}% does not rise above the point before ({}%)",
                        crate::money::format_decimal(i64::from(w[1].attainment_bp), 2),
                        crate::money::format_decimal(i64::from(w[0].attainment_bp), 2)
                    ),
                ));
            }
            if w[1].payout_bp < w[0].payout_bp {
                return Err((
                    format!("measures[{i}].curve[{}].payout_pct", j + 1),
                    format!(
                        "{}% is below the point before ({}%): pay never falls as attainment rises",
                        crate::money::format_decimal(i64::from(w[1].payout_bp), 2),
                        crate::money::format_decimal(i64::from(w[0].payout_bp), 2)
                    ),
                ));
            }
        }
        if let Some(cap) = m.cap_bp {
            let top = m.curve.iter().map(|c| c.payout_bp).max().unwrap_or(0);
            if cap < top {
                return Err((
                    f("cap_pct"),
                    format!(
                        "{}% is below the curve's {}%: a cap lies above every point",
                        crate::money::format_decimal(i64::from(cap), 2),
                        crate::money::format_decimal(i64::from(top), 2)
                    ),
                ));
            }
        }
        if let CompMeasureKind::ReportCard { target_score } = m.kind {
            if target_score <= 0 {
                return Err((f("target_score"), "must be above 0".into()));
            }
        }
        if m.gate.is_some() && m.accelerator.is_none_or(|a| a < 100) {
            return Err((
                f("gate"),
                "gates an accelerator: give the measure one of at least 1 (a closed gate pays 1:1)"
                    .into(),
            ));
        }
        if let CompMeasureKind::ReportCard { target_score } = m.kind {
            if target_score > 500 {
                return Err((f("target_score"), "is above 5.00, the best score".into()));
            }
        }
        let key = |k: &CompMeasureKind| match k {
            CompMeasureKind::Bucket(b) => b.to_string(),
            CompMeasureKind::ReportCard { .. } => "report_card".to_owned(),
        };
        if p.measures[..i].iter().any(|o| key(&o.kind) == key(&m.kind)) {
            return Err((f("measure"), format!("{} is measured twice", key(&m.kind))));
        }
    }
    Ok(())
}

/// The months of the period `p` that holds `month`, quarters following the fiscal
/// year.
pub fn period_months(p: CompPeriod, month: Month, fiscal_start: u32) -> Vec<Month> {
    match p {
        CompPeriod::Month => vec![month],
        CompPeriod::Quarter => {
            let offset = (month.month_of_year() as i32 - fiscal_start as i32).rem_euclid(3);
            let first = month.plus(-offset);
            (0..3).map(|k| first.plus(k)).collect()
        }
    }
}

/// Where a period stands against "now".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodStatus {
    /// Every month has ended: the pay is earned.
    Closed,
    /// "Now" is in it: the pay is projected.
    Open,
    /// It has not begun.
    Future,
}

/// How the open months are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Actuals only (a closed period: earned).
    Earned,
    /// The current month at its projection at today's pace.
    Pace,
    /// The current month at its pipeline forecast.
    Forecast,
}

/// One measure of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureLine {
    pub measure: String,
    pub weight_bp: u32,
    /// Plan and actual (or projected) over the period: minor units, counts, or (the
    /// report card) the target and the average score in hundredths.
    pub plan: i64,
    pub actual: i64,
    pub attainment_bp: Option<Frac>,
    pub payout_bp: Frac,
    pub gate_open: bool,
    pub pay: i64,
}

/// What one rep is paid for one period under one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    pub scenario: Scenario,
    pub measures: Vec<MeasureLine>,
    pub total: i64,
}

/// A rep's statement for one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement<'s> {
    pub rep: String,
    pub team: String,
    pub plan: &'s CompPlanPublished,
    pub months: Vec<Month>,
    pub status: PeriodStatus,
    pub variable_pay: i64,
    /// Closed: the earned pay; open: the pay at today's pace and at the forecast.
    pub payouts: Vec<Payout>,
    /// Open: what one more typical deal would add at today's pace.
    pub needle: Option<Needle>,
}

/// What moves the needle: of the deals a rep typically wins (the median won deal of
/// each kind a measure counts), the one that adds most to the pay projected at
/// today's pace if one more closes this period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needle {
    /// The kind of deal: `new_customer`, `retention` or `product:<name>` (or `total`:
    /// any deal, where no finer measure is paid on).
    pub kind: String,
    /// The rep's median won deal of that kind (minor units).
    pub deal: i64,
    /// Won deals of that kind the median is of.
    pub deals_seen: usize,
    /// What it adds to the projected pay (minor units).
    pub adds: i64,
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(div_round_half_away(i128::from(v[n / 2 - 1]) + i128::from(v[n / 2]), 2) as i64),
    }
}

/// The deal that moves the pay most (see [`Needle`]); `None` when none adds
/// anything (every measure capped, or no won deal to go by).
fn needle(
    state: &State,
    rows: &Rows<'_>,
    rep: &str,
    terms: Terms<'_>,
    base: i64,
) -> Option<Needle> {
    use crate::event::CustomerKind;
    use crate::state::deals::DealStatus;
    let won: Vec<_> = state
        .rep_deals(rep)
        .filter(|d| d.status == DealStatus::Won && d.amount > 0)
        .collect();
    // The kinds of deal the plan's measures count, each with the buckets such a deal
    // adds to.
    let mut kinds: Vec<(String, Vec<Bucket>, Vec<i64>)> = Vec::new();
    // The measures' buckets, and the gates' (a deal may open a gate).
    let mut candidates: Vec<&Bucket> = Vec::new();
    for m in &terms.plan.measures {
        if let CompMeasureKind::Bucket(b) = &m.kind {
            candidates.push(b);
        }
        if let Some(g) = &m.gate {
            candidates.push(&g.bucket);
        }
    }
    for b in candidates {
        if kinds.iter().any(|(k, _, _)| *k == b.to_string()) {
            continue;
        }
        let amounts = |f: &dyn Fn(&crate::state::deals::DealView<'_>) -> bool| -> Vec<i64> {
            won.iter().filter(|d| f(d)).map(|d| d.amount).collect()
        };
        let (buckets, amounts) = match b {
            Bucket::NewCustomer => (
                vec![Bucket::Total, Bucket::NewCustomer],
                amounts(&|d| d.customer_kind == CustomerKind::New),
            ),
            Bucket::Retention => (
                vec![Bucket::Total, Bucket::Retention],
                amounts(&|d| d.customer_kind == CustomerKind::Existing),
            ),
            Bucket::Product(p) => (
                vec![Bucket::Total, b.clone()],
                amounts(&|d| d.product == Some(p.as_str())),
            ),
            Bucket::Total => (vec![Bucket::Total], amounts(&|_| true)),
            _ => continue,
        };
        kinds.push((b.to_string(), buckets, amounts));
    }
    let mut best: Option<Needle> = None;
    for (kind, buckets, amounts) in kinds {
        let seen = amounts.len();
        let Some(deal) = median(amounts) else {
            continue;
        };
        let extra: Vec<(Bucket, i64)> = buckets.into_iter().map(|b| (b, deal)).collect();
        let with = payout(state, rows, rep, terms, Scenario::Pace, &extra);
        let adds = with.total.saturating_sub(base);
        // A tie goes to the finer kind of deal: `total` only where none is finer.
        let better = |b: &Needle| adds > b.adds || (adds == b.adds && b.kind == "total");
        if adds > 0 && best.as_ref().is_none_or(better) {
            best = Some(Needle {
                kind,
                deal,
                deals_seen: seen,
                adds,
            });
        }
    }
    best
}

/// The comp plan in force for `rep` in `month`, and the rep's variable pay: among
/// the latest version of each comp plan effective by then, one that names the rep
/// wins over one that names the rep's team; then the one published last.
pub fn plan_for<'s>(
    state: &'s State,
    rep: &str,
    month: Month,
) -> Option<(&'s CompPlanPublished, i64)> {
    let team = state.team_at(rep, month);
    let mut best: Option<(&CompPlanPublished, i64, bool, u64)> = None;
    for versions in state.comp_plans().values() {
        let Some((seq, p)) = versions
            .iter()
            .filter(|(_, p)| p.effective_from <= month)
            .max_by_key(|(seq, p)| (p.version, *seq))
        else {
            continue;
        };
        let own = p
            .assignments
            .iter()
            .find(|a| a.rep.as_deref() == Some(rep))
            .map(|a| (a.variable_pay, true));
        let by_team = || {
            p.assignments
                .iter()
                .find(|a| a.team.is_some() && a.team.as_deref() == team.as_deref())
                .map(|a| (a.variable_pay, false))
        };
        let Some((pay, named)) = own.or_else(by_team) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, _, b_named, b_seq)) => (named, *seq) > (b_named, b_seq),
        };
        if better {
            best = Some((p, pay, named, *seq));
        }
    }
    best.map(|(p, pay, _, _)| (p, pay))
}

/// One report row's figures.
#[derive(Clone, Copy, Debug)]
struct Fig {
    plan: i64,
    actual: i64,
    projection: Option<i64>,
    forecast: Option<i64>,
}

/// The report rows one rep's statement reads: the rows of the period's months in
/// the buckets the comp plans read (a dozen or so, looked up by month and bucket).
pub struct Rows<'s> {
    figs: Vec<(Month, &'s Bucket, Fig)>,
    /// Kept for the next rep's rows (see [`Rows::of_rep`]).
    rows: Vec<crate::report::ReportRow<'s>>,
}

impl<'s> Rows<'s> {
    fn new() -> Rows<'s> {
        Rows {
            figs: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Made anew for `rep` (its rows of these months and buckets), reusing what the
    /// last rep's rows held.
    fn of_rep(
        &mut self,
        maker: &mut RowMaker<'s>,
        rep: &'s str,
        record: &'s crate::state::Rep,
        months: &[Month],
        buckets: &[(BucketId, &'s Bucket)],
    ) {
        self.figs.clear();
        for &m in months {
            self.rows.clear();
            maker.rep_rows_of(rep, record, m, buckets, &mut self.rows);
            self.figs.extend(self.rows.iter().map(|r| {
                (
                    r.month,
                    r.bucket,
                    Fig {
                        plan: r.plan,
                        actual: r.actual,
                        projection: r.projection,
                        forecast: r.forecast,
                    },
                )
            }));
        }
    }

    fn get(&self, month: Month, bucket: &Bucket) -> Option<Fig> {
        self.figs
            .iter()
            .find(|(m, b, _)| *m == month && *b == bucket)
            .map(|(_, _, f)| *f)
    }
}

/// What a rep is paid under, for one period.
#[derive(Clone, Copy)]
struct Terms<'a> {
    plan: &'a CompPlanPublished,
    variable_pay: i64,
    months: &'a [Month],
}

/// One bucket's plan and (scenario) actual over the period's months.
fn bucket_figures(
    rows: &Rows<'_>,
    months: &[Month],
    bucket: &Bucket,
    now: Option<Month>,
    scenario: Scenario,
    extra: &[(Bucket, i64)],
) -> (i64, i64) {
    let row = |m: Month| rows.get(m, bucket);
    let mut plan = 0i64;
    let mut actual = 0i64;
    // The current month's projected attainment, for the period's later months.
    let mut later_ratio: Option<(i64, i64)> = None;
    for &m in months {
        let r = row(m);
        let (p, a) = r.map_or((0, 0), |r| (r.plan, r.actual));
        plan = plan.saturating_add(p);
        match (scenario, now) {
            (Scenario::Earned, _) | (_, None) => actual = actual.saturating_add(a),
            (_, Some(now)) if m < now => actual = actual.saturating_add(a),
            (_, Some(now)) if m == now => {
                let projected = r.and_then(|r| match scenario {
                    Scenario::Forecast => r.forecast.or(r.projection),
                    _ => r.projection,
                });
                let v = projected.unwrap_or(a).max(a);
                later_ratio = Some((v, p));
                actual = actual.saturating_add(v);
            }
            (_, Some(_)) => {
                let v = match later_ratio {
                    Some((v0, p0)) if p0 > 0 => {
                        div_round_half_away(i128::from(p) * i128::from(v0), i128::from(p0))
                            .clamp(0, i128::from(i64::MAX)) as i64
                    }
                    _ => 0,
                };
                actual = actual.saturating_add(v);
            }
        }
    }
    for (b, v) in extra {
        if b == bucket {
            actual = actual.saturating_add(*v);
        }
    }
    (plan, actual)
}

fn attainment(plan: i64, actual: i64) -> Option<Frac> {
    (plan > 0).then(|| reduce(i128::from(actual.max(0)) * FULL_BP, i128::from(plan)))
}

/// One rep's payout for one period and scenario.
fn payout(
    state: &State,
    rows: &Rows<'_>,
    rep: &str,
    terms: Terms<'_>,
    scenario: Scenario,
    extra: &[(Bucket, i64)],
) -> Payout {
    let Terms {
        plan,
        variable_pay,
        months,
    } = terms;
    let now = state.current_month();
    let mut measures = Vec::with_capacity(plan.measures.len());
    for m in &plan.measures {
        let (name, p, a, att) = match &m.kind {
            CompMeasureKind::Bucket(b) => {
                let (p, a) = bucket_figures(rows, months, b, now, scenario, extra);
                (b.to_string(), p, a, attainment(p, a))
            }
            CompMeasureKind::ReportCard { target_score } => {
                let upto = |r: &&crate::state::Rating| {
                    months.contains(&r.month) && now.is_none_or(|n| r.month <= n)
                };
                let list: Vec<_> = state.ratings(rep).iter().filter(upto).collect();
                // No rating in the period: no attainment (the measure pays nothing).
                let n = list.len() as i64;
                let sum: i64 = list.iter().flat_map(|r| r.scores).map(i64::from).sum();
                let score = if n == 0 { 0 } else { score_hundredths(sum, n) };
                // The exact average ÷ the target: (sum ÷ 4n) ÷ (target ÷ 100).
                let att = (n > 0 && *target_score > 0).then(|| {
                    reduce(
                        i128::from(sum) * 100 * FULL_BP,
                        4 * i128::from(n) * i128::from(*target_score),
                    )
                });
                ("report_card".to_owned(), *target_score, score, att)
            }
        };
        let gate_open = m.gate.as_ref().is_none_or(|g| {
            let (gp, ga) = bucket_figures(rows, months, &g.bucket, now, scenario, extra);
            attainment(gp, ga).is_some_and(|at| !at.lt(Frac::int(i128::from(g.min_bp))))
        });
        let payout = att.map_or(Frac::int(0), |at| payout_bp(m, at, gate_open));
        let pay = measure_pay(variable_pay, m.weight_bp, payout);
        measures.push(MeasureLine {
            measure: name,
            weight_bp: m.weight_bp,
            plan: p,
            actual: a,
            attainment_bp: att,
            payout_bp: payout,
            gate_open,
            pay,
        });
    }
    let total = measures
        .iter()
        .map(|l| l.pay)
        .fold(0i64, i64::saturating_add);
    Payout {
        scenario,
        measures,
        total,
    }
}

/// The buckets these plans read (their measures' and their gates') in bucket order,
/// with the ids the state keeps them under (one nothing has named has no rows).
fn plan_buckets<'p>(
    state: &State,
    plans: impl IntoIterator<Item = &'p CompPlanPublished>,
) -> Vec<(BucketId, &'p Bucket)> {
    let mut out: Vec<&Bucket> = Vec::new();
    for p in plans {
        for m in &p.measures {
            if let CompMeasureKind::Bucket(b) = &m.kind {
                out.push(b);
            }
            if let Some(g) = &m.gate {
                out.push(&g.bucket);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out.into_iter()
        .filter_map(|b| Some((state.bucket_id(b)?, b)))
        .collect()
}

/// A rep's statement for the period holding `month` under `plan` (the one in force,
/// [`plan_for`]), over rows made already (see [`statements`]).
fn statement_with<'s>(
    state: &'s State,
    rows: &Rows<'_>,
    rep: &str,
    month: Month,
    (plan, variable_pay): (&'s CompPlanPublished, i64),
    with_needle: bool,
) -> Statement<'s> {
    let months = period_months(plan.period, month, state.config().fiscal_year_start_month);
    let now = state.current_month();
    let status = match now {
        None => PeriodStatus::Closed,
        Some(n) if months.iter().all(|m| *m < n) => PeriodStatus::Closed,
        Some(n) if months.iter().all(|m| *m > n) => PeriodStatus::Future,
        Some(_) => PeriodStatus::Open,
    };
    let terms = Terms {
        plan,
        variable_pay,
        months: &months,
    };
    let payouts = match status {
        PeriodStatus::Closed => vec![payout(state, rows, rep, terms, Scenario::Earned, &[])],
        PeriodStatus::Open => vec![
            payout(state, rows, rep, terms, Scenario::Pace, &[]),
            payout(state, rows, rep, terms, Scenario::Forecast, &[]),
        ],
        PeriodStatus::Future => Vec::new(),
    };
    let needle = match (status, payouts.first()) {
        (PeriodStatus::Open, Some(pace)) if with_needle => {
            needle(state, rows, rep, terms, pace.total)
        }
        _ => None,
    };
    Statement {
        rep: rep.to_owned(),
        team: state.team_at(rep, month).unwrap_or_default(),
        plan,
        months,
        status,
        variable_pay,
        payouts,
        needle,
    }
}

/// The statements for the period holding `month` of one rep, a team's reps (their
/// team in that month) or every rep, in rep order; only reps a comp plan pays. The
/// needle is a rep's and a team's: an org-wide answer (finance's) leaves it out, as
/// it reads every deal of every rep.
pub fn statements<'s>(
    state: &'s State,
    month: Month,
    rep: Option<&str>,
    team: Option<&str>,
) -> Vec<Statement<'s>> {
    let asked = Asked::new(state, month, rep, team);
    asked.statements(0..asked.reps())
}

/// A comp report asked for: whose statements (in rep order), and what they read.
/// [`Asked::statements`] makes any run of them, so that a large report can be made
/// in parts side by side, each part's statements the same as in one go.
pub struct Asked<'s> {
    state: &'s State,
    month: Month,
    reps: Vec<(&'s String, &'s crate::state::Rep)>,
    /// Every month a comp plan in force may read (the periods holding `month`).
    months: Vec<Month>,
    /// Every bucket they may read: the measures' and the gates'.
    buckets: Vec<(BucketId, &'s Bucket)>,
    with_needle: bool,
}

impl<'s> Asked<'s> {
    pub fn new(state: &'s State, month: Month, rep: Option<&str>, team: Option<&str>) -> Asked<'s> {
        // Both given (a team's subject, a rep asked): the rep only while in that team.
        let in_team = |r: &str| team.is_none() || state.team_at(r, month).as_deref() == team;
        let mut reps: Vec<(&String, &crate::state::Rep)> = match rep {
            Some(r) => state
                .reps()
                .get_key_value(r)
                .filter(|(k, _)| in_team(k))
                .into_iter()
                .collect(),
            None => state.reps().iter().filter(|(r, _)| in_team(r)).collect(),
        };
        let fiscal = state.config().fiscal_year_start_month;
        let in_force: Vec<&CompPlanPublished> = state
            .comp_plans()
            .values()
            .flat_map(|versions| versions.iter())
            .filter(|(_, p)| p.effective_from <= month)
            .map(|(_, p)| p)
            .collect();
        let mut months: Vec<Month> = in_force
            .iter()
            .flat_map(|p| period_months(p.period, month, fiscal))
            .collect();
        months.sort_unstable();
        months.dedup();
        if months.is_empty() {
            // No comp plan in force: no statement.
            reps.clear();
        }
        Asked {
            state,
            month,
            reps,
            months,
            buckets: plan_buckets(state, in_force),
            with_needle: rep.is_some() || team.is_some(),
        }
    }

    /// How many reps are asked about (a statement each, for those a comp plan pays).
    pub fn reps(&self) -> usize {
        self.reps.len()
    }

    /// The statements of the reps `range` (in rep order; of those a comp plan pays).
    pub fn statements(&self, range: std::ops::Range<usize>) -> Vec<Statement<'s>> {
        let Some(reps) = self.reps.get(range) else {
            return Vec::new();
        };
        // Each rep's rows made just before its statement, the teams' shares once.
        let mut maker = RowMaker::new(self.state);
        let mut rows = Rows::new();
        reps.iter()
            .filter_map(|&(r, record)| {
                // A rep no comp plan pays has no statement: no rows made for it.
                let plan = plan_for(self.state, r, self.month)?;
                rows.of_rep(&mut maker, r, record, &self.months, &self.buckets);
                Some(statement_with(
                    self.state,
                    &rows,
                    r,
                    self.month,
                    plan,
                    self.with_needle,
                ))
            })
            .collect()
    }
}

/// One team's accrual for one month: its reps' pay of the periods holding the
/// month, each period's pay in equal parts over its months (earned for a closed
/// period, projected at today's pace for the open one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accrual {
    pub month: Month,
    pub team: String,
    pub reps: usize,
    pub earned: i64,
    pub projected: i64,
}

/// Splits `total` into `n` equal parts that add up to it exactly (the minor units
/// left over one each to the first parts).
fn parts(total: i64, n: usize) -> Vec<i64> {
    crate::money::largest_remainder(total, &vec![1; n.max(1)])
}

/// The accruals of the months `from..=to`, by month and team (in that order): each
/// month gets its part of the pay of the period that holds it under the comp plan in
/// force that month, so every month is accrued once even where a new version changes
/// the period.
pub fn accruals(state: &State, from: Month, to: Month) -> Vec<Accrual> {
    use std::collections::BTreeMap;
    let mut by: BTreeMap<(Month, String), Accrual> = BTreeMap::new();
    let mut m = from;
    while m <= to {
        for s in statements(state, m, None, None) {
            let (Some(pay), Some(i)) = (s.payouts.first(), s.months.iter().position(|x| *x == m))
            else {
                continue;
            };
            let part = parts(pay.total, s.months.len())[i];
            let a = by.entry((m, s.team.clone())).or_insert_with(|| Accrual {
                month: m,
                team: s.team.clone(),
                reps: 0,
                earned: 0,
                projected: 0,
            });
            a.reps += 1;
            if s.status == PeriodStatus::Closed {
                a.earned = a.earned.saturating_add(part);
            } else {
                a.projected = a.projected.saturating_add(part);
            }
        }
        m = m.plus(1);
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CurvePoint;

    /// Euclid's, by remainders: what the binary method must agree with.
    fn euclid(a: i128, b: i128) -> i128 {
        let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        i128::try_from(a.max(1)).unwrap_or(1)
    }

    proptest::proptest! {
        #[test]
        fn the_binary_gcd_is_euclids(
            a in -(1i128 << 120)..(1i128 << 120),
            b in -(1i128 << 120)..(1i128 << 120),
            small in 0i64..1_000_000_000,
            k in 1i64..1_000_000,
        ) {
            proptest::prop_assert_eq!(gcd(a, b), euclid(a, b));
            // Common factors, in 64 bits and past them.
            let (x, y) = (i128::from(small) * i128::from(k), i128::from(k) * 6);
            proptest::prop_assert_eq!(gcd(x, y), euclid(x, y));
            proptest::prop_assert_eq!(gcd(x << 64, y << 64), euclid(x << 64, y << 64));
            proptest::prop_assert_eq!(gcd(0, x), euclid(0, x));
        }
    }

    fn measure(curve: &[(u32, u32)], accelerator: Option<u32>, cap: Option<u32>) -> CompMeasure {
        CompMeasure {
            kind: CompMeasureKind::Bucket(Bucket::Total),
            weight_bp: 10_000,
            curve: curve
                .iter()
                .map(|&(a, p)| CurvePoint {
                    attainment_bp: a,
                    payout_bp: p,
                })
                .collect(),
            accelerator,
            cap_bp: cap,
            gate: None,
        }
    }

    /// The curve as it was read before it was reduced once: a reduction after each
    /// of the chained operations, the oracle of [`payout_bp`].
    fn chained_payout_bp(m: &CompMeasure, attainment_bp: Frac, gate_open: bool) -> Frac {
        let add = |a: Frac, b: Frac| reduce(a.num * b.den + b.num * a.den, a.den * b.den);
        let sub = |a: Frac, b: Frac| reduce(a.num * b.den - b.num * a.den, a.den * b.den);
        let mul = |a: Frac, b: Frac| reduce(a.num * b.num, a.den * b.den);
        let Some(first) = m.curve.first() else {
            return Frac::int(0);
        };
        let a = if attainment_bp.num < 0 {
            Frac::int(0)
        } else {
            attainment_bp
        };
        if a.lt(Frac::int(i128::from(first.attainment_bp))) {
            return Frac::int(0);
        }
        let mut pay = None;
        for w in m.curve.windows(2) {
            let (a0, p0) = (i128::from(w[0].attainment_bp), i128::from(w[0].payout_bp));
            let (a1, p1) = (i128::from(w[1].attainment_bp), i128::from(w[1].payout_bp));
            if a.lt(Frac::int(a1)) {
                let rise = mul(sub(a, Frac::int(a0)), reduce(p1 - p0, a1 - a0));
                pay = Some(add(Frac::int(p0), rise));
                break;
            }
        }
        let pay = pay.unwrap_or_else(|| {
            let last = m.curve[m.curve.len() - 1];
            let above = sub(a, Frac::int(i128::from(last.attainment_bp)));
            let slope = match (m.accelerator, gate_open) {
                (Some(acc), true) => reduce(i128::from(acc), 100),
                _ => Frac::int(1),
            };
            add(Frac::int(i128::from(last.payout_bp)), mul(above, slope))
        });
        match m.cap_bp {
            Some(cap) => pay.min(Frac::int(i128::from(cap))),
            None => pay,
        }
    }

    proptest::proptest! {
        #[test]
        fn the_curve_reduced_once_is_the_chained_one(
            steps in proptest::collection::vec((1u32..40_000, 0u32..30_000), 1..5),
            start in 0u32..10_000,
            accelerator in proptest::option::of(0u32..1_000),
            cap in proptest::option::of(0u32..200_000),
            actual in -1_000_000_000_000i64..1_000_000_000_000_000,
            plan in 1i64..1_000_000_000_000,
            gate_open in proptest::bool::ANY,
        ) {
            // A rising curve (any payouts: the oracle does not need a sane one).
            let mut at = start;
            let curve: Vec<(u32, u32)> = steps
                .iter()
                .map(|&(rise, pay)| {
                    at += rise;
                    (at, pay)
                })
                .collect();
            let m = measure(&curve, accelerator, cap);
            let a = reduce(i128::from(actual) * FULL_BP, i128::from(plan));
            proptest::prop_assert_eq!(
                payout_bp(&m, a, gate_open),
                chained_payout_bp(&m, a, gate_open),
                "{:?} at {:?}", curve, a
            );
        }
    }

    #[test]
    fn the_curve_by_hand() {
        // 50% → 0, 100% → 100%, ×2 above, capped at 150%.
        let m = measure(&[(5_000, 0), (10_000, 10_000)], Some(200), Some(15_000));
        let at = |bp: i128| payout_bp(&m, Frac::int(bp), true);
        assert_eq!(at(4_999), Frac::int(0), "below the threshold");
        assert_eq!(at(5_000), Frac::int(0));
        assert_eq!(at(7_500), Frac::int(5_000), "halfway: 75% pays 50%");
        assert_eq!(at(10_000), Frac::int(10_000));
        assert_eq!(at(11_000), Frac::int(12_000), "110%: 100 + 2 × 10");
        assert_eq!(at(20_000), Frac::int(15_000), "the cap");
        // The gate closed: 1:1 above the last point.
        assert_eq!(payout_bp(&m, Frac::int(11_000), false), Frac::int(11_000));
        // 2/3 attainment exactly: 66.666…% → (16.666…/50) × 100 = 33.333…%.
        let third = payout_bp(&m, reduce(20_000, 3), true);
        assert_eq!(third, reduce(10_000, 3));
        // 6000.00 × 100% × 33.333…% = 2000.00 exactly; × 40% weight = 800.00.
        assert_eq!(measure_pay(600_000, 10_000, third), 200_000);
        assert_eq!(measure_pay(600_000, 4_000, third), 80_000);
        // Half a minor unit rounds away from zero: 0.01 × 50% = 0.005 → 0.01.
        assert_eq!(measure_pay(1, 10_000, Frac::int(5_000)), 1);
    }

    #[test]
    fn a_periods_pay_is_split_over_its_months_to_the_minor_unit() {
        assert_eq!(parts(1_000, 3), vec![334, 333, 333]);
        assert_eq!(parts(999, 3), vec![333, 333, 333]);
        assert_eq!(parts(5, 1), vec![5]);
        assert_eq!(parts(0, 3), vec![0, 0, 0]);
    }

    #[test]
    fn quarters_follow_the_fiscal_year() {
        let m = |s: &str| Month::parse(s).unwrap();
        assert_eq!(
            period_months(CompPeriod::Quarter, m("2026-11"), 1),
            vec![m("2026-10"), m("2026-11"), m("2026-12")]
        );
        assert_eq!(
            period_months(CompPeriod::Quarter, m("2026-11"), 4),
            vec![m("2026-10"), m("2026-11"), m("2026-12")]
        );
        assert_eq!(
            period_months(CompPeriod::Quarter, m("2026-11"), 2),
            vec![m("2026-11"), m("2026-12"), m("2027-01")]
        );
        assert_eq!(
            period_months(CompPeriod::Month, m("2026-11"), 2),
            vec![m("2026-11")]
        );
    }
}
