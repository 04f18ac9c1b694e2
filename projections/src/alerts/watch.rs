//! The alert book's fold: which reps and rules one event can move, read from the
//! state before and after the event, and the re-evaluation of those.
//!
//! It follows the facts' fold ([`crate::state::State::fold`]) and never feeds back
//! into it: [`before`] reads the state as it stood, [`Watch::after`] reads it as it
//! stands, evaluates the rules ([`super::rules`]) for the touched reps and reconciles
//! the book ([`super::book`]). Before the first `clock_tick` there is no "now" and no
//! alert: nothing is watched (a replay's long prefix costs nothing here).

use std::collections::BTreeMap;

use crate::event::{Event, EventBody, Recorded};
use crate::pacing::{CurveMode, CurveSource, Memo, Share};
use crate::partition::Owner;
use crate::state::{deal_of, DealStatus, State, UNASSIGNED_TEAM};
use crate::time::{alert_week, Month, Timestamp};

use super::book::AlertBook;
use super::config::Rule;
use super::rules::{findings_with, rules_moved_by, scope_moved_by, Scope};

/// Today's shares of the curves a revenue event in a learning month can move: each
/// of its reps' teams (in the event's month) and the organisation's.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Curves {
    teams: Vec<(String, Share)>,
    org: Option<Share>,
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

/// What an event may move, as the state stood before it.
#[derive(Clone, Debug)]
pub struct Watch {
    before: Touched,
    /// For a void: the deal whose owner after it must be looked at too.
    deal_after: Option<String>,
    /// For a revenue event in a learning month: the curves it can move.
    curves_before: Option<Curves>,
    /// For a change to an open deal: the month it was expected to close in.
    close_before: Option<Option<Month>>,
}

/// Reads what `ev` (admitted, as it counts) may move, before the facts' fold takes
/// it. `None` when it can move no alert: no "now" yet, or an event no rule reads
/// (a forecast, an acknowledgement).
pub fn before(
    state: &State,
    book: &AlertBook,
    ev: &Event,
    target: Option<&Recorded>,
) -> Option<Watch> {
    let live = (state.now().is_some() || matches!(ev.body, EventBody::ClockTick))
        && !rules_moved_by(&ev.body).is_empty();
    if !live {
        return None;
    }
    let (before, deal_after) = touched_before(state, book, ev, target);
    Some(Watch {
        before,
        deal_after,
        curves_before: learning_curves(state, ev, target),
        close_before: pipeline_month(state, ev),
    })
}

/// [`before`] for an event a partition folds only the shared part of
/// ([`crate::state::State::fold_shared`]): what it can move of this partition's
/// alerts is the curves of its reps, when it is revenue in a learning month.
pub fn before_shared(state: &State, ev: &Event, target: Option<&Recorded>) -> Option<Watch> {
    if state.now().is_none() || rules_moved_by(&ev.body).is_empty() {
        return None;
    }
    let curves_before = Some(learning_curves(state, ev, target)?);
    Some(Watch {
        before: Touched::None,
        deal_after: None,
        curves_before,
        close_before: None,
    })
}

impl Watch {
    /// After the facts' fold took `ev` (event `seq`; `history_moved` as it said):
    /// re-evaluates the rules the event may have moved for the reps it touched (of
    /// `owner`'s partition only, in a partitioned organisation).
    #[allow(clippy::too_many_arguments)]
    pub fn after(
        self,
        state: &State,
        book: &mut AlertBook,
        ev: &Event,
        target: Option<&Recorded>,
        history_moved: bool,
        seq: u64,
        owner: Option<Owner>,
        memo: &mut Memo,
    ) {
        let mut touched = self.before.union(touched_after(state, ev));
        if history_moved {
            // A rep moved between teams with their history: every curve may have.
            touched = Touched::All;
        } else if let Some(before) = self.curves_before {
            // The expected-to-date of every rep on a curve that moved (by a whole
            // percent) moved with it.
            if let Some(after) = learning_curves(state, ev, target) {
                touched = touched.union(reps_on_moved_curves(state, &before, &after));
            }
        }
        if let Some(rep) = self.deal_after.and_then(|d| state.deal_owner(&d)) {
            touched = touched.union(Touched::Reps(vec![rep]));
        }
        // A new day, alert week or plan looks at every rule of every rep.
        let scope = match touched {
            Touched::All => Scope::ALL,
            _ => {
                let mut scope = scope_moved_by(&ev.body);
                // A deal opened, moved or lost outside this month, before and after,
                // leaves this month's pipeline, and so `behind_pace`, as it was.
                let this_month = state.current_month();
                if let (Some(before), Some(after)) = (self.close_before, pipeline_month(state, ev))
                {
                    if before != this_month && after != this_month {
                        scope.rules = scope.rules.without(Rule::BehindPace);
                    }
                }
                scope
            }
        };
        evaluate(state, book, touched, scope, seq, owner, memo);
    }
}

/// For an opening, a stage change or a loss: `Some` of the month the deal is
/// expected to close in while it is open (`Some(None)` when it is not open);
/// `None` for any other event.
fn pipeline_month(state: &State, ev: &Event) -> Option<Option<Month>> {
    let deal = match &ev.body {
        EventBody::DealOpened(d) => &d.deal,
        EventBody::DealStageChanged(d) => &d.deal,
        EventBody::DealLost(d) => &d.deal,
        _ => return None,
    };
    Some(
        state
            .deal(deal)
            .and_then(|d| d.view())
            .filter(|v| v.status == DealStatus::Open)
            .map(|v| v.expected_close.month()),
    )
}

/// For a revenue event (or the void of one) dated in a month the current month's
/// pacing curve learns from (one of the completed months before "now"): the
/// curves it can move, today's share of each of its reps' teams and the
/// organisation's. `None` for any other event: it moves no curve.
fn learning_curves(state: &State, ev: &Event, target: Option<&Recorded>) -> Option<Curves> {
    let cfg = &state.config().pace;
    if cfg.curve == CurveMode::Linear {
        return None;
    }
    let ev = match &ev.body {
        EventBody::EventVoided(_) => &target?.event,
        _ => ev,
    };
    let (month, reps): (Month, Vec<&str>) = match &ev.body {
        EventBody::DealWon(w) if w.splits.is_empty() => (w.closed_on.month(), vec![&w.rep]),
        EventBody::DealWon(w) => (
            w.closed_on.month(),
            w.splits.iter().map(|s| s.rep.as_str()).collect(),
        ),
        EventBody::Retention(_, r) => (r.effective_on.month(), vec![&r.rep]),
        _ => return None,
    };
    let pace = state.pace()?;
    let history = cfg.history_months as i32;
    if month >= pace.month || month < pace.month.plus(-history) {
        return None;
    }
    let mut teams: Vec<(String, Share)> = Vec::new();
    for rep in reps {
        let team = state
            .reps()
            .get(rep)
            .map_or(UNASSIGNED_TEAM, |r| r.team_at(month));
        if !teams.iter().any(|(t, _)| t == team) {
            teams.push((team.to_owned(), state.pace_share(team, &pace).0));
        }
    }
    Some(Curves {
        teams,
        org: state.org_share(&pace).map(|(s, _)| s),
    })
}

/// The reps whose expected-to-date moved between two readings of the same curves:
/// those now in a team whose share moved, and, if the organisation's moved, those
/// whose team has too little history of its own and follows it.
fn reps_on_moved_curves(state: &State, before: &Curves, after: &Curves) -> Touched {
    let moved: Vec<&str> = before
        .teams
        .iter()
        .zip(&after.teams)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.as_str())
        .collect();
    let org_moved = before.org != after.org;
    if moved.is_empty() && !org_moved {
        return Touched::None;
    }
    if before.org.is_some() != after.org.is_some() {
        // The organisation's curve appeared or went: every team without enough
        // history of its own moved between it and the straight line.
        return Touched::All;
    }
    let Some(pace) = state.pace() else {
        return Touched::None;
    };
    let mut on_org: BTreeMap<&str, bool> = BTreeMap::new();
    let reps: Vec<String> = state
        .reps()
        .iter()
        .filter(|(_, r)| {
            let team = r.team_at(pace.month);
            moved.contains(&team)
                || (org_moved
                    && *on_org.entry(team).or_insert_with(|| {
                        matches!(state.pace_share(team, &pace).1, CurveSource::Org { .. })
                    }))
        })
        .map(|(name, _)| name.clone())
        .collect();
    Touched::Reps(reps)
}

/// The reps an event may change the alerts of, as the state stood before it; and
/// for a void, the deal whose owner after the void must be looked at too (voiding
/// an opening can hand the deal back to an earlier owner).
fn touched_before(
    state: &State,
    book: &AlertBook,
    ev: &Event,
    target: Option<&Recorded>,
) -> (Touched, Option<String>) {
    if let EventBody::EventVoided(v) = &ev.body {
        let Some(t) = target.filter(|_| !state.is_voided(&v.voided_event_id)) else {
            return (Touched::None, None);
        };
        let deal = deal_of(&t.event.body).map(str::to_owned);
        let mut reps: Vec<String> = t.event.body.rep().map(str::to_owned).into_iter().collect();
        if let EventBody::DealWon(w) = &t.event.body {
            reps.extend(w.splits.iter().map(|s| s.rep.clone()));
        }
        reps.extend(deal.as_deref().and_then(|d| state.deal_owner(d)));
        return (Touched::Reps(reps), deal);
    }
    let touched = match &ev.body {
        EventBody::PlanPublished(_)
        | EventBody::PlanSubmitted(_)
        | EventBody::PlanApproved(_)
        | EventBody::PlanRejected(_) => Touched::All,
        EventBody::ClockTick => {
            let tz = state.config().timezone;
            let new_day = |old: Timestamp| {
                let now = old.max(ev.occurred_at);
                now.local_date(tz) != old.local_date(tz)
                    || alert_week(now, tz) != alert_week(old, tz)
                    || book.earliest_act_by().is_some_and(|t| t < now)
            };
            match state.now() {
                None => Touched::All,
                Some(old) if new_day(old) => Touched::All,
                Some(_) => Touched::None,
            }
        }
        EventBody::DealOpened(o) => Touched::Reps(state.deal_owner(&o.deal).into_iter().collect()),
        EventBody::DealWon(w) => Touched::Reps(state.deal_owner(&w.deal).into_iter().collect()),
        _ => Touched::None,
    };
    (touched, None)
}

/// The reps an event may change the alerts of, as the state stands after it.
fn touched_after(state: &State, ev: &Event) -> Touched {
    let mut reps: Vec<String> = ev.body.rep().map(str::to_owned).into_iter().collect();
    match &ev.body {
        EventBody::DealStageChanged(c) => reps.extend(state.deal_owner(&c.deal)),
        EventBody::DealLost(l) => reps.extend(state.deal_owner(&l.deal)),
        EventBody::DealOpened(o) => reps.extend(state.deal_owner(&o.deal)),
        EventBody::DealWon(w) => {
            reps.extend(state.deal_owner(&w.deal));
            reps.extend(w.splits.iter().map(|s| s.rep.clone()));
        }
        _ => {}
    }
    Touched::Reps(reps)
}

/// Re-evaluates these alert rules for the touched reps, those of `owner`'s partition
/// when there is one (nothing before the first `clock_tick`: without "now" there is
/// no pace).
fn evaluate(
    state: &State,
    book: &mut AlertBook,
    touched: Touched,
    scope: Scope<'_>,
    seq: u64,
    owner: Option<Owner>,
    memo: &mut Memo,
) {
    let Some(now) = state.now() else {
        return;
    };
    if scope.rules.is_empty() {
        return;
    }
    let reps: Vec<String> = match touched {
        Touched::None => return,
        Touched::All => state
            .reps()
            .keys()
            .filter(|r| owner.is_none_or(|o| o.owns(r)))
            .cloned()
            .collect(),
        Touched::Reps(mut reps) => {
            if let Some(o) = owner {
                reps.retain(|r| o.owns(r));
            }
            reps.sort();
            reps.dedup();
            reps
        }
    };
    let cfg = state.config();
    let (_, week) = memo.today(now, cfg.timezone);
    for rep in reps {
        let found = findings_with(state, &rep, now, &cfg.alerts, scope, memo);
        book.reconcile(
            &rep,
            scope,
            found,
            now,
            week,
            seq,
            cfg.timezone,
            state.acks(),
        );
    }
}
