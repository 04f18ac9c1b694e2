//! How a rep sells, per month: win rate, average won deal, median sales cycle,
//! pipeline coverage of the remaining plan and activities per won deal. The figures
//! behind a `behind_pace` alert: is the rep short of deals, of deal size, of speed or
//! of effort?
//!
//! A deal counts in the month it was won or lost (its `closed_on` / the local date of
//! its `deal_lost`), for the rep who owns it. Coverage looks at open deals expected to
//! close in the month, against the month's total plan not yet booked.

use std::collections::BTreeMap;

use crate::bucket::Bucket;
use crate::money::{div_round_half_away, Ratio};
use crate::report::ReportQuery;
use crate::state::{DealStatus, State};
use crate::time::Month;

/// One rep's month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Productivity {
    pub rep: String,
    pub team: String,
    pub month: Month,
    pub won_deals: u32,
    pub lost_deals: u32,
    /// Won amount, minor units (the owner's deals, before any split).
    pub won_amount: i64,
    /// Open deals expected to close in the month, face value.
    pub open_pipeline: i64,
    /// Total plan − total actual for the month (never below zero).
    pub remaining_plan: i64,
    /// All activities logged in the month.
    pub activities: i64,
    /// Sales cycle (opened → won) of each won deal, in days, sorted.
    pub cycle_days: Vec<i32>,
}

impl Productivity {
    /// Won ÷ (won + lost); `None` with no closed deal.
    pub fn win_rate(&self) -> Option<Ratio> {
        Ratio::new(
            i64::from(self.won_deals),
            i64::from(self.won_deals + self.lost_deals),
        )
    }

    /// Won amount ÷ won deals, rounded half away from zero.
    pub fn average_won(&self) -> Option<i64> {
        (self.won_deals > 0).then(|| {
            div_round_half_away(i128::from(self.won_amount), i128::from(self.won_deals)) as i64
        })
    }

    /// The median sales cycle in half days (an even count averages the middle two),
    /// so that it stays an exact integer: 25 = 12.5 days.
    pub fn median_cycle_half_days(&self) -> Option<i64> {
        let n = self.cycle_days.len();
        if n == 0 {
            return None;
        }
        let mid = |i: usize| i64::from(self.cycle_days[i]);
        Some(if n % 2 == 1 {
            2 * mid(n / 2)
        } else {
            mid(n / 2 - 1) + mid(n / 2)
        })
    }

    /// Open pipeline ÷ remaining plan; `None` when nothing remains.
    pub fn coverage(&self) -> Option<Ratio> {
        (self.remaining_plan > 0).then_some(Ratio {
            num: self.open_pipeline,
            den: self.remaining_plan,
        })
    }

    /// Activities ÷ won deals; `None` with no won deal.
    pub fn activities_per_won(&self) -> Option<Ratio> {
        Ratio::new(self.activities, i64::from(self.won_deals))
    }
}

/// The productivity of every rep with a plan, a deal or an activity in `month`,
/// sorted by rep.
pub fn productivity(state: &State, month: Month, query: &ReportQuery) -> Vec<Productivity> {
    let mut by_rep: BTreeMap<String, Productivity> = BTreeMap::new();
    fn slot<'a>(
        by_rep: &'a mut BTreeMap<String, Productivity>,
        rep: &str,
        month: Month,
    ) -> &'a mut Productivity {
        by_rep
            .entry(rep.to_owned())
            .or_insert_with(|| Productivity {
                rep: rep.to_owned(),
                team: String::new(),
                month,
                won_deals: 0,
                lost_deals: 0,
                won_amount: 0,
                open_pipeline: 0,
                remaining_plan: 0,
                activities: 0,
                cycle_days: Vec::new(),
            })
    }
    // One rep, or one team: only their deals, actuals and plan lines are read, so the
    // cost is the team's, not the organisation's (a rep page asks for one rep).
    let only: Option<Vec<&str>> = match (&query.rep, &query.team) {
        (Some(r), _) => Some(vec![r.as_str()]),
        (None, Some(t)) => Some(
            state
                .reps()
                .iter()
                .filter(|(_, rec)| rec.team_at(month) == t)
                .map(|(id, _)| id.as_str())
                .collect(),
        ),
        (None, None) => None,
    };
    let deals: Box<dyn Iterator<Item = crate::state::DealView<'_>> + '_> = match &only {
        Some(reps) => Box::new(reps.iter().flat_map(|r| state.rep_deals(r))),
        None => Box::new(state.deal_views()),
    };
    for d in deals {
        match d.status {
            DealStatus::Open if d.expected_close.month() == month => {
                let p = slot(&mut by_rep, d.rep, month);
                p.open_pipeline = p.open_pipeline.saturating_add(d.amount.max(0));
            }
            DealStatus::Won if d.closed_on.is_some_and(|c| c.month() == month) => {
                let p = slot(&mut by_rep, d.rep, month);
                p.won_deals += 1;
                p.won_amount = p.won_amount.saturating_add(d.amount);
                if let Some(closed) = d.closed_on {
                    p.cycle_days.push(closed.days_since(d.opened_on).max(0));
                }
            }
            DealStatus::Lost if d.closed_on.is_some_and(|c| c.month() == month) => {
                slot(&mut by_rep, d.rep, month).lost_deals += 1;
            }
            _ => {}
        }
    }
    let mut activities_of = |rep: &str, buckets: &mut dyn Iterator<Item = (&Bucket, i64)>| {
        let activities: i64 = buckets
            .filter(|(b, _)| b.is_activity())
            .map(|(_, v)| v)
            .sum();
        if activities != 0 {
            slot(&mut by_rep, rep, month).activities = activities;
        }
    };
    match &only {
        Some(reps) => {
            for rep in reps {
                if let Some(cells) = state.month_actuals(rep, month) {
                    activities_of(rep, &mut cells.into_iter().map(|(b, v)| (b, *v)));
                }
            }
        }
        None => {
            for ((rep, m), buckets) in state.actuals() {
                if m == month {
                    activities_of(rep, &mut buckets.iter().map(|(b, v)| (b, *v)));
                }
            }
        }
    }
    match &only {
        Some(reps) => {
            for rep in reps {
                if state
                    .plans()
                    .rep_lines(rep, month)
                    .any(|(b, _)| *b == Bucket::Total)
                {
                    slot(&mut by_rep, rep, month);
                }
            }
        }
        None => {
            for (rep, bucket, _) in state.plans().lines(month) {
                if *bucket == Bucket::Total {
                    slot(&mut by_rep, rep, month);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (rep, mut p) in by_rep {
        p.team = state.rep_at(&rep, month).team;
        if query.rep.as_ref().is_some_and(|r| *r != rep)
            || query.team.as_ref().is_some_and(|t| *t != p.team)
        {
            continue;
        }
        let plan = state.plans().target(&rep, month, &Bucket::Total);
        let actual = state.actual(&rep, month, &Bucket::Total);
        p.remaining_plan = plan.saturating_sub(actual).max(0);
        p.cycle_days.sort_unstable();
        out.push(p);
    }
    out
}
