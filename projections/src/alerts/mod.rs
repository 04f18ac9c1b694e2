//! Variance alerts: the brief's rules, the life of an alert (raised, escalated,
//! resolved, superseded by the next week's), the focus limit, and the read-side view
//! every front end lists alerts through.
//!
//! Alerts are the fold after the facts' (`Model::apply`, `watch`): it evaluates the
//! rules for the reps an event touched (all reps on each new day, alert week or plan) and reconciles the
//! book. Time comes only from `clock_tick` events, so a rebuild from the log raises
//! the same alerts, in the same order, with the same ids and the same `act_by`.
//!
//! - `config`: rules, severities and their settings, with the brief's defaults.
//! - `rules`: the conditions, their figures, money at stake and suggested actions.
//! - `book`: alert ids, weeks, the state machine and the focus ranking.
//! - `watch`: which reps and rules an event moves, and their re-evaluation.
//! - `backtest`: how often each rule was right about how the month ended.

pub mod backtest;
pub mod book;
pub mod config;
pub mod rules;
pub mod watch;

pub use book::{alert_id, alert_week, rank_key, Alert, AlertBook, Change, Closure};
pub use config::{AlertConfig, Rule, Rules, Severity};
pub use rules::{Figures, Finding};

use crate::model::Model;
use crate::state::Ack;

/// Where an alert stands, for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Open,
    Acknowledged,
    Resolved,
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
            Status::Superseded => "superseded",
        }
    }
}

/// Which alerts a listing shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Standing and not acknowledged.
    #[default]
    Open,
    /// Standing and acknowledged.
    Acknowledged,
    /// No longer standing: resolved, or superseded by the next week's alert.
    Resolved,
    All,
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(StatusFilter::Open),
            "acknowledged" => Some(StatusFilter::Acknowledged),
            "resolved" => Some(StatusFilter::Resolved),
            "all" => Some(StatusFilter::All),
            _ => None,
        }
    }

    /// Whether an alert of status `s` is listed.
    pub fn admits(self, s: Status) -> bool {
        match self {
            StatusFilter::Open => s == Status::Open,
            StatusFilter::Acknowledged => s == Status::Acknowledged,
            StatusFilter::Resolved => matches!(s, Status::Resolved | Status::Superseded),
            StatusFilter::All => true,
        }
    }
}

/// What a listing covers.
#[derive(Clone, Debug, Default)]
pub struct AlertQuery {
    pub status: StatusFilter,
    pub team: Option<String>,
    pub manager: Option<String>,
    pub rep: Option<String>,
}

/// An alert as a manager reads it: the alert, its status, focus, and the rep's team
/// and manager as of now.
#[derive(Clone, Debug)]
pub struct AlertView<'a> {
    pub alert: &'a Alert,
    pub status: Status,
    /// Standing and among the rep's top `max_focus_per_rep`.
    pub focus: bool,
    pub team: String,
    pub manager: String,
    pub ack: Option<&'a Ack>,
}

/// The alerts a query selects, in raise order.
pub fn alert_views<'a>(state: &'a Model, query: &AlertQuery) -> Vec<AlertView<'a>> {
    let book = state.alert_book();
    // The reps the query can select (a superset: the views are filtered below as
    // before): only their alerts are read and ranked, so a team's listing costs the
    // team's alerts, not the organisation's history.
    let reps: Option<Vec<&str>> = match (&query.rep, state.current_month()) {
        (Some(r), _) => Some(vec![r.as_str()]),
        (None, Some(m)) if query.team.is_some() || query.manager.is_some() => Some(
            state
                .reps()
                .iter()
                .filter(|(_, rec)| {
                    query.team.as_ref().is_none_or(|t| rec.team_at(m) == t)
                        && query
                            .manager
                            .as_ref()
                            .is_none_or(|mg| rec.manager_at(m) == mg)
                })
                .map(|(id, _)| id.as_str())
                .collect(),
        ),
        _ => None,
    };
    let cfg = &state.config().alerts;
    let focus = match &reps {
        Some(r) => book.focus_of(r.iter().copied(), cfg),
        None => book.focus(cfg),
    };
    // Open and acknowledged alerts stand: the closed history is not walked for them.
    let alerts: Vec<&'a Alert> = match query.status {
        StatusFilter::Open | StatusFilter::Acknowledged => book.standing_of(reps.as_deref()),
        StatusFilter::Resolved | StatusFilter::All => match &reps {
            Some(r) => {
                let r: std::collections::HashSet<&str> = r.iter().copied().collect();
                book.iter().filter(|a| r.contains(a.rep.as_str())).collect()
            }
            None => book.iter().collect(),
        },
    };
    alerts
        .into_iter()
        .filter(|a| query.rep.as_ref().is_none_or(|r| *r == a.rep))
        .map(|a| view(state, a, focus.contains(&a.id)))
        .filter(|v| {
            query.status.admits(v.status)
                && query.team.as_ref().is_none_or(|t| *t == v.team)
                && query.manager.as_ref().is_none_or(|m| *m == v.manager)
        })
        .collect()
}

/// One alert as a manager reads it, by id; `focus` is the book's current focus set
/// (`AlertBook::focus`), computed once for many lookups.
pub fn alert_view<'a>(
    state: &'a Model,
    id: &str,
    focus: &std::collections::BTreeSet<String>,
) -> Option<AlertView<'a>> {
    let a = state.alert_book().get(id)?;
    Some(view(state, a, focus.contains(id)))
}

/// Where alert `a` stands, given the acknowledgement the log holds for it, if any.
pub fn status(a: &Alert, ack: Option<&Ack>) -> Status {
    match (a.closed, ack) {
        (Some((_, Closure::Resolved)), _) => Status::Resolved,
        (Some((_, Closure::Superseded)), _) => Status::Superseded,
        (None, Some(_)) => Status::Acknowledged,
        (None, None) => Status::Open,
    }
}

fn view<'a>(state: &'a Model, a: &'a Alert, focus: bool) -> AlertView<'a> {
    let ack = state.acks().get(&a.id);
    let status = status(a, ack);
    let info = state.rep_at(&a.rep, state.current_month().unwrap_or(a.finding.month));
    AlertView {
        alert: a,
        status,
        focus,
        team: info.team,
        manager: info.manager,
        ack,
    }
}
