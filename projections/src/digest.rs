//! The manager's weekly digest: for each rep of a team (or of a manager) in an ISO
//! week, the focus items with their suggested action and `act_by`, the watch items,
//! pace per main bucket, how the pipeline moved during the week, the report-card
//! trend, and one line: the reason to talk to this rep this week. Reps with nothing
//! wrong are listed as on track, with their numbers.
//!
//! The digest reads the state as it stands (the latest `clock_tick`); the week picks
//! which alerts belong to it (those due that week, and earlier ones still standing)
//! and the days the pipeline change covers (Monday to Sunday, or to today).

use std::collections::BTreeSet;

use crate::alerts::{alert_views, rank_key, AlertQuery, AlertView, Status, StatusFilter};
use crate::bucket::Bucket;
use crate::model::Model;
use crate::money::group_thousands;
use crate::report::{report, Pace, ReportQuery, ReportRow};
use crate::state::{DealStatus, State};
use crate::time::{Date, IsoWeek, Month, Timestamp};

/// Whose digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Team(String),
    Manager(String),
}

/// A count of deals and their amount (minor units).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deals {
    pub count: u32,
    pub amount: i64,
}

impl Deals {
    fn add(&mut self, amount: i64) {
        self.count += 1;
        self.amount = self.amount.saturating_add(amount);
    }
}

/// How a rep's pipeline moved during the week.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineChange {
    pub opened: Deals,
    pub won: Deals,
    pub lost: Deals,
    /// Open deals whose expected close moved from this month (or earlier) to a later
    /// month during the week, at their amount before the move.
    pub moved_out: Deals,
}

/// Average rating (hundredths of a point) and count, for one month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rating {
    pub score: i64,
    pub ratings: u32,
}

/// One rep's part of the digest.
#[derive(Clone, Debug)]
pub struct RepDigest<'a> {
    pub rep: String,
    pub name: String,
    pub team: String,
    pub manager: String,
    pub focus: Vec<AlertView<'a>>,
    pub watch: Vec<AlertView<'a>>,
    /// Alerts of the week that resolved themselves.
    pub resolved: u32,
    /// This month's `total`, `new_customer` and `retention` rows.
    pub pace: Vec<ReportRow<'a>>,
    pub pipeline: PipelineChange,
    pub rating_this_month: Option<Rating>,
    pub rating_last_month: Option<Rating>,
    pub reason: String,
}

impl RepDigest<'_> {
    pub fn on_track(&self) -> bool {
        self.focus.is_empty() && self.watch.is_empty()
    }
}

/// The digest of one audience for one week.
#[derive(Clone, Debug)]
pub struct Digest<'a> {
    pub audience: Audience,
    pub week: IsoWeek,
    /// "Now": the latest clock_tick.
    pub as_of: Timestamp,
    pub month: Month,
    pub reps: Vec<RepDigest<'a>>,
}

/// The digest for `audience` in `week`; `None` before the first `clock_tick`.
pub fn digest<'a>(state: &'a Model, audience: &Audience, week: IsoWeek) -> Option<Digest<'a>> {
    let now = state.now()?;
    let tz = state.config().timezone;
    let today = now.local_date(tz);
    let month = today.month();
    let monday = week.monday();
    let last_day = monday.add_days(6).min(today);
    let (team, manager) = match audience {
        Audience::Team(t) => (Some(t.clone()), None),
        Audience::Manager(m) => (None, Some(m.clone())),
    };
    let mut reps: BTreeSet<String> = BTreeSet::new();
    for (id, rep) in state.reps() {
        if !rep.registered || rep.departed.is_some_and(|d| d <= month) {
            continue;
        }
        let info = rep.at(month);
        if team.as_ref().is_none_or(|t| *t == info.team)
            && manager.as_ref().is_none_or(|m| *m == info.manager)
        {
            reps.insert(id.clone());
        }
    }
    let alerts = alert_views(
        state,
        &AlertQuery {
            status: StatusFilter::All,
            team,
            manager,
            rep: None,
        },
    );
    let mut out = Vec::new();
    for rep in reps {
        let info = state.rep_at(&rep, month);
        let mut focus = Vec::new();
        let mut watch = Vec::new();
        let mut resolved = 0;
        for v in alerts.iter().filter(|v| v.alert.rep == rep) {
            let a = v.alert;
            let standing = matches!(v.status, Status::Open | Status::Acknowledged);
            if standing && a.week <= week {
                if v.focus {
                    focus.push(v.clone());
                } else {
                    watch.push(v.clone());
                }
            } else if a.week == week && v.status == Status::Resolved {
                resolved += 1;
            }
        }
        focus.sort_by_key(|v| rank_key(v.alert));
        watch.sort_by_key(|v| rank_key(v.alert));
        let pace: Vec<ReportRow> = report(
            state,
            month,
            &ReportQuery {
                rep: Some(rep.clone()),
                ..ReportQuery::default()
            },
        )
        .into_iter()
        .filter(|r| r.bucket.is_main())
        .collect();
        let rating = |m: Month| {
            let list: Vec<_> = state
                .ratings(&rep)
                .iter()
                .filter(|r| r.month == m)
                .collect();
            let n = list.len() as i64;
            (n > 0).then(|| {
                let sum: i64 = list.iter().flat_map(|r| r.scores).map(i64::from).sum();
                Rating {
                    score: crate::state::score_hundredths(sum, n),
                    ratings: n as u32,
                }
            })
        };
        let mut d = RepDigest {
            name: info.name.clone(),
            team: info.team.clone(),
            manager: info.manager.clone(),
            pipeline: pipeline_change(state, &rep, monday, last_day),
            rating_this_month: rating(month),
            rating_last_month: rating(month.plus(-1)),
            rep,
            focus,
            watch,
            resolved,
            pace,
            reason: String::new(),
        };
        d.reason = reason(&d, state, month);
        out.push(d);
    }
    Some(Digest {
        audience: audience.clone(),
        week,
        as_of: now,
        month,
        reps: out,
    })
}

/// How the rep's deals moved from `first` to `last` (inclusive).
fn pipeline_change(state: &State, rep: &str, first: Date, last: Date) -> PipelineChange {
    let mut c = PipelineChange::default();
    let before_day = first.add_days(-1);
    for view in state.rep_deals(rep) {
        let Some(deal) = state.deal(view.deal) else {
            continue;
        };
        let Some(after) = deal.view_through(last) else {
            continue;
        };
        if (first..=last).contains(&after.opened_on) {
            c.opened.add(after.amount);
        }
        if after.closed_on.is_some_and(|d| (first..=last).contains(&d)) {
            match after.status {
                DealStatus::Won => c.won.add(after.amount),
                DealStatus::Lost => c.lost.add(after.amount),
                DealStatus::Open => {}
            }
        }
        if let Some(before) = deal.view_through(before_day) {
            let was = before.expected_close.month();
            if before.status == DealStatus::Open
                && after.status == DealStatus::Open
                && was <= last.month()
                && after.expected_close.month() > was
            {
                c.moved_out.add(before.amount);
            }
        }
    }
    c
}

/// The one line a manager reads first.
fn reason(d: &RepDigest<'_>, state: &State, month: Month) -> String {
    let cur = state.config().currency;
    let money = |minor: i64| {
        format!(
            "{} {}",
            group_thousands(&cur.format_minor(minor)),
            cur.code()
        )
    };
    if let Some(top) = d.focus.first() {
        let a = top.alert;
        let more = d.focus.len() - 1;
        let tail = if more > 0 {
            format!(
                " (and {more} more focus item{})",
                if more == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        let stake = if a.finding.money_at_stake > 0 {
            format!(", {} at stake", money(a.finding.money_at_stake))
        } else {
            String::new()
        };
        return format!(
            "{}{stake}. {}{tail}",
            a.rule().label(),
            a.finding.suggested_action
        );
    }
    if let Some(top) = d.watch.first() {
        return format!(
            "Nothing urgent; keep an eye on {}: {}",
            top.alert.rule().label().to_lowercase(),
            top.alert.finding.message
        );
    }
    let Some(r) = d
        .pace
        .iter()
        .find(|r| *r.bucket == Bucket::Total && r.plan > 0)
    else {
        return format!(
            "Nothing flagged, but there is no plan for {month}: agree one with finance."
        );
    };
    let booked = format!("{} of {} booked", money(r.actual), money(r.plan));
    let min_days = state.config().alerts.behind_pace.min_working_days;
    match (state.pace(), r.projection) {
        (Some(p), Some(run_rate)) if p.days_worked >= min_days => {
            let projected = Pace::projected(Some(run_rate), r.forecast).unwrap_or(run_rate);
            format!(
                "On track: {booked}, heading for {}; recognise it and ask what would add more.",
                money(projected)
            )
        }
        (Some(_), _) => {
            format!("Too early in {month} to judge pace: {booked}; nothing flagged yet.")
        }
        (None, _) => format!("Nothing flagged: {booked}."),
    }
}
