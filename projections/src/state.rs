//! The fold: `State::apply(&mut state, &recorded)` for every event of the log, in
//! log order. Everything a report shows is computed from this state.
//!
//! The state keeps facts, not conclusions: actuals per rep × month × bucket (the sum
//! of contributions), each deal's history of facts (its open/won/lost status is derived
//! from them), the plan book, the org timeline, forecasts, ratings and acknowledgements.
//! What it remembers per event id is only what a later `event_voided` needs to undo,
//! and nothing for an activity (most of a log): a void of one is undone from the
//! activity itself, which the caller looks up in the log and hands to
//! [`State::apply`] with the void.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use chrono_tz::Tz;

use crate::alerts::rules::{findings_of, rules_moved_by, scope_moved_by, Scope};
use crate::alerts::{AlertBook, AlertConfig};
use crate::bucket::{each_contribution, Bucket, BucketKey, BucketRef, Contribution};
use crate::event::{
    AlertAcknowledged, CustomerKind, DealOpened, DealStageChanged, Event, EventBody,
    ForecastCategory, Percent, PlanBasis, PlanPublished, Recorded, RepRegistered,
};
use crate::fx::FxTable;
use crate::money::Currency;
use crate::time::{Date, Month, Timestamp};

/// The team (and manager) of a rep the log never registered.
pub const UNASSIGNED_TEAM: &str = "unassigned";

/// The organisation settings the model needs. An argument, never a global.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgConfig {
    pub timezone: Tz,
    /// The reporting currency: every amount in the state is in its minor units.
    pub currency: Currency,
    /// 1 = January.
    pub fiscal_year_start_month: u32,
    /// The alert rules' thresholds, severities and the focus limit.
    pub alerts: AlertConfig,
}

/// Who a rep is, as of some month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepInfo {
    pub name: String,
    pub team: String,
    pub manager: String,
    pub region: Option<String>,
}

/// A rep's org record: the registration and every reassignment, by effective month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rep {
    pub id: String,
    pub registered: bool,
    pub start_month: Option<Month>,
    pub departed: Option<Month>,
    /// The base record (from registration), then changes effective from a month,
    /// sorted by month, log order within a month.
    base: RepInfo,
    changes: Vec<(Month, RepChange)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RepChange {
    team: Option<String>,
    manager: Option<String>,
    region: Option<String>,
}

impl Rep {
    fn unregistered(id: &str) -> Self {
        Rep {
            id: id.to_owned(),
            registered: false,
            start_month: None,
            departed: None,
            base: RepInfo {
                name: id.to_owned(),
                team: UNASSIGNED_TEAM.to_owned(),
                manager: UNASSIGNED_TEAM.to_owned(),
                region: None,
            },
            changes: Vec::new(),
        }
    }

    /// The rep's record as of `month` (reassignments effective after it do not apply).
    pub fn at(&self, month: Month) -> RepInfo {
        let mut info = self.base.clone();
        for (m, change) in &self.changes {
            if *m > month {
                break;
            }
            if let Some(t) = &change.team {
                info.team.clone_from(t);
            }
            if let Some(mg) = &change.manager {
                info.manager.clone_from(mg);
            }
            if change.region.is_some() {
                info.region.clone_from(&change.region);
            }
        }
        info
    }

    /// The rep's name (reassignments do not change it), without copying the record.
    pub fn name(&self) -> &str {
        &self.base.name
    }

    /// The rep's team as of `month`, without copying the record.
    pub fn team_at(&self, month: Month) -> &str {
        self.changes
            .iter()
            .take_while(|(m, _)| *m <= month)
            .filter_map(|(_, c)| c.team.as_deref())
            .last()
            .unwrap_or(&self.base.team)
    }

    /// The rep's record as of the latest reassignment.
    pub fn latest(&self) -> RepInfo {
        match self.changes.last() {
            Some((m, _)) => self.at(*m),
            None => self.base.clone(),
        }
    }
}

/// One published plan version, its lines indexed by month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanVersion {
    pub seq: u64,
    pub event_id: String,
    pub source: String,
    pub recorded_at: Timestamp,
    pub plan: String,
    pub version: u32,
    pub basis: PlanBasis,
    pub horizon_start: Month,
    pub effective_from: Month,
    pub currency: Currency,
    /// Month → rep → bucket → target.
    pub lines: BTreeMap<Month, BTreeMap<String, RepLines>>,
}

/// One rep's plan lines of one month: bucket → target, in bucket order, held as one
/// exact-size slice (a plan of 10 000 reps holds hundreds of thousands of them, and a
/// map per rep and month costs more than twice as much).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepLines(Box<[(Bucket, i64)]>);

impl RepLines {
    /// The target of `bucket`, if the rep has a line for it.
    pub fn get(&self, bucket: &Bucket) -> Option<&i64> {
        self.0
            .binary_search_by(|(b, _)| b.cmp(bucket))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The lines in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bucket, &i64)> {
        self.0.iter().map(|(b, t)| (b, t))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<Bucket, i64>> for RepLines {
    fn from(lines: BTreeMap<Bucket, i64>) -> Self {
        RepLines(lines.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a RepLines {
    type Item = (&'a Bucket, &'a i64);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Bucket, i64)>,
        fn(&'a (Bucket, i64)) -> (&'a Bucket, &'a i64),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(b, t)| (b, t))
    }
}

impl PlanVersion {
    /// The number of lines (rep × month × bucket) of this version.
    pub fn line_count(&self) -> usize {
        self.lines
            .values()
            .flat_map(BTreeMap::values)
            .map(RepLines::len)
            .sum()
    }

    fn governs(&self, month: Month) -> bool {
        self.effective_from <= month && {
            let k = self.horizon_start.months_until(month);
            (0..PlanPublished::HORIZON_MONTHS).contains(&k)
        }
    }
}

/// Every published plan version, in log order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanBook {
    versions: Vec<PlanVersion>,
}

impl PlanBook {
    pub fn versions(&self) -> &[PlanVersion] {
        &self.versions
    }

    /// The version that sets the plan for `month`: the last one in the log whose
    /// `effective_from` is not after the month and whose 24-month horizon covers it.
    pub fn governing(&self, month: Month) -> Option<&PlanVersion> {
        self.versions.iter().rev().find(|v| v.governs(month))
    }

    /// The plan lines of `month` (rep, bucket, target), by rep, then bucket; empty
    /// when no plan governs it.
    pub fn lines(&self, month: Month) -> impl Iterator<Item = (&str, &Bucket, i64)> {
        self.governing(month)
            .and_then(|v| v.lines.get(&month))
            .into_iter()
            .flatten()
            .flat_map(|(rep, buckets)| buckets.iter().map(move |(b, t)| (rep.as_str(), b, *t)))
    }

    /// One rep's plan lines for `month`, if the governing plan has any.
    pub fn rep_month(&self, rep: &str, month: Month) -> Option<&RepLines> {
        self.governing(month)
            .and_then(|v| v.lines.get(&month))
            .and_then(|reps| reps.get(rep))
    }

    /// One rep's plan lines for `month`, in bucket order.
    pub fn rep_lines<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<Item = (&'a Bucket, i64)> + 'a {
        self.rep_month(rep, month)
            .into_iter()
            .flatten()
            .map(|(b, t)| (b, *t))
    }

    pub fn target(&self, rep: &str, month: Month, bucket: &Bucket) -> i64 {
        self.rep_month(rep, month)
            .and_then(|lines| lines.get(bucket))
            .copied()
            .unwrap_or(0)
    }
}

/// What one event said about a deal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DealFact {
    Opened {
        opened: DealOpened,
        opened_on: Date,
    },
    StageChanged {
        change: DealStageChanged,
        /// The local date of the change's `occurred_at`.
        on: Date,
    },
    Won {
        rep: String,
        amount: i64,
        closed_on: Date,
    },
    Lost {
        reason: Option<String>,
        lost_on: Date,
    },
}

impl DealFact {
    /// The date the fact took effect in the organisation's zone.
    pub fn date(&self) -> Date {
        match self {
            DealFact::Opened { opened_on, .. } => *opened_on,
            DealFact::StageChanged { on, .. } => *on,
            DealFact::Won { closed_on, .. } => *closed_on,
            DealFact::Lost { lost_on, .. } => *lost_on,
        }
    }
}

/// Where a deal stands, derived from its facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

/// A deal as its non-voided facts describe it, when a `deal_opened` is among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealView {
    pub deal: String,
    pub rep: String,
    pub account: String,
    pub customer_kind: CustomerKind,
    pub product: Option<String>,
    pub region: Option<String>,
    /// Minor units of the reporting currency.
    pub amount: i64,
    pub expected_close: Date,
    pub probability: Option<Percent>,
    pub stage: Option<String>,
    pub opened_on: Date,
    pub status: DealStatus,
    /// The date it was won or lost.
    pub closed_on: Option<Date>,
}

/// A deal's facts in log order: (event id, fact).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deal {
    facts: Vec<(String, DealFact)>,
}

impl Deal {
    pub fn facts(&self) -> impl Iterator<Item = &DealFact> {
        self.facts.iter().map(|(_, f)| f)
    }

    /// The deal's current shape, or `None` when the log has no (non-voided) opening.
    ///
    /// Facts may arrive out of order (a CRM retries, a webhook overtakes another), so
    /// the view does not depend on it: the latest opening gives the deal's shape,
    /// stage changes then apply in log order, and the latest won or lost fact, if any,
    /// closes it. A closed deal stays closed unless that fact is voided.
    pub fn view(&self, deal: &str) -> Option<DealView> {
        self.view_where(deal, |_| true)
    }

    /// The deal as it stood at the end of `day`: only facts dated on or before it
    /// count (opened on, changed on, closed on). The digest compares weeks with it.
    pub fn view_through(&self, deal: &str, day: Date) -> Option<DealView> {
        self.view_where(deal, |d| d <= day)
    }

    fn view_where(&self, deal: &str, keep: impl Fn(Date) -> bool) -> Option<DealView> {
        let facts: Vec<&DealFact> = self
            .facts
            .iter()
            .map(|(_, f)| f)
            .filter(|f| keep(f.date()))
            .collect();
        let (opened, opened_on) = facts.iter().rev().find_map(|f| match f {
            DealFact::Opened { opened, opened_on } => Some((opened, *opened_on)),
            _ => None,
        })?;
        let mut v = DealView {
            deal: deal.to_owned(),
            rep: opened.rep.clone(),
            account: opened.account.clone(),
            customer_kind: opened.customer_kind,
            product: opened.product.clone(),
            region: opened.region.clone(),
            amount: opened.amount.minor,
            expected_close: opened.expected_close,
            probability: opened.probability,
            stage: None,
            opened_on,
            status: DealStatus::Open,
            closed_on: None,
        };
        for fact in facts {
            v.apply(fact);
        }
        Some(v)
    }
}

impl DealView {
    /// The month the deal is expected to close in, while it is open; `None` once
    /// it is won or lost. What places it in the open-deal index.
    fn open_closing(&self) -> Option<Month> {
        (self.status == DealStatus::Open).then(|| self.expected_close.month())
    }

    /// One fact after the opening, in log order: a stage change moves the stage (and
    /// what it names of probability, amount, expected close); a win or a loss closes.
    /// An opening changes nothing here: it is the view's base.
    fn apply(&mut self, fact: &DealFact) {
        match fact {
            DealFact::Opened { .. } => {}
            DealFact::StageChanged { change: c, .. } => {
                self.stage = Some(c.stage.clone());
                if c.probability.is_some() {
                    self.probability = c.probability;
                }
                if let Some(a) = c.amount {
                    self.amount = a.minor;
                }
                if let Some(d) = c.expected_close {
                    self.expected_close = d;
                }
            }
            DealFact::Won {
                amount, closed_on, ..
            } => {
                self.status = DealStatus::Won;
                self.amount = *amount;
                self.closed_on = Some(*closed_on);
            }
            DealFact::Lost { lost_on, .. } => {
                self.status = DealStatus::Lost;
                self.closed_on = Some(*lost_on);
            }
        }
    }
}

/// One customer rating of a rep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    pub event_id: String,
    pub account: String,
    pub month: Month,
    pub scores: [u8; 4],
}

/// A bottom-up commit: the latest `forecast_submitted` per rep, month and category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forecast {
    pub event_id: String,
    pub amount: i64,
}

/// An alert acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub by: String,
    pub note: Option<String>,
    pub at: Timestamp,
    pub seq: u64,
}

/// Which reps' alerts an event may change.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Touched {
    None,
    Reps(Vec<String>),
    All,
}

impl Touched {
    fn union(self, other: Touched) -> Touched {
        match (self, other) {
            (Touched::All, _) | (_, Touched::All) => Touched::All,
            (Touched::None, t) | (t, Touched::None) => t,
            (Touched::Reps(mut a), Touched::Reps(b)) => {
                a.extend(b);
                Touched::Reps(a)
            }
        }
    }
}

/// What an event left behind that a void must undo. Kept for every voidable event
/// of the log but activities (which a void looks up instead), so it is small: the
/// larger kinds are boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    /// A revenue movement's bucket contributions, and the won deal it was a fact of.
    Revenue(Box<(Vec<Contribution>, Option<String>)>),
    DealFact(String),
    Rating(String),
    Forecast(Box<(String, Month, Option<ForecastCategory>)>),
}

/// One rep's actuals: month → bucket → the sum of its contributions.
type RepActuals = BTreeMap<Month, BTreeMap<Bucket, i64>>;

/// For an `event_voided`, the id of the event it names: what the caller of
/// [`State::apply`] looks up in the log and hands over with it.
pub fn void_target(ev: &Event) -> Option<&str> {
    match &ev.body {
        EventBody::EventVoided(v) => Some(&v.voided_event_id),
        _ => None,
    }
}

/// Whether an `event_voided` can undo events of this type: the ones that move
/// actuals, deals, ratings or forecasts.
pub fn is_voidable(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::ForecastSubmitted(_)
            | EventBody::DealOpened(_)
            | EventBody::DealStageChanged(_)
            | EventBody::DealWon(_)
            | EventBody::DealLost(_)
            | EventBody::ActivityLogged(_)
            | EventBody::Retention(..)
            | EventBody::CustomerRated(_)
    )
}

/// The whole projected state. Build it with [`State::new`], feed it the log with
/// [`State::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    cfg: OrgConfig,
    now: Option<Timestamp>,
    last_seq: u64,
    events: u64,
    reps: BTreeMap<String, Rep>,
    /// The keys of `reps`, hashed: the fold makes sure of the rep of every event, and
    /// a search of the ordered map compares a string at every level.
    rep_ids: HashSet<Box<str>>,
    plans: PlanBook,
    /// Rep → month → bucket → the sum of its contributions (never zero: a bucket
    /// that sums to zero is removed). Hashed by rep for the fold's lookups; read in
    /// rep order through [`State::actuals`].
    actuals: HashMap<String, RepActuals>,
    /// Every deal's facts, hashed by deal id for the fold; read in id order through
    /// [`State::deals`].
    deals: HashMap<String, Deal>,
    /// Index kept in step with `deals` (refreshed on every deal fact and void): each
    /// opened deal's current view, the deals each rep owns and which of them are open.
    /// It is how alerts read one rep's pipeline without scanning every deal.
    /// Hashed: the rules look up every open deal of a rep on each event they
    /// evaluate; [`State::deal_views`] reads them in deal-id order.
    views: HashMap<String, DealView>,
    deals_by_rep: BTreeMap<String, BTreeSet<String>>,
    /// Rep → open deal → the month of its expected close (the view's), so that a
    /// month's pipeline looks up only the deals expected to close in it.
    open_by_rep: BTreeMap<String, BTreeMap<String, Month>>,
    ratings: BTreeMap<String, Vec<Rating>>,
    forecasts: BTreeMap<(String, Month, Option<ForecastCategory>), Vec<Forecast>>,
    acks: BTreeMap<String, Ack>,
    alert_book: AlertBook,
    /// Exchange rates from `fx_rate_set`, by currency and month.
    fx: FxTable,
    undo: HashMap<Box<str>, Undo>,
    voided: HashSet<String>,
}

impl State {
    pub fn new(cfg: OrgConfig) -> Self {
        State {
            cfg,
            now: None,
            last_seq: 0,
            events: 0,
            reps: BTreeMap::new(),
            rep_ids: HashSet::default(),
            plans: PlanBook::default(),
            actuals: HashMap::default(),
            deals: HashMap::default(),
            views: HashMap::default(),
            deals_by_rep: BTreeMap::new(),
            open_by_rep: BTreeMap::new(),
            ratings: BTreeMap::new(),
            forecasts: BTreeMap::new(),
            acks: BTreeMap::new(),
            alert_book: AlertBook::default(),
            fx: FxTable::default(),
            undo: HashMap::default(),
            voided: HashSet::default(),
        }
    }

    /// Folds one recorded event into the state. Never fails: the engine validated the
    /// event before it was stored.
    ///
    /// `target` is, for an `event_voided`, the event it names as the log holds it
    /// (`None` if the log holds no event with that id); for every other event it is
    /// not read. The fold keeps no undo record of an activity, so voiding one takes
    /// the activity itself. [`void_target`] says which id to look up.
    pub fn apply(&mut self, rec: &Recorded, target: Option<&Recorded>) {
        // Only an event that came before the void can be undone by it.
        let target = target.filter(|t| t.seq < rec.seq);
        self.last_seq = self.last_seq.max(rec.seq);
        self.events += 1;
        self.alert_book.begin_event();
        let normalized = match crate::fx::normalize(
            &rec.event,
            self.cfg.currency,
            self.cfg.timezone,
            &self.fx,
        ) {
            Ok(ev) => ev,
            // The engine checks the rate before it stores an event; should a log hold
            // one without it, the event stays out rather than count in a wrong currency.
            Err(_) => return,
        };
        let ev: &Event = &normalized;
        if is_voidable(&ev.body) && self.voided.contains(&ev.event_id) {
            // Voided before it arrived (a CRM's undo can overtake the event): it counts
            // for nothing.
            return;
        }
        // Before the first tick there is no "now" and no alert to evaluate: skip the
        // bookkeeping of which reps an event touched (a replay's long prefix).
        // An event no rule reads (a forecast, an acknowledgement) skips it too.
        let alerts_live = (self.now.is_some() || matches!(ev.body, EventBody::ClockTick))
            && !rules_moved_by(&ev.body).is_empty();
        let (before, deal_after) = if alerts_live {
            self.touched_before(ev, target)
        } else {
            (Touched::None, None)
        };
        if let Some(rep) = ev.body.rep() {
            self.ensure_rep(rep);
        }
        let tz = self.cfg.timezone;
        match &ev.body {
            EventBody::RepRegistered(r) => self.register(r),
            EventBody::RepReassigned(r) => {
                let rep = self.rep_entry(&r.rep);
                let change = RepChange {
                    team: r.team.clone(),
                    manager: r.manager.clone(),
                    region: r.region.clone(),
                };
                let at = rep
                    .changes
                    .partition_point(|(m, _)| *m <= r.effective_month);
                rep.changes.insert(at, (r.effective_month, change));
            }
            EventBody::RepDeparted(r) => self.rep_entry(&r.rep).departed = Some(r.effective_month),
            EventBody::PlanPublished(p) => self.publish(rec, p),
            EventBody::ForecastSubmitted(f) => {
                let key = (f.rep.clone(), f.month, f.category);
                self.forecasts.entry(key).or_default().push(Forecast {
                    event_id: ev.event_id.clone(),
                    amount: f.amount.minor,
                });
                self.undo.insert(
                    ev.event_id.as_str().into(),
                    Undo::Forecast(Box::new((f.rep.clone(), f.month, f.category))),
                );
            }
            EventBody::DealOpened(o) => {
                let fact = DealFact::Opened {
                    opened: o.clone(),
                    opened_on: ev.occurred_at.local_date(tz),
                };
                self.deal_fact(ev, &o.deal, fact);
            }
            EventBody::DealStageChanged(c) => {
                let fact = DealFact::StageChanged {
                    change: c.clone(),
                    on: ev.occurred_at.local_date(tz),
                };
                self.deal_fact(ev, &c.deal, fact)
            }
            EventBody::DealWon(w) => {
                self.add_contributions(ev, tz, Some(&w.deal));
                let fact = DealFact::Won {
                    rep: w.rep.clone(),
                    amount: w.amount.minor,
                    closed_on: w.closed_on,
                };
                self.deal_fact(ev, &w.deal, fact);
                for s in &w.splits {
                    self.ensure_rep(&s.rep);
                }
            }
            EventBody::DealLost(l) => {
                let fact = DealFact::Lost {
                    reason: l.reason.clone(),
                    lost_on: ev.occurred_at.local_date(tz),
                };
                self.deal_fact(ev, &l.deal, fact);
            }
            EventBody::ActivityLogged(_) | EventBody::Retention(..) => {
                self.add_contributions(ev, tz, None)
            }
            EventBody::CustomerRated(r) => {
                self.ratings.entry(r.rep.clone()).or_default().push(Rating {
                    event_id: ev.event_id.clone(),
                    account: r.account.clone(),
                    month: ev.occurred_at.local_date(tz).month(),
                    scores: r.scores(),
                });
                self.undo
                    .insert(ev.event_id.as_str().into(), Undo::Rating(r.rep.clone()));
            }
            EventBody::EventVoided(v) => self.void(&v.voided_event_id, target),
            EventBody::AlertAcknowledged(AlertAcknowledged { alert_id, by, note }) => {
                if !self.acks.contains_key(alert_id) {
                    self.acks.insert(
                        alert_id.clone(),
                        Ack {
                            by: by.clone(),
                            note: note.clone(),
                            at: ev.occurred_at,
                            seq: rec.seq,
                        },
                    );
                    self.alert_book.acknowledged(alert_id);
                }
            }
            EventBody::FxRateSet(r) => self.fx.set(r.currency, r.month, r.rate),
            EventBody::ClockTick => {
                // Time only moves forward: a late tick does not turn the clock back.
                self.now = Some(self.now.map_or(ev.occurred_at, |n| n.max(ev.occurred_at)));
            }
        }
        if !alerts_live {
            return;
        }
        let mut touched = before.union(self.touched_after(ev));
        if let Some(rep) = deal_after
            .and_then(|d| self.views.get(&d))
            .map(|v| v.rep.clone())
        {
            touched = touched.union(Touched::Reps(vec![rep]));
        }
        // A new day, alert week or plan looks at every rule of every rep.
        let scope = match touched {
            Touched::All => Scope::ALL,
            _ => scope_moved_by(&ev.body),
        };
        self.evaluate_alerts(touched, scope, rec.seq);
    }

    /// The reps an event may change the alerts of, as the state stood before it; and
    /// for a void, the deal whose owner after the void must be looked at too (voiding
    /// an opening can hand the deal back to an earlier owner).
    fn touched_before(&self, ev: &Event, target: Option<&Recorded>) -> (Touched, Option<String>) {
        let deal_rep = |deal: &str| self.views.get(deal).map(|v| v.rep.clone());
        if let EventBody::EventVoided(v) = &ev.body {
            let deal = match self.undo.get(v.voided_event_id.as_str()) {
                Some(Undo::Revenue(r)) => r.1.clone(),
                Some(Undo::DealFact(deal)) => Some(deal.clone()),
                _ => None,
            };
            return (self.touched_by_void(&v.voided_event_id, target), deal);
        }
        let touched = match &ev.body {
            EventBody::PlanPublished(_) => Touched::All,
            EventBody::ClockTick => {
                let tz = self.cfg.timezone;
                let new_day = |old: Timestamp| {
                    let now = old.max(ev.occurred_at);
                    now.local_date(tz) != old.local_date(tz)
                        || crate::alerts::alert_week(now, tz) != crate::alerts::alert_week(old, tz)
                        || self.alert_book.earliest_act_by().is_some_and(|t| t < now)
                };
                match self.now {
                    None => Touched::All,
                    Some(old) if new_day(old) => Touched::All,
                    Some(_) => Touched::None,
                }
            }
            EventBody::DealOpened(o) => Touched::Reps(deal_rep(&o.deal).into_iter().collect()),
            EventBody::DealWon(w) => Touched::Reps(deal_rep(&w.deal).into_iter().collect()),
            _ => Touched::None,
        };
        (touched, None)
    }

    /// The reps whose figures a void of `target` changes, as the state stands before it.
    fn touched_by_void(&self, target: &str, event: Option<&Recorded>) -> Touched {
        let deal_rep = |deal: &str| self.views.get(deal).map(|v| v.rep.clone());
        match self.undo.get(target) {
            None => match self
                .voided_activity(target, event)
                .and_then(|e| e.body.rep())
            {
                Some(rep) => Touched::Reps(vec![rep.to_owned()]),
                None => Touched::None,
            },
            Some(Undo::Revenue(r)) => Touched::Reps(
                r.0.iter()
                    .map(|c| c.rep.clone())
                    .chain(r.1.as_deref().and_then(deal_rep))
                    .collect(),
            ),
            Some(Undo::DealFact(deal)) => Touched::Reps(deal_rep(deal).into_iter().collect()),
            Some(Undo::Rating(rep)) => Touched::Reps(vec![rep.clone()]),
            Some(Undo::Forecast(f)) => Touched::Reps(vec![f.0.clone()]),
        }
    }

    /// The reps an event may change the alerts of, as the state stands after it.
    fn touched_after(&self, ev: &Event) -> Touched {
        let deal_rep = |deal: &str| self.views.get(deal).map(|v| v.rep.clone());
        let mut reps: Vec<String> = ev.body.rep().map(str::to_owned).into_iter().collect();
        match &ev.body {
            EventBody::DealStageChanged(c) => reps.extend(deal_rep(&c.deal)),
            EventBody::DealLost(l) => reps.extend(deal_rep(&l.deal)),
            EventBody::DealOpened(o) => reps.extend(deal_rep(&o.deal)),
            EventBody::DealWon(w) => {
                reps.extend(deal_rep(&w.deal));
                reps.extend(w.splits.iter().map(|s| s.rep.clone()));
            }
            _ => {}
        }
        Touched::Reps(reps)
    }

    /// Re-evaluates these alert rules for the touched reps (nothing before the first
    /// `clock_tick`: without "now" there is no pace).
    fn evaluate_alerts(&mut self, touched: Touched, scope: Scope<'_>, seq: u64) {
        let Some(now) = self.now else {
            return;
        };
        if scope.rules.is_empty() {
            return;
        }
        let reps: Vec<String> = match touched {
            Touched::None => return,
            Touched::All => self.reps.keys().cloned().collect(),
            Touched::Reps(mut reps) => {
                reps.sort();
                reps.dedup();
                reps
            }
        };
        let tz = self.cfg.timezone;
        for rep in reps {
            let found = findings_of(self, &rep, now, &self.cfg.alerts, scope);
            self.alert_book
                .reconcile(&rep, scope, found, now, seq, tz, &self.acks);
        }
    }

    /// Makes sure the org knows the rep (unregistered until a `rep_registered`).
    fn ensure_rep(&mut self, rep: &str) {
        if !self.rep_ids.contains(rep) {
            self.rep_ids.insert(rep.into());
            self.reps.insert(rep.to_owned(), Rep::unregistered(rep));
        }
    }

    fn rep_entry(&mut self, rep: &str) -> &mut Rep {
        self.ensure_rep(rep);
        self.reps.get_mut(rep).expect("inserted above")
    }

    fn register(&mut self, r: &RepRegistered) {
        let rep = self.rep_entry(&r.rep);
        rep.registered = true;
        rep.start_month = r.start_month;
        rep.base = RepInfo {
            name: r.name.clone(),
            team: r.team.clone(),
            manager: r.manager.clone(),
            region: r.region.clone(),
        };
    }

    fn publish(&mut self, rec: &Recorded, p: &PlanPublished) {
        // A rep with a plan is a rep the alert rules look at, registered or not.
        for l in &p.lines {
            self.ensure_rep(&l.rep);
        }
        let mut lines: BTreeMap<Month, BTreeMap<String, BTreeMap<Bucket, i64>>> = BTreeMap::new();
        for l in &p.lines {
            let reps = lines.entry(l.month).or_default();
            let buckets = match reps.get_mut(&l.rep) {
                Some(b) => b,
                None => reps.entry(l.rep.clone()).or_default(),
            };
            buckets.insert(l.bucket.clone(), l.target);
        }
        let lines = lines
            .into_iter()
            .map(|(month, reps)| {
                let reps = reps.into_iter().map(|(rep, b)| (rep, b.into())).collect();
                (month, reps)
            })
            .collect();
        self.plans.versions.push(PlanVersion {
            seq: rec.seq,
            event_id: rec.event.event_id.clone(),
            source: rec.event.source.clone(),
            recorded_at: rec.recorded_at,
            plan: p.plan.clone(),
            version: p.version,
            basis: p.basis,
            horizon_start: p.horizon_start,
            effective_from: p.effective_from,
            currency: p.currency,
            lines,
        });
    }

    fn add_contributions(&mut self, ev: &Event, tz: Tz, deal: Option<&str>) {
        // An activity keeps no undo record (a void looks the activity up instead), so
        // its contribution is added as borrowed from the event, with no copy.
        let keep = !matches!(ev.body, EventBody::ActivityLogged(_));
        let mut kept = Vec::new();
        each_contribution(ev, tz, |c| {
            self.add_to_bucket(c.rep, c.month, c.bucket, c.delta);
            if keep {
                kept.push(c.to_owned());
            }
        });
        if keep {
            let undo = Undo::Revenue(Box::new((kept, deal.map(str::to_owned))));
            self.undo.insert(ev.event_id.as_str().into(), undo);
        }
    }

    /// Adds `delta` to one bucket of a rep's month (no allocation when the bucket
    /// has moved before).
    fn add_to_bucket(&mut self, rep: &str, month: Month, bucket: BucketRef<'_>, delta: i64) {
        let key: &dyn BucketKey = &bucket;
        if let Some(months) = self.actuals.get_mut(rep) {
            if let Some(buckets) = months.get_mut(&month) {
                if let Some(slot) = buckets.get_mut(key) {
                    // Wrapping, not saturating: adding then removing is exact even at
                    // the edge of the i64 range, so a void always undoes its event and
                    // the invariants hold.
                    *slot = slot.wrapping_add(delta);
                    if *slot == 0 {
                        // Canonical state: a bucket that sums to zero is as if it had
                        // never moved.
                        buckets.remove(key);
                        if buckets.is_empty() {
                            months.remove(&month);
                            if months.is_empty() {
                                self.actuals.remove(rep);
                            }
                        }
                    }
                    return;
                }
            }
        }
        if delta == 0 {
            return;
        }
        if !self.actuals.contains_key(rep) {
            self.actuals.insert(rep.to_owned(), BTreeMap::new());
        }
        let months = self.actuals.get_mut(rep).expect("inserted above");
        months
            .entry(month)
            .or_default()
            .insert(bucket.to_bucket(), delta);
    }

    fn deal_fact(&mut self, ev: &Event, deal: &str, fact: DealFact) {
        if !matches!(ev.body, EventBody::DealWon(_)) {
            self.undo
                .insert(ev.event_id.as_str().into(), Undo::DealFact(deal.to_owned()));
        }
        // A fact that is not an opening, appended to an opened deal, changes its view
        // exactly as the last step of `Deal::view` would: apply it in place.
        let appended = match (&fact, self.views.get_mut(deal)) {
            (DealFact::Opened { .. }, _) | (_, None) => None,
            (fact, Some(view)) => {
                let before = view.open_closing();
                view.apply(fact);
                let after = view.open_closing();
                // Only a change between open and closed, or of an open deal's close
                // month, changes the index (the rep stays).
                Some((before != after).then(|| (after, view.rep.clone())))
            }
        };
        let facts = match self.deals.get_mut(deal) {
            Some(d) => &mut d.facts,
            None => &mut self.deals.entry(deal.to_owned()).or_default().facts,
        };
        facts.push((ev.event_id.clone(), fact));
        match appended {
            None => self.refresh_deal(deal),
            Some(None) => {}
            Some(Some((close, rep))) => self.set_open(&rep, deal, close),
        }
    }

    /// Records in the open-deal index that `rep`'s `deal` is open and expected to
    /// close in `close`, or (`None`) that it is not open; a rep left with no open
    /// deal leaves the index.
    fn set_open(&mut self, rep: &str, deal: &str, close: Option<Month>) {
        match close {
            Some(close) => {
                let open = match self.open_by_rep.get_mut(rep) {
                    Some(open) => open,
                    None => self.open_by_rep.entry(rep.to_owned()).or_default(),
                };
                open.insert(deal.to_owned(), close);
            }
            None => {
                if let Some(open) = self.open_by_rep.get_mut(rep) {
                    open.remove(deal);
                    if open.is_empty() {
                        self.open_by_rep.remove(rep);
                    }
                }
            }
        }
    }

    /// Brings the deal index up to date with the deal's facts.
    fn refresh_deal(&mut self, deal: &str) {
        let view = self.deals.get(deal).and_then(|d| d.view(deal));
        if let (Some(old), Some(new)) = (self.views.get_mut(deal), &view) {
            // The common case (a stage or amount change): same rep, same status and
            // close month, so the indexes stand as they are.
            if old.rep == new.rep && old.open_closing() == new.open_closing() {
                *old = view.expect("matched as Some");
                return;
            }
        }
        if let Some(old) = self.views.remove(deal) {
            if let Some(set) = self.deals_by_rep.get_mut(&old.rep) {
                set.remove(deal);
                if set.is_empty() {
                    self.deals_by_rep.remove(&old.rep);
                }
            }
            self.set_open(&old.rep, deal, None);
        }
        let Some(view) = view else {
            return;
        };
        self.deals_by_rep
            .entry(view.rep.clone())
            .or_default()
            .insert(deal.to_owned());
        if let Some(close) = view.open_closing() {
            self.set_open(&view.rep, deal, Some(close));
        }
        self.views.insert(deal.to_owned(), view);
    }

    /// Removes exactly what the voided event contributed. Voiding an event that has not
    /// arrived yet makes it count for nothing when it does. Org, plan, void, ack and
    /// tick events cannot be voided (plans are revised by publishing a new version).
    fn void(&mut self, target: &str, event: Option<&Recorded>) {
        // Which activity this undoes, looked at before the id counts as voided.
        let activity = self.voided_activity(target, event);
        if !self.voided.insert(target.to_owned()) {
            return;
        }
        if let Some(activity) = activity {
            each_contribution(activity, self.cfg.timezone, |c| {
                self.add_to_bucket(c.rep, c.month, c.bucket, c.delta.wrapping_neg());
            });
            return;
        }
        match self.undo.remove(target) {
            Some(Undo::Revenue(r)) => {
                let (contribs, deal) = *r;
                for c in &contribs {
                    let bucket = c.bucket.borrowed();
                    self.add_to_bucket(&c.rep, c.month, bucket, c.delta.wrapping_neg());
                }
                if let Some(deal) = deal {
                    self.remove_deal_fact(&deal, target);
                }
            }
            Some(Undo::DealFact(deal)) => self.remove_deal_fact(&deal, target),
            Some(Undo::Rating(rep)) => {
                if let Some(list) = self.ratings.get_mut(&rep) {
                    list.retain(|r| r.event_id != target);
                }
            }
            Some(Undo::Forecast(f)) => {
                if let Some(list) = self.forecasts.get_mut(&*f) {
                    list.retain(|f| f.event_id != target);
                }
            }
            None => {}
        }
    }

    /// The activity a void of `target` undoes, given the event the log holds under
    /// that id (already checked to come before the void): one that is an activity and
    /// counted (it was not voided before it arrived, nor since).
    fn voided_activity<'a>(&self, target: &str, event: Option<&'a Recorded>) -> Option<&'a Event> {
        let event = &event.filter(|e| e.event.event_id == target)?.event;
        (matches!(event.body, EventBody::ActivityLogged(_)) && !self.voided.contains(target))
            .then_some(event)
    }

    fn remove_deal_fact(&mut self, deal: &str, event_id: &str) {
        if let Some(d) = self.deals.get_mut(deal) {
            d.facts.retain(|(id, _)| id != event_id);
            if d.facts.is_empty() {
                self.deals.remove(deal);
            }
        }
        self.refresh_deal(deal);
    }

    // ---- read side ----

    pub fn config(&self) -> &OrgConfig {
        &self.cfg
    }

    /// The latest `clock_tick`: "now". `None` before the first tick.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// The month of "now" in the organisation's zone.
    pub fn current_month(&self) -> Option<Month> {
        self.now.map(|t| t.local_date(self.cfg.timezone).month())
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many events were folded.
    pub fn events_applied(&self) -> u64 {
        self.events
    }

    pub fn reps(&self) -> &BTreeMap<String, Rep> {
        &self.reps
    }

    /// The rep's record as of `month`; reps the log never registered are in team
    /// `unassigned`.
    pub fn rep_at(&self, rep: &str, month: Month) -> RepInfo {
        match self.reps.get(rep) {
            Some(r) => r.at(month),
            None => Rep::unregistered(rep).base,
        }
    }

    pub fn plans(&self) -> &PlanBook {
        &self.plans
    }

    /// The actual of one bucket of a rep's month.
    pub fn actual(&self, rep: &str, month: Month, bucket: &Bucket) -> i64 {
        self.month_actuals(rep, month)
            .and_then(|m| m.get(bucket))
            .copied()
            .unwrap_or(0)
    }

    /// The non-zero actuals of a rep's month, by bucket.
    pub fn month_actuals(&self, rep: &str, month: Month) -> Option<&BTreeMap<Bucket, i64>> {
        self.actuals.get(rep).and_then(|m| m.get(&month))
    }

    /// All non-zero actuals, by rep and month, in that order.
    pub fn actuals(&self) -> impl Iterator<Item = ((&str, Month), &BTreeMap<Bucket, i64>)> + '_ {
        let mut reps: Vec<(&String, &RepActuals)> = self.actuals.iter().collect();
        reps.sort_unstable_by_key(|(rep, _)| *rep);
        reps.into_iter()
            .flat_map(|(rep, months)| months.iter().map(move |(m, b)| ((rep.as_str(), *m), b)))
    }

    /// Every deal's facts, in deal-id order.
    pub fn deals(&self) -> impl Iterator<Item = (&str, &Deal)> + '_ {
        let mut deals: Vec<(&str, &Deal)> =
            self.deals.iter().map(|(id, d)| (id.as_str(), d)).collect();
        deals.sort_unstable_by_key(|(id, _)| *id);
        deals.into_iter()
    }

    /// One deal's facts.
    pub fn deal(&self, id: &str) -> Option<&Deal> {
        self.deals.get(id)
    }

    /// Every deal that has been opened, as it stands now, in deal-id order.
    pub fn deal_views(&self) -> impl Iterator<Item = &DealView> + '_ {
        let mut views: Vec<&DealView> = self.views.values().collect();
        views.sort_unstable_by(|a, b| a.deal.cmp(&b.deal));
        views.into_iter()
    }

    /// The rep's open deals, in deal-id order.
    pub fn open_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = &'a DealView> + 'a {
        self.open_by_rep
            .get(rep)
            .into_iter()
            .flatten()
            .filter_map(|(d, _)| self.views.get(d))
    }

    /// The rep's open deals expected to close in `month`, in deal-id order: the
    /// deals of `open_deals` whose `expected_close` is in the month, found without
    /// looking up the others.
    pub fn open_deals_closing<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<Item = &'a DealView> + 'a {
        self.open_by_rep
            .get(rep)
            .into_iter()
            .flatten()
            .filter(move |(_, close)| **close == month)
            .filter_map(|(d, _)| self.views.get(d))
    }

    /// Every deal the rep owns (open, won or lost), in deal-id order.
    pub fn rep_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = &'a DealView> + 'a {
        self.deals_by_rep
            .get(rep)
            .into_iter()
            .flatten()
            .filter_map(|d| self.views.get(d))
    }

    /// Reps that own at least one open deal, in order.
    pub fn reps_with_open_deals(&self) -> impl Iterator<Item = &String> + '_ {
        self.open_by_rep.keys()
    }

    pub fn ratings(&self, rep: &str) -> &[Rating] {
        self.ratings.get(rep).map_or(&[], Vec::as_slice)
    }

    /// The latest non-voided commit of a rep for a month and category.
    pub fn forecast(
        &self,
        rep: &str,
        month: Month,
        category: Option<ForecastCategory>,
    ) -> Option<i64> {
        self.forecasts
            .get(&(rep.to_owned(), month, category))
            .and_then(|l| l.last())
            .map(|f| f.amount)
    }

    pub fn acks(&self) -> &BTreeMap<String, Ack> {
        &self.acks
    }

    /// The exchange rates known so far.
    pub fn fx(&self) -> &FxTable {
        &self.fx
    }

    /// Every alert the fold has raised, and which stand.
    pub fn alert_book(&self) -> &AlertBook {
        &self.alert_book
    }

    /// Whether an `event_voided` has named this id (whether or not it could undo it).
    pub fn is_voided(&self, event_id: &str) -> bool {
        self.voided.contains(event_id)
    }
}

/// The average of `ratings` report cards whose scores (four each) sum to `total`, in
/// hundredths, cut toward zero (3.495 reads 3.49): the one rounding of a rating, so
/// the digest shows what `report_card_drop` judged.
pub fn score_hundredths(total: i64, ratings: i64) -> i64 {
    total * 100 / (4 * ratings)
}
