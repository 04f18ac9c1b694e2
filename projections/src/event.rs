//! The typed events of the brief's public schema, as the model folds them.
//!
//! These types are already valid: the engine's wire decoder builds them from JSON and
//! rejects what does not fit. The same types are what the log stores (bincode), so a
//! change here is a change of the log format and needs an upcaster in the engine.

use crate::bucket::Bucket;
use crate::money::{Currency, Money};
use crate::time::{Date, Month, Timestamp};

/// An event as a source sent it: envelope and body.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Event {
    /// The source's own id; the log stores an id once.
    pub event_id: String,
    pub source: String,
    pub occurred_at: Timestamp,
    pub body: EventBody,
}

/// An event as the log holds it: with the sequence number and recording time the
/// engine gave it.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Recorded {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub event: Event,
}

/// A percentage with two decimals, stored in hundredths of a percent (100% = 10 000).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Percent(u16);

impl Percent {
    pub const HUNDRED: Percent = Percent(10_000);
    pub const ZERO: Percent = Percent(0);

    /// `hundredths` must be at most 10 000.
    pub const fn from_hundredths(hundredths: u16) -> Option<Self> {
        if hundredths <= 10_000 {
            Some(Percent(hundredths))
        } else {
            None
        }
    }

    pub fn hundredths(self) -> u16 {
        self.0
    }

    pub fn to_decimal_string(self) -> String {
        let s = crate::money::format_decimal(i64::from(self.0), 2);
        // "50.00" → "50", "12.50" → "12.5": the shortest exact form.
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_owned()
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum CustomerKind {
    New,
    Existing,
}

impl CustomerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::New => "new",
            CustomerKind::Existing => "existing",
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum PlanBasis {
    TopDown,
    BottomUp,
    Revision,
}

impl PlanBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanBasis::TopDown => "top_down",
            PlanBasis::BottomUp => "bottom_up",
            PlanBasis::Revision => "revision",
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum ForecastCategory {
    Commit,
    BestCase,
}

impl ForecastCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ForecastCategory::Commit => "commit",
            ForecastCategory::BestCase => "best_case",
        }
    }
}

/// The four retention movements; renewals and expansions add, contractions and
/// churn subtract.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum RetentionKind {
    Renewed,
    Expanded,
    Contracted,
    Churned,
}

impl RetentionKind {
    pub const ALL: [RetentionKind; 4] = [
        RetentionKind::Renewed,
        RetentionKind::Expanded,
        RetentionKind::Contracted,
        RetentionKind::Churned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetentionKind::Renewed => "renewed",
            RetentionKind::Expanded => "expanded",
            RetentionKind::Contracted => "contracted",
            RetentionKind::Churned => "churned",
        }
    }

    /// +1 for movements that add revenue, −1 for those that remove it.
    pub fn sign(self) -> i64 {
        match self {
            RetentionKind::Renewed | RetentionKind::Expanded => 1,
            RetentionKind::Contracted | RetentionKind::Churned => -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RepRegistered {
    pub rep: String,
    pub name: String,
    pub team: String,
    pub manager: String,
    pub region: Option<String>,
    pub start_month: Option<Month>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RepReassigned {
    pub rep: String,
    pub team: Option<String>,
    pub manager: Option<String>,
    pub region: Option<String>,
    pub effective_month: Month,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RepDeparted {
    pub rep: String,
    pub effective_month: Month,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PlanLine {
    pub rep: String,
    pub month: Month,
    pub bucket: Bucket,
    /// Minor units of the plan's currency for money buckets, a count for activities.
    pub target: i64,
}

/// An exchange rate, exact: ten decimals, stored as an integer (1.0825 = 10 825 000 000).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct FxRate(i64);

impl FxRate {
    /// Decimal places a rate keeps.
    pub const SCALE: u32 = 10;

    /// A positive rate in units of 10^-10.
    pub fn from_scaled(scaled: i64) -> Option<Self> {
        (scaled > 0).then_some(FxRate(scaled))
    }

    pub fn scaled(self) -> i64 {
        self.0
    }

    /// Parses a positive decimal with at most ten decimals ("1.0825", "0.0061").
    pub fn parse(s: &str) -> Result<Self, crate::error::ParseError> {
        crate::money::parse_decimal(s, Self::SCALE)
            .ok()
            .and_then(Self::from_scaled)
            .ok_or_else(|| crate::error::ParseError::Rate {
                value: s.to_owned(),
            })
    }

    /// The shortest exact decimal ("1.0825").
    pub fn to_decimal_string(self) -> String {
        let s = crate::money::format_decimal(self.0, Self::SCALE);
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `fx_rate_set`: amounts in `currency` for `month` count at `rate` units of the
/// reporting currency per unit.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct FxRateSet {
    pub currency: Currency,
    pub month: Month,
    pub rate: FxRate,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PlanPublished {
    pub plan: String,
    pub version: u32,
    pub basis: PlanBasis,
    pub horizon_start: Month,
    pub effective_from: Month,
    pub currency: Currency,
    pub lines: Vec<PlanLine>,
}

impl PlanPublished {
    /// Months a published plan spans.
    pub const HORIZON_MONTHS: i32 = 24;

    pub fn covers(&self, month: Month) -> bool {
        let k = self.horizon_start.months_until(month);
        (0..Self::HORIZON_MONTHS).contains(&k)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ForecastSubmitted {
    pub rep: String,
    pub month: Month,
    pub amount: Money,
    pub category: Option<ForecastCategory>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct DealOpened {
    pub deal: String,
    pub rep: String,
    pub account: String,
    pub customer_kind: CustomerKind,
    pub product: Option<String>,
    pub region: Option<String>,
    pub amount: Money,
    pub expected_close: Date,
    pub probability: Option<Percent>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct DealStageChanged {
    pub deal: String,
    pub stage: String,
    pub probability: Option<Percent>,
    pub amount: Option<Money>,
    pub expected_close: Option<Date>,
}

/// A rep's share of a won deal.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Split {
    pub rep: String,
    pub percent: Percent,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct DealWon {
    pub deal: String,
    pub rep: String,
    pub account: String,
    pub customer_kind: CustomerKind,
    pub product: Option<String>,
    pub region: Option<String>,
    pub amount: Money,
    pub closed_on: Date,
    /// Empty: the whole deal is credited to `rep`. Otherwise the shares sum to 100%.
    pub splits: Vec<Split>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct DealLost {
    pub deal: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ActivityLogged {
    pub rep: String,
    pub kind: String,
    pub account: Option<String>,
    pub deal: Option<String>,
}

/// The fields shared by `renewed`, `expanded`, `contracted` and `churned`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RetentionChange {
    pub rep: String,
    pub account: String,
    pub product: Option<String>,
    pub region: Option<String>,
    /// Never negative: the kind gives the sign.
    pub amount: Money,
    pub effective_on: Date,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CustomerRated {
    pub rep: String,
    pub account: String,
    /// Each score 1–5.
    pub listening: u8,
    pub trust: u8,
    pub problem_solving: u8,
    pub responsiveness: u8,
}

impl CustomerRated {
    pub fn scores(&self) -> [u8; 4] {
        [
            self.listening,
            self.trust,
            self.problem_solving,
            self.responsiveness,
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct EventVoided {
    pub voided_event_id: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct AlertAcknowledged {
    pub alert_id: String,
    pub by: String,
    pub note: Option<String>,
}

/// A plan version put up for approval: until a `plan_approved` names it, its
/// `plan_published` parts are in the log but not in force.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PlanSubmitted {
    pub plan: String,
    pub version: u32,
    /// Who submitted it (a finance or admin user).
    pub by: String,
    /// How it was made: target or growth, allocation, seasonality, ramp, inputs.
    pub method: Option<String>,
    pub note: Option<String>,
}

/// A submitted plan version approved: from now on it is in force (as its parts'
/// effective months say).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PlanApproved {
    pub plan: String,
    pub version: u32,
    pub by: String,
    pub note: Option<String>,
}

/// A submitted plan version rejected: it is never in force.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PlanRejected {
    pub plan: String,
    pub version: u32,
    pub by: String,
    pub reason: String,
}

/// An incentive (comp) plan version: what a rep is paid at 100% of their variable
/// pay and how each measure's attainment turns into pay. Versioned and
/// effective-dated like sales plans: a version governs from `effective_from` until a
/// later version of the same comp plan takes over. See `comp` for the arithmetic.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CompPlanPublished {
    pub comp_plan: String,
    pub version: u32,
    pub effective_from: Month,
    pub period: CompPeriod,
    /// The reporting currency (variable pay is in it).
    pub currency: Currency,
    pub assignments: Vec<CompAssignment>,
    pub measures: Vec<CompMeasure>,
}

/// How long a comp period is: a month, or a quarter of the fiscal year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum CompPeriod {
    Month,
    Quarter,
}

impl CompPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            CompPeriod::Month => "month",
            CompPeriod::Quarter => "quarter",
        }
    }
}

/// Who a comp plan pays, and how much at 100% (minor units of the reporting
/// currency, per period): one rep, or every rep of a team (a rep's own line wins).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CompAssignment {
    pub rep: Option<String>,
    pub team: Option<String>,
    pub variable_pay: i64,
}

/// What a measure is the attainment of.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum CompMeasureKind {
    /// Actual ÷ plan of a bucket over the period (`total`, `new_customer`,
    /// `retention`, `product:*`, `activity:*`, ...).
    Bucket(Bucket),
    /// The period's average customer rating ÷ `target_score` (hundredths).
    ReportCard { target_score: i64 },
}

/// One point of a payout curve, in basis points: at this attainment, this share of
/// the measure's pay (10 000 = 100%).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CurvePoint {
    pub attainment_bp: u32,
    pub payout_bp: u32,
}

/// A gate: the accelerator pays only while another bucket's attainment is at least
/// `min_bp`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CompGate {
    pub bucket: Bucket,
    pub min_bp: u32,
}

/// One measure of a comp plan.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct CompMeasure {
    pub kind: CompMeasureKind,
    /// Its share of the variable pay, in basis points (the measures sum to 10 000).
    pub weight_bp: u32,
    /// The curve: strictly rising attainment, never falling payout. Below the first
    /// point nothing is paid (the threshold); between points, a straight line.
    pub curve: Vec<CurvePoint>,
    /// Above the last point, payout points per attainment point, in hundredths
    /// (200: 2 points of pay per point of attainment); `None`: 1:1.
    pub accelerator: Option<u32>,
    /// The most this measure pays, in basis points of its pay.
    pub cap_bp: Option<u32>,
    pub gate: Option<CompGate>,
}

/// Every event type of the brief.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum EventBody {
    RepRegistered(RepRegistered),
    RepReassigned(RepReassigned),
    RepDeparted(RepDeparted),
    PlanPublished(PlanPublished),
    ForecastSubmitted(ForecastSubmitted),
    DealOpened(DealOpened),
    DealStageChanged(DealStageChanged),
    DealWon(DealWon),
    DealLost(DealLost),
    ActivityLogged(ActivityLogged),
    Retention(RetentionKind, RetentionChange),
    CustomerRated(CustomerRated),
    EventVoided(EventVoided),
    AlertAcknowledged(AlertAcknowledged),
    ClockTick,
    /// Last, so that the stored encoding of every earlier variant is unchanged.
    FxRateSet(FxRateSet),
    // The plan approval cycle, after every earlier variant for the same reason.
    PlanSubmitted(PlanSubmitted),
    PlanApproved(PlanApproved),
    PlanRejected(PlanRejected),
    /// After every earlier variant, so their stored encoding is unchanged.
    CompPlanPublished(CompPlanPublished),
}

impl EventBody {
    /// Every `type` name on the wire, in schema order.
    pub const TYPE_NAMES: [&'static str; 23] = [
        "rep_registered",
        "rep_reassigned",
        "rep_departed",
        "plan_published",
        "forecast_submitted",
        "deal_opened",
        "deal_stage_changed",
        "deal_won",
        "deal_lost",
        "activity_logged",
        "renewed",
        "expanded",
        "contracted",
        "churned",
        "customer_rated",
        "event_voided",
        "alert_acknowledged",
        "clock_tick",
        "fx_rate_set",
        "plan_submitted",
        "plan_approved",
        "plan_rejected",
        "comp_plan_published",
    ];

    /// The `type` of this event on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::RepRegistered(_) => "rep_registered",
            EventBody::RepReassigned(_) => "rep_reassigned",
            EventBody::RepDeparted(_) => "rep_departed",
            EventBody::PlanPublished(_) => "plan_published",
            EventBody::ForecastSubmitted(_) => "forecast_submitted",
            EventBody::DealOpened(_) => "deal_opened",
            EventBody::DealStageChanged(_) => "deal_stage_changed",
            EventBody::DealWon(_) => "deal_won",
            EventBody::DealLost(_) => "deal_lost",
            EventBody::ActivityLogged(_) => "activity_logged",
            EventBody::Retention(kind, _) => kind.as_str(),
            EventBody::CustomerRated(_) => "customer_rated",
            EventBody::EventVoided(_) => "event_voided",
            EventBody::AlertAcknowledged(_) => "alert_acknowledged",
            EventBody::ClockTick => "clock_tick",
            EventBody::FxRateSet(_) => "fx_rate_set",
            EventBody::PlanSubmitted(_) => "plan_submitted",
            EventBody::PlanApproved(_) => "plan_approved",
            EventBody::PlanRejected(_) => "plan_rejected",
            EventBody::CompPlanPublished(_) => "comp_plan_published",
        }
    }

    /// The rep an event is about, where it names one (used to partition by rep).
    pub fn rep(&self) -> Option<&str> {
        match self {
            EventBody::RepRegistered(e) => Some(&e.rep),
            EventBody::RepReassigned(e) => Some(&e.rep),
            EventBody::RepDeparted(e) => Some(&e.rep),
            EventBody::ForecastSubmitted(e) => Some(&e.rep),
            EventBody::DealOpened(e) => Some(&e.rep),
            EventBody::DealWon(e) => Some(&e.rep),
            EventBody::ActivityLogged(e) => Some(&e.rep),
            EventBody::Retention(_, e) => Some(&e.rep),
            EventBody::CustomerRated(e) => Some(&e.rep),
            EventBody::PlanPublished(_)
            | EventBody::DealStageChanged(_)
            | EventBody::DealLost(_)
            | EventBody::EventVoided(_)
            | EventBody::AlertAcknowledged(_)
            | EventBody::ClockTick
            | EventBody::FxRateSet(_)
            | EventBody::PlanSubmitted(_)
            | EventBody::PlanApproved(_)
            | EventBody::PlanRejected(_)
            | EventBody::CompPlanPublished(_) => None,
        }
    }
}
