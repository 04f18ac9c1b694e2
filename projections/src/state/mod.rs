//! The facts' fold: `State::apply(&mut state, &recorded)` for every event of the
//! log, in log order. Everything a report shows is computed from this state. It
//! knows nothing of alerts: [`crate::model::Model`] folds the alert book after it,
//! reading the state, never the other way round.
//!
//! The state keeps facts, not conclusions: actuals per rep × month × bucket (the sum
//! of contributions), each deal's history of facts (its open/won/lost status is derived
//! from them), the plan book, the org timeline, forecasts, ratings and acknowledgements.
//! It keeps nothing per event id for a later `event_voided`: the caller looks the
//! voided event up in the log and hands it to [`State::apply`] with the void, and the
//! fold undoes it from the event itself (only an amount converted from another
//! currency is remembered, by seq, since its rate may be set again).
//!
//! Names (reps, accounts, products, regions, stages) and buckets are interned
//! ([`names`]); the modules hold the parts: [`actuals`], [`deals`], [`plans`].

pub mod actuals;
pub mod bookings;
pub mod deals;
pub mod names;
pub mod plans;
mod stamps;
mod varint;

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

pub use crate::config::OrgConfig;

use crate::bucket::{Bucket, BucketRef};
use crate::contribution::each_contribution;
use crate::event::{
    AlertAcknowledged, Event, EventBody, ForecastCategory, Recorded, RepRegistered,
};
use crate::fx::FxTable;
use crate::money::Money;
use crate::time::{Month, Timestamp};

use actuals::Actuals;
pub use actuals::{ByBucket, Cells, MonthActuals};
use bookings::{Bookings, DayDelta};
pub use bookings::{DayAmounts, RepMonth};
pub use deals::{Deal, DealStatus, DealView, OpenLine};
use deals::{Deals, Fact, FactKind, Opening, StageChange};
use names::{Buckets, Names, Sym};
use plans::PlanBook;
pub use plans::{PlanAt, PlanVersion, Plans, RepLines, Review};
use stamps::Stamps;

/// What a fold of an event takes in: everything; in a partition that does not fold
/// the event in full, only what every partition shares, a revenue event's bookings
/// by day ([`State::fold_shared`]); or, when such a partition joins the event's deal
/// later, the rest ([`State::fold_joined`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Full,
    Shared,
    Rest,
}

/// The team (and manager) of a rep the log never registered.
pub const UNASSIGNED_TEAM: &str = "unassigned";

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

    /// The rep's manager as of `month`, without copying the record.
    pub fn manager_at(&self, month: Month) -> &str {
        self.changes
            .iter()
            .take_while(|(m, _)| *m <= month)
            .filter_map(|(_, c)| c.manager.as_deref())
            .last()
            .unwrap_or(&self.base.manager)
    }

    /// The rep's record as of the latest reassignment.
    pub fn latest(&self) -> RepInfo {
        match self.changes.last() {
            Some((m, _)) => self.at(*m),
            None => self.base.clone(),
        }
    }
}

/// One customer rating of a rep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    /// The seq of the `customer_rated`.
    pub seq: u64,
    pub account: String,
    pub month: Month,
    pub scores: [u8; 4],
}

/// A bottom-up commit: the latest `forecast_submitted` per rep, month and category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forecast {
    /// The seq of the `forecast_submitted`.
    pub seq: u64,
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

/// A rep's team over time, as interned names: the registration's, then each
/// reassignment that names a team, by effective month (log order within a month),
/// as [`Rep::team_at`] reads them. The fold keeps it in step with the rep's record,
/// so that filing a day's bookings under the rep's team looks nothing up by name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TeamLine {
    base: Sym,
    changes: Vec<(Month, Sym)>,
}

impl TeamLine {
    fn at(&self, month: Month) -> Sym {
        self.changes
            .iter()
            .take_while(|(m, _)| *m <= month)
            .last()
            .map_or(self.base, |(_, t)| *t)
    }
}

/// What folding one event did, for the folds that follow it (the alert book).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// A rep moved between teams with the days of their history.
    pub history_moved: bool,
    /// An `alert_acknowledged` recorded the first acknowledgement of its alert.
    pub acknowledged: bool,
}

/// The `target` handed to [`State::apply`] with `rec`, if it can be undone by it:
/// only an event that came before the void, with the id it names.
pub fn applicable_target<'t>(rec: &Recorded, target: Option<&'t Recorded>) -> Option<&'t Recorded> {
    target.filter(|t| t.seq < rec.seq && void_target(&rec.event) == Some(&t.event.event_id))
}

/// For an `event_voided`, the id of the event it names: what the caller of
/// [`State::apply`] looks up in the log and hands over with it.
pub fn void_target(ev: &Event) -> Option<&str> {
    match &ev.body {
        EventBody::EventVoided(v) => Some(&v.voided_event_id),
        _ => None,
    }
}

/// Whether events of this type are revenue, whose `total` by day every partition
/// folds ([`State::fold_shared`]): a deal won, a retention movement.
fn is_shared_revenue(body: &EventBody) -> bool {
    matches!(body, EventBody::DealWon(_) | EventBody::Retention(..))
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
/// [`State::apply`]. Two states are equal when they folded the same events in the
/// same order (names are numbered in the order they first appeared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    cfg: OrgConfig,
    now: Option<Timestamp>,
    last_seq: u64,
    events: u64,
    names: Names,
    buckets: Buckets,
    reps: BTreeMap<String, Rep>,
    /// Which syms are reps of `reps` (indexed by sym): the fold makes sure of the rep
    /// of every event.
    rep_syms: Vec<bool>,
    /// Each rep's team over time, the names interned: what the fold files a day's
    /// bookings under without looking the rep's record up by name.
    rep_teams: HashMap<Sym, TeamLine>,
    plans: PlanBook,
    /// Rep × month × bucket → the sum of its contributions (never zero).
    actuals: Actuals,
    /// The `total` of every rep, team and the organisation by day of the month, and
    /// each rep's bookings a month: what the pacing curve learns from.
    bookings: Bookings,
    /// Every deal's facts, its view and the index by rep.
    deals: Deals,
    ratings: BTreeMap<String, Vec<Rating>>,
    forecasts: BTreeMap<(String, Month, Option<ForecastCategory>), Vec<Forecast>>,
    acks: BTreeMap<String, Ack>,
    /// Exchange rates from `fx_rate_set`, by currency and month.
    fx: FxTable,
    /// Seq → reporting minor units, for each won deal or retention movement in
    /// another currency that counted: what a void of it takes back (a rate set
    /// again later applies only to amounts folded after it).
    converted: HashMap<u64, i64>,
    voided: HashSet<String>,
    /// Every `comp_plan_published`, by comp plan, with its seq, in log order.
    comp_plans: BTreeMap<String, Vec<(u64, crate::event::CompPlanPublished)>>,
    /// When each month's actuals and bookings, and the plans, last changed: what
    /// [`crate::pacing::Memo`] checks its kept values against.
    stamps: Stamps,
}

impl State {
    pub fn new(cfg: OrgConfig) -> Self {
        State {
            cfg,
            now: None,
            last_seq: 0,
            events: 0,
            names: Names::default(),
            buckets: Buckets::default(),
            reps: BTreeMap::new(),
            rep_syms: Vec::new(),
            rep_teams: HashMap::default(),
            plans: PlanBook::default(),
            actuals: Actuals::default(),
            bookings: Bookings::default(),
            deals: Deals::default(),
            ratings: BTreeMap::new(),
            forecasts: BTreeMap::new(),
            acks: BTreeMap::new(),
            fx: FxTable::default(),
            converted: HashMap::default(),
            voided: HashSet::default(),
            comp_plans: BTreeMap::new(),
            stamps: Stamps::default(),
        }
    }

    /// Folds one recorded event into the state. Never fails: the engine validated the
    /// event before it was stored.
    ///
    /// `target` is, for an `event_voided`, the event it names as the log holds it
    /// (`None` if the log holds no event with that id); for every other event it is
    /// not read. The fold keeps no undo record: a void is undone from the event it
    /// names. [`void_target`] says which id to look up.
    ///
    /// This is the facts' fold only; [`crate::model::Model::apply`] folds the alert
    /// book after it.
    pub fn apply(&mut self, rec: &Recorded, target: Option<&Recorded>) -> Applied {
        let target = applicable_target(rec, target);
        match self.admit(rec) {
            Some(ev) => self.fold(rec, &ev, target),
            None => Applied::default(),
        }
    }

    /// The first half of [`State::apply`]: counts the event, and returns it as it
    /// counts (converted to the reporting currency), or `None` when it counts for
    /// nothing: no exchange rate, or voided before it arrived.
    pub fn admit<'r>(&mut self, rec: &'r Recorded) -> Option<std::borrow::Cow<'r, Event>> {
        self.events += 1;
        self.admit_again(rec)
    }

    /// [`State::admit`] without counting the event: one of a deal's earlier events,
    /// which a joining partition counted when it came ([`State::fold_joined`]; an
    /// engine that does not hand a partition the events it shares nothing of counts
    /// fewer events than a single engine).
    pub fn admit_again<'r>(&mut self, rec: &'r Recorded) -> Option<std::borrow::Cow<'r, Event>> {
        self.last_seq = self.last_seq.max(rec.seq);
        let normalized = match crate::fx::normalize(
            &rec.event,
            self.cfg.currency,
            self.cfg.timezone,
            &self.fx,
        ) {
            Ok(ev) => ev,
            // The engine checks the rate before it stores an event; should a log hold
            // one without it, the event stays out rather than count in a wrong currency.
            Err(_) => return None,
        };
        if is_voidable(&normalized.body)
            && !self.voided.is_empty()
            && self.voided.contains(&normalized.event_id)
        {
            // Voided before it arrived (a CRM's undo can overtake the event): it counts
            // for nothing.
            return None;
        }
        Some(normalized)
    }

    /// For a partition that does not fold the admitted event `ev` in full
    /// ([`crate::partition`]): what every partition shares of it, a revenue event's
    /// `total` by day (the team and organisation curves learn from it, and a rep's
    /// move refiles it) and the void of one. Other events fold nothing here (an
    /// engine need not hand them over; [`State::admit`] only counts them).
    pub fn fold_shared(&mut self, rec: &Recorded, ev: &Event, target: Option<&Recorded>) {
        self.fold_with(rec, ev, target, Fold::Shared);
    }

    /// The second half of [`State::apply`]: folds the admitted event `ev` (recorded as
    /// `rec`; `target` as [`applicable_target`] gives it).
    pub fn fold(&mut self, rec: &Recorded, ev: &Event, target: Option<&Recorded>) -> Applied {
        self.fold_with(rec, ev, target, Fold::Full)
    }

    /// For a partition that joins a deal ([`crate::partition::Route::joined`]): folds
    /// one of the deal's earlier events, which it had folded only the shared part of
    /// ([`State::fold_shared`]) or nothing: everything else now. `ev` carries its
    /// amounts as they were converted when the event came (a rate set again since
    /// applies to later amounts only): the partition that holds the event hands it
    /// over so; the reporting amount remembered for a void stays the shared fold's.
    pub fn fold_joined(
        &mut self,
        rec: &Recorded,
        ev: &Event,
        target: Option<&Recorded>,
    ) -> Applied {
        // A deal's only revenue event is its win, whose bookings every partition
        // folded when it came.
        let fold = match ev.body {
            EventBody::DealWon(_) => Fold::Rest,
            _ => Fold::Full,
        };
        self.fold_with(rec, ev, target, fold)
    }

    fn fold_with(
        &mut self,
        rec: &Recorded,
        ev: &Event,
        target: Option<&Recorded>,
        fold: Fold,
    ) -> Applied {
        if fold == Fold::Shared
            && !(is_shared_revenue(&ev.body) || matches!(ev.body, EventBody::EventVoided(_)))
        {
            // Nothing else is shared between partitions.
            return Applied::default();
        }
        // The event's rep, interned once for what follows.
        let rep = ev.body.rep().map(|rep| (rep, self.ensure_rep(rep)));
        let tz = self.cfg.timezone;
        // Whether an org event moved a rep's days between teams: then every curve may
        // have moved.
        let mut history_moved = false;
        let mut applied = Applied::default();
        match &ev.body {
            EventBody::RepRegistered(r) => {
                let (sym, before) = self.team_line(&r.rep);
                self.register(r);
                history_moved = self.refile_bookings(sym, &before);
            }
            EventBody::RepReassigned(r) => {
                let (sym, before) = self.team_line(&r.rep);
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
                if let Some(team) = &r.team {
                    let team = self.names.intern(team);
                    let line = self
                        .rep_teams
                        .get_mut(&sym)
                        .expect("ensure_rep gives every rep a team line");
                    let at = line
                        .changes
                        .partition_point(|(m, _)| *m <= r.effective_month);
                    line.changes.insert(at, (r.effective_month, team));
                }
                history_moved = self.refile_bookings(sym, &before);
            }
            EventBody::RepDeparted(r) => self.rep_entry(&r.rep).departed = Some(r.effective_month),
            EventBody::PlanPublished(p) => {
                // A rep with a plan is a rep the alert rules look at, registered or not.
                for l in &p.lines {
                    self.ensure_rep(&l.rep);
                }
                let version = PlanVersion::of(rec, p, &mut self.buckets);
                self.plans.publish(version);
                self.stamps.all();
            }
            EventBody::PlanSubmitted(s) => {
                self.plans.submit(
                    &s.plan,
                    s.version,
                    plans::Review {
                        submitted_by: s.by.clone(),
                        method: s.method.clone(),
                        submitted_seq: rec.seq,
                        approved_by: None,
                        rejected: None,
                    },
                );
                self.stamps.all();
            }
            EventBody::PlanApproved(a) => {
                self.plans.approve(&a.plan, a.version, &a.by);
                self.stamps.all();
            }
            EventBody::PlanRejected(r) => {
                self.plans.reject(&r.plan, r.version, &r.by, &r.reason);
                self.stamps.all();
            }
            EventBody::CompPlanPublished(c) => {
                for a in &c.assignments {
                    if let Some(rep) = &a.rep {
                        self.ensure_rep(rep);
                    }
                }
                self.comp_plans
                    .entry(c.comp_plan.clone())
                    .or_default()
                    .push((rec.seq, c.clone()));
            }
            EventBody::ForecastSubmitted(f) => {
                let key = (f.rep.clone(), f.month, f.category);
                self.forecasts.entry(key).or_default().push(Forecast {
                    seq: rec.seq,
                    amount: f.amount.minor,
                });
            }
            EventBody::DealOpened(_) | EventBody::DealStageChanged(_) | EventBody::DealLost(_) => {
                self.add_deal_fact(ev, rec.seq)
            }
            EventBody::DealWon(w) => {
                if fold != Fold::Rest {
                    self.remember_converted(rec, &w.amount);
                }
                self.add_contributions(ev, 1, rep, fold);
                if fold != Fold::Shared {
                    self.add_deal_fact(ev, rec.seq);
                }
                for s in &w.splits {
                    self.ensure_rep(&s.rep);
                }
            }
            EventBody::ActivityLogged(_) => self.add_contributions(ev, 1, rep, fold),
            EventBody::Retention(_, r) => {
                self.remember_converted(rec, &r.amount);
                self.add_contributions(ev, 1, rep, fold);
            }
            EventBody::CustomerRated(r) => {
                self.ratings.entry(r.rep.clone()).or_default().push(Rating {
                    seq: rec.seq,
                    account: r.account.clone(),
                    month: ev.occurred_at.local_date(tz).month(),
                    scores: r.scores(),
                });
            }
            EventBody::EventVoided(v) => self.void(&v.voided_event_id, target, fold),
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
                    applied.acknowledged = true;
                }
            }
            EventBody::FxRateSet(r) => self.fx.set(r.currency, r.month, r.rate),
            EventBody::ClockTick => {
                // Time only moves forward: a late tick does not turn the clock back.
                self.now = Some(self.now.map_or(ev.occurred_at, |n| n.max(ev.occurred_at)));
            }
        }
        applied.history_moved = history_moved;
        applied
    }

    /// Adds the fact a deal event tells (event `seq`) to its deal, names interned:
    /// the one place an event becomes a deal fact.
    fn add_deal_fact(&mut self, ev: &Event, seq: u64) {
        let local = || ev.occurred_at.local_date(self.cfg.timezone);
        let (on, kind) = match &ev.body {
            EventBody::DealOpened(o) => {
                let opening = Opening {
                    rep: self.names.intern(&o.rep),
                    account: self.names.intern(&o.account),
                    customer_kind: o.customer_kind,
                    product: o.product.as_deref().map(|p| self.names.intern(p)),
                    region: o.region.as_deref().map(|r| self.names.intern(r)),
                    amount: o.amount.minor,
                    expected_close: o.expected_close,
                    probability: o.probability,
                };
                (local(), FactKind::Opened(opening))
            }
            EventBody::DealStageChanged(c) => {
                let change = StageChange {
                    stage: self.names.intern(&c.stage),
                    probability: c.probability,
                    amount: c.amount.map(|a| a.minor),
                    expected_close: c.expected_close,
                };
                (local(), FactKind::Stage(change))
            }
            EventBody::DealWon(w) => (
                w.closed_on,
                FactKind::Won {
                    amount: w.amount.minor,
                },
            ),
            EventBody::DealLost(_) => (local(), FactKind::Lost),
            _ => return,
        };
        if let Some(deal) = deal_of(&ev.body) {
            self.deals.add(deal, Fact { seq, on, kind });
        }
    }

    /// For a revenue event in another currency (`original` as the log holds it), the
    /// reporting amount it counted with, for a void of it.
    fn remember_converted(&mut self, rec: &Recorded, counted: &Money) {
        let original = match &rec.event.body {
            EventBody::DealWon(w) => w.amount.currency,
            EventBody::Retention(_, r) => r.amount.currency,
            _ => return,
        };
        if original != self.cfg.currency {
            self.converted.insert(rec.seq, counted.minor);
        }
    }

    /// A rep's sym and team line as they stand (the rep made sure of).
    fn team_line(&mut self, rep: &str) -> (Sym, TeamLine) {
        let sym = self.ensure_rep(rep);
        let line = self
            .rep_teams
            .get(&sym)
            .expect("ensure_rep gives every rep a team line")
            .clone();
        (sym, line)
    }

    /// Files a rep's bookings by day under the teams the rep's team line now says,
    /// where `before` said otherwise. Returns whether any moved.
    fn refile_bookings(&mut self, rep: Sym, before: &TeamLine) -> bool {
        let after = self
            .rep_teams
            .get(&rep)
            .expect("ensure_rep gives every rep a team line");
        let moved = self.bookings.refile(rep, |m| before.at(m), |m| after.at(m));
        if moved {
            self.stamps.all();
        }
        moved
    }

    /// Adds (`sign` 1) or removes (−1) an event's contributions to the actuals and
    /// its `total` to the bookings by day; with `Fold::Shared`, to the bookings only
    /// (a partition's share of another partition's revenue: [`State::fold_shared`]).
    /// `rep` is a name of the event already interned, if any: most contributions of
    /// an event are its own rep's (five for a deal won without splits).
    fn add_contributions<'e>(
        &mut self,
        ev: &'e Event,
        sign: i64,
        rep: Option<(&'e str, Sym)>,
        fold: Fold,
    ) {
        let tz = self.cfg.timezone;
        let mut last = rep;
        // The month last stamped (an event's contributions are mostly one month's).
        let mut stamped = None;
        each_contribution(ev, tz, |c| {
            if fold == Fold::Shared && c.bucket != BucketRef::Total {
                return;
            }
            let rep = match last {
                Some((name, sym)) if std::ptr::eq(name, c.rep) => sym,
                _ => {
                    let sym = self.names.intern(c.rep);
                    last = Some((c.rep, sym));
                    sym
                }
            };
            let bucket = self.buckets.intern(c.bucket);
            let delta = if sign < 0 {
                c.delta.wrapping_neg()
            } else {
                c.delta
            };
            if stamped != Some(c.month) {
                self.stamps.month(c.month);
                stamped = Some(c.month);
            }
            if fold != Fold::Shared {
                self.actuals.add(rep, c.month, bucket, delta, &self.buckets);
            }
            if c.bucket == BucketRef::Total && fold != Fold::Rest {
                // A split's rep may not be known yet (it is made sure of after its
                // deal): until registered, every rep is in team "unassigned".
                let team = match self.rep_teams.get(&rep) {
                    Some(line) => line.at(c.month),
                    None => self.names.intern(UNASSIGNED_TEAM),
                };
                self.bookings.add(DayDelta {
                    rep,
                    team,
                    month: c.month,
                    day: c.day,
                    delta,
                    booking: if c.delta > 0 { sign as i32 } else { 0 },
                });
            }
        });
    }

    /// The owner of a deal now, by name.
    pub fn deal_owner(&self, deal: &str) -> Option<String> {
        self.deals
            .owner(deal)
            .map(|s| self.names.name(s).to_owned())
    }

    /// Makes sure the org knows the rep (unregistered until a `rep_registered`).
    /// Returns the rep's sym.
    fn ensure_rep(&mut self, rep: &str) -> Sym {
        let sym = self.names.intern(rep);
        let i = sym.index();
        if self.rep_syms.len() <= i {
            self.rep_syms.resize(i + 1, false);
        }
        if !self.rep_syms[i] {
            self.rep_syms[i] = true;
            self.reps.insert(rep.to_owned(), Rep::unregistered(rep));
            let base = self.names.intern(UNASSIGNED_TEAM);
            self.rep_teams.insert(
                sym,
                TeamLine {
                    base,
                    changes: Vec::new(),
                },
            );
        }
        sym
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
        let sym = self.names.intern(&r.rep);
        let team = self.names.intern(&r.team);
        self.rep_teams
            .get_mut(&sym)
            .expect("ensure_rep gives every rep a team line")
            .base = team;
    }

    /// Removes exactly what the voided event contributed. Voiding an event that has not
    /// arrived yet makes it count for nothing when it does. Org, plan, void, ack and
    /// tick events cannot be voided (plans are revised by publishing a new version).
    ///
    /// `event` is the voided event as the log holds it, when it came before the void;
    /// it counted unless it was voided before (this id is then already in `voided`)
    /// or, in another currency, had no rate (then nothing was converted for it).
    /// With `Fold::Shared`, only a revenue event's bookings by day are undone (what a
    /// partition folded of another partition's revenue).
    fn void(&mut self, target: &str, event: Option<&Recorded>, fold: Fold) {
        if !self.voided.insert(target.to_owned()) {
            return;
        }
        let Some(t) = event else {
            return;
        };
        if fold == Fold::Shared && !is_shared_revenue(&t.event.body) {
            return;
        }
        match &t.event.body {
            EventBody::ActivityLogged(_) => self.add_contributions(&t.event, -1, None, fold),
            EventBody::DealWon(w) => {
                if let Some(counted) = self.counted(t, &w.amount) {
                    self.add_contributions(&counted, -1, None, fold);
                    if fold != Fold::Shared {
                        self.deals.remove(&w.deal, t.seq);
                    }
                }
            }
            EventBody::Retention(_, r) => {
                if let Some(counted) = self.counted(t, &r.amount) {
                    self.add_contributions(&counted, -1, None, fold);
                }
            }
            EventBody::DealOpened(d) => self.deals.remove(&d.deal, t.seq),
            EventBody::DealStageChanged(d) => self.deals.remove(&d.deal, t.seq),
            EventBody::DealLost(d) => self.deals.remove(&d.deal, t.seq),
            EventBody::CustomerRated(r) => {
                if let Some(list) = self.ratings.get_mut(&r.rep) {
                    list.retain(|x| x.seq != t.seq);
                }
            }
            EventBody::ForecastSubmitted(f) => {
                let key = (f.rep.clone(), f.month, f.category);
                if let Some(list) = self.forecasts.get_mut(&key) {
                    list.retain(|x| x.seq != t.seq);
                }
            }
            _ => {}
        }
    }

    /// A revenue event as it counted (`amount` is its amount as the log holds it):
    /// itself in the reporting currency, or with the amount it was converted to;
    /// `None` if, in another currency, it never counted.
    fn counted<'e>(
        &mut self,
        t: &'e Recorded,
        amount: &Money,
    ) -> Option<std::borrow::Cow<'e, Event>> {
        if amount.currency == self.cfg.currency {
            return Some(std::borrow::Cow::Borrowed(&t.event));
        }
        let minor = self.converted.remove(&t.seq)?;
        let mut ev = t.event.clone();
        let reporting = Money::new(minor, self.cfg.currency);
        match &mut ev.body {
            EventBody::DealWon(w) => w.amount = reporting,
            EventBody::Retention(_, r) => r.amount = reporting,
            _ => {}
        }
        Some(std::borrow::Cow::Owned(ev))
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

    /// The rep's record now: as of the current month, or (before the first tick) with
    /// every reassignment the log holds.
    pub fn rep_now(&self, rep: &str) -> RepInfo {
        self.rep_at(rep, self.month_now())
    }

    /// The month "now" is in: the current month, or (before the first tick) the last
    /// month there is, so every reassignment applies.
    fn month_now(&self) -> Month {
        let latest = Month::new(9999, 12).expect("9999-12 is a month");
        self.current_month().unwrap_or(latest)
    }

    /// A rep's team now, without copying the record; `None` for a rep the log does
    /// not know.
    pub fn team_now(&self, rep: &str) -> Option<&str> {
        self.reps.get(rep).map(|r| r.team_at(self.month_now()))
    }

    /// The teams the reps are in now, by name.
    pub fn teams_now(&self) -> std::collections::BTreeSet<String> {
        let now = self.month_now();
        let mut teams = std::collections::BTreeSet::new();
        for rep in self.reps.values() {
            let team = rep.team_at(now);
            if !teams.contains(team) {
                teams.insert(team.to_owned());
            }
        }
        teams
    }

    /// The teams of the reps whose manager is `manager` now: what a manager oversees
    /// besides the teams listed for them. One pass over the reps, nothing copied but
    /// the team names found.
    pub fn teams_managed_now(&self, manager: &str) -> std::collections::BTreeSet<String> {
        let now = self.month_now();
        let mut teams = std::collections::BTreeSet::new();
        for rep in self.reps.values() {
            if rep.manager_at(now) == manager {
                let team = rep.team_at(now);
                if !teams.contains(team) {
                    teams.insert(team.to_owned());
                }
            }
        }
        teams
    }

    /// The plan book, buckets by name.
    pub fn plans(&self) -> Plans<'_> {
        Plans {
            book: &self.plans,
            buckets: &self.buckets,
        }
    }

    /// The actual of one bucket of a rep's month.
    pub fn actual(&self, rep: &str, month: Month, bucket: &Bucket) -> i64 {
        self.month_actuals(rep, month)
            .and_then(|m| m.get(bucket))
            .copied()
            .unwrap_or(0)
    }

    /// The id `bucket` is kept under, if any plan line or actual has named it.
    pub(crate) fn bucket_id(&self, bucket: &Bucket) -> Option<names::BucketId> {
        self.buckets.get(bucket.borrowed())
    }

    /// The actual of one bucket (borrowed) of a rep's month.
    pub fn actual_of(&self, rep: &str, month: Month, bucket: BucketRef<'_>) -> i64 {
        let (Some(rep), Some(id)) = (self.names.get(rep), self.buckets.get(bucket)) else {
            return 0;
        };
        self.actuals
            .month(rep, month)
            .and_then(|cells| cells.iter().find(|(b, _)| *b == id))
            .map_or(0, |(_, v)| *v)
    }

    /// The non-zero actuals of a rep's month, by bucket.
    pub fn month_actuals(&self, rep: &str, month: Month) -> Option<MonthActuals<'_>> {
        let cells = self.actuals.month(self.names.get(rep)?, month)?;
        Some(ByBucket {
            cells,
            buckets: &self.buckets,
        })
    }

    /// All non-zero actuals, by rep and month, in that order.
    pub fn actuals(&self) -> impl Iterator<Item = ((&str, Month), MonthActuals<'_>)> + '_ {
        let mut all: Vec<((&str, Month), MonthActuals<'_>)> = self
            .actuals
            .iter()
            .map(|(rep, month, cells)| {
                let cells = ByBucket {
                    cells,
                    buckets: &self.buckets,
                };
                ((self.names.name(rep), month), cells)
            })
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
    }

    fn deal_at(&self, ix: u32) -> Deal<'_> {
        Deal {
            deals: &self.deals,
            names: &self.names,
            ix,
        }
    }

    /// Every deal's facts, in deal-id order.
    pub fn deals(&self) -> impl Iterator<Item = Deal<'_>> + '_ {
        let mut ixs: Vec<u32> = self.deals.with_facts().collect();
        ixs.sort_unstable_by(|a, b| self.deals.id(*a).cmp(self.deals.id(*b)));
        ixs.into_iter().map(|ix| self.deal_at(ix))
    }

    /// One deal's facts; `None` when no fact (left) names it.
    pub fn deal(&self, id: &str) -> Option<Deal<'_>> {
        self.deals
            .find(id)
            .filter(|&ix| self.deals.has_facts(ix))
            .map(|ix| self.deal_at(ix))
    }

    /// Every deal that has been opened, as it stands now, in deal-id order.
    pub fn deal_views(&self) -> impl Iterator<Item = DealView<'_>> + '_ {
        let mut ixs: Vec<u32> = self.deals.with_facts().collect();
        ixs.sort_unstable_by(|a, b| self.deals.id(*a).cmp(self.deals.id(*b)));
        ixs.into_iter()
            .filter_map(|ix| self.deals.view(ix, &self.names))
    }

    /// The rep's open deals, in deal-id order.
    pub fn open_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = DealView<'a>> + 'a {
        self.open_of(rep)
            .iter()
            .map(|o| self.deals.open_view(o, &self.names))
    }

    /// The rep's open deals as kept, in deal-id order.
    fn open_of(&self, rep: &str) -> &[deals::Open] {
        self.names
            .get(rep)
            .map_or(&[][..], |r| self.deals.open_of_rep(r))
    }

    /// [`State::open_deals`] as the pipeline rules read them ([`OpenLine`]), in the
    /// same order.
    pub fn open_lines<'a>(&'a self, rep: &str) -> impl Iterator<Item = OpenLine<'a>> + 'a {
        self.open_of(rep)
            .iter()
            .map(|o| self.deals.open_line(o, &self.names))
    }

    /// The rep's open deals expected to close in `month`, in deal-id order: the
    /// deals of `open_deals` whose `expected_close` is in the month, found without
    /// looking up the others.
    pub fn open_deals_closing<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<Item = DealView<'a>> + 'a {
        self.open_closing(rep, month)
            .map(|o| self.deals.open_view(o, &self.names))
    }

    /// The rep's open deals expected to close in `month`, as kept.
    fn open_closing(&self, rep: &str, month: Month) -> impl Iterator<Item = &deals::Open> + '_ {
        self.open_of(rep).iter().filter(move |o| o.close == month)
    }

    /// What each of the rep's open deals expected to close in `month` would add if it
    /// closed as it stands, and its probability ([`State::open_deals_closing`]
    /// without the ids and stages a forecast does not read).
    pub fn open_forecasts_closing<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<
        Item = (
            crate::contribution::Movement<'a>,
            Option<crate::event::Percent>,
        ),
    > + 'a {
        self.open_closing(rep, month)
            .map(|o| self.deals.open_forecast(o, &self.names))
    }

    /// Every deal the rep owns (open, won or lost), in deal-id order.
    pub fn rep_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = DealView<'a>> + 'a {
        let all = self
            .names
            .get(rep)
            .map_or(&[][..], |r| self.deals.of_rep(r));
        all.iter()
            .filter_map(|ix| self.deals.view(*ix, &self.names))
    }

    /// Reps that own at least one open deal, in order.
    pub fn reps_with_open_deals(&self) -> impl Iterator<Item = &str> + '_ {
        let mut reps: Vec<&str> = self
            .deals
            .reps_with_open()
            .map(|r| self.names.name(r))
            .collect();
        reps.sort_unstable();
        reps.into_iter()
    }

    /// Every comp plan's versions, with their seqs, in log order.
    pub fn comp_plans(&self) -> &BTreeMap<String, Vec<(u64, crate::event::CompPlanPublished)>> {
        &self.comp_plans
    }

    /// A rep's team in a month, as registered and moved.
    pub fn team_at(&self, rep: &str, month: Month) -> Option<String> {
        self.reps.get(rep).map(|r| r.at(month).team)
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

    /// A rep's actuals of a month as stored: (bucket id, sum) in bucket-name order.
    pub(crate) fn actual_cells(&self, rep: &str, month: Month) -> &[(names::BucketId, i64)] {
        self.names
            .get(rep)
            .and_then(|r| self.actuals.month(r, month))
            .unwrap_or(&[])
    }

    /// The interned buckets.
    pub(crate) fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// A team's name as the state knows it, if any rep's bookings were filed under it.
    pub(crate) fn team_sym(&self, team: &str) -> Option<Sym> {
        self.names.get(team)
    }

    /// A team's net `total` by day of a month.
    pub(crate) fn team_days(&self, team: Sym, month: Month) -> Option<&DayAmounts> {
        self.bookings.team_month(team, month)
    }

    /// The organisation's net `total` by day of a month.
    pub(crate) fn org_days(&self, month: Month) -> Option<&DayAmounts> {
        self.bookings.org_month(month)
    }

    /// A rep's `total` by day of a month, and its bookings.
    pub fn rep_bookings(&self, rep: &str, month: Month) -> Option<&RepMonth> {
        self.bookings.rep_month(self.names.get(rep)?, month)
    }

    /// The stamp of the actuals, bookings and plans of `months`
    /// ([`stamps`](self::stamps)): unchanged for as long as none of them changed.
    pub(crate) fn stamp_of(&self, months: impl Iterator<Item = Month>) -> u64 {
        self.stamps.of_months(months)
    }

    /// Whether an `event_voided` has named this id (whether or not it could undo it).
    pub fn is_voided(&self, event_id: &str) -> bool {
        self.voided.contains(event_id)
    }
}

/// The deal a deal event is about.
pub fn deal_of(body: &EventBody) -> Option<&str> {
    match body {
        EventBody::DealOpened(d) => Some(&d.deal),
        EventBody::DealStageChanged(d) => Some(&d.deal),
        EventBody::DealWon(d) => Some(&d.deal),
        EventBody::DealLost(d) => Some(&d.deal),
        _ => None,
    }
}

/// The average of `ratings` report cards whose scores (four each) sum to `total`, in
/// hundredths, cut toward zero (3.495 reads 3.49): the one rounding of a rating, so
/// the digest shows what `report_card_drop` judged.
pub fn score_hundredths(total: i64, ratings: i64) -> i64 {
    total * 100 / (4 * ratings)
}
