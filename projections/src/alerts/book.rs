//! The alert book: every alert ever raised, and the life of each one.
//!
//! After each event the fold hands the book the findings of the reps the event
//! touched (every rep on a new day, a new alert week or a plan), and the book
//! reconciles them with the alerts that stand:
//! - a finding with no standing alert raises one, with an id hashed from rule, rep,
//!   bucket, month and alert week; if that id was resolved earlier the same week, it
//!   reopens instead (the id, and so `act_by`, stay the same);
//! - a finding for a standing alert updates its figures; a severity above the highest
//!   it reached escalates it (and is said again, unless it was acknowledged);
//! - a standing alert with no finding resolves itself;
//! - an event hands over the findings of only the rules it can change
//!   ([`super::rules::rules_moved_by`]); the rep's alerts of other rules stand as
//!   they are, as their findings would be the same;
//! - a standing alert of an earlier week whose `act_by` has passed and whose finding
//!   still holds is superseded by the new week's alert (a new id, a new `act_by`).
//!
//! The alert week is the ISO week of `act_by`: an alert raised on Friday afternoon or
//! at the weekend belongs to the next week, the one it is due in. So a condition that
//! first shows on Saturday and is still there on Monday is one alert, not two.
//!
//! What changed with the last event is kept in `changes` for whoever publishes them.

use std::collections::BTreeMap;
use std::hash::Hasher;

use chrono_tz::Tz;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::state::Ack;
pub use crate::time::alert_week;
use crate::time::{IsoWeek, Timestamp};

use super::config::{AlertConfig, Rule, Severity};
use super::rules::{Finding, FindingKey, Scope};

/// How an alert stopped standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closure {
    /// Its condition cleared.
    Resolved,
    /// A new week's alert took over its condition.
    Superseded,
}

/// One alert and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub rep: String,
    /// The ISO week of `act_by`.
    pub week: IsoWeek,
    /// The latest finding: its figures are current while the alert stands.
    pub finding: Finding,
    /// The highest severity the alert has reached.
    pub severity: Severity,
    pub raised_at: Timestamp,
    pub raised_seq: u64,
    pub act_by: Timestamp,
    /// When the alert last escalated.
    pub escalated_at: Option<Timestamp>,
    /// When and how it stopped standing; `None` while it stands.
    pub closed: Option<(Timestamp, Closure)>,
    /// Raise order across the book (0, 1, 2...): the order alerts are listed in.
    pub order: u64,
}

impl Alert {
    pub fn rule(&self) -> Rule {
        self.finding.rule
    }

    /// Open or acknowledged: its condition holds.
    pub fn is_standing(&self) -> bool {
        self.closed.is_none()
    }
}

/// A change to an alert that its subscribers should hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Raised,
    Escalated,
    Reopened,
    Resolved,
    Superseded,
    Acknowledged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Raised => "raised",
            Change::Escalated => "escalated",
            Change::Reopened => "reopened",
            Change::Resolved => "resolved",
            Change::Superseded => "superseded",
            Change::Acknowledged => "acknowledged",
        }
    }
}

/// Every alert, in raise order, and which stand for each rep.
///
/// Each id is held once, in its alert: the book refers to an alert by its place in
/// raise order, and finds an id's place through a 64-bit hash of it (a hash that an
/// earlier id already has is held whole beside the hashes, so two ids are never
/// taken for one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertBook {
    /// Every alert in raise order: `Alert::order` is its place here.
    alerts: Vec<Alert>,
    /// The hash of an id → the place of the first alert with that hash.
    by_hash: FxHashMap<u64, u32>,
    /// Ids whose hash an earlier alert's id has: their places.
    shared: BTreeMap<String, u32>,
    /// The standing alert of each rep for each finding key, by place.
    standing: BTreeMap<String, BTreeMap<FindingKey, u32>>,
    /// What the last event changed, in the order it happened.
    changes: Vec<(String, Change)>,
}

/// The key an id is found by (deterministic, so two books that folded the same
/// events are equal).
fn id_hash(id: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

/// How alerts rank for focus, best first: rear-view rules after all others, then
/// higher severity (a month that will very likely be missed before a risk to
/// watch), more money at stake, the broader bucket, the earlier raised.
pub fn rank_key(
    a: &Alert,
) -> (
    bool,
    std::cmp::Reverse<Severity>,
    std::cmp::Reverse<i64>,
    u8,
    u64,
) {
    (
        a.rule().is_rear_view(),
        std::cmp::Reverse(a.severity),
        std::cmp::Reverse(a.finding.money_at_stake),
        a.finding.breadth_rank(),
        a.order,
    )
}

/// The deterministic id of an alert: the same rule, rep, bucket, month and week give
/// the same id, in every process and every rebuild.
pub fn alert_id(key: &FindingKey, rep: &str, week: IsoWeek) -> String {
    let (rule, bucket, month) = key;
    let bucket = bucket.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut h = Sha256::new();
    for part in [
        rule.as_str(),
        rep,
        &bucket,
        &month.to_string(),
        &week.to_string(),
    ] {
        h.update(part.as_bytes());
        // A separator that no id can contain keeps ("a", "bc") apart from ("ab", "c").
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("al-{hex}")
}

impl AlertBook {
    /// Forgets the changes of the previous event.
    pub fn begin_event(&mut self) {
        self.changes.clear();
    }

    /// What the last event changed: (alert id, change), in order.
    pub fn changes(&self) -> &[(String, Change)] {
        &self.changes
    }

    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.place(id).map(|i| &self.alerts[i as usize])
    }

    /// The place of alert `id` in raise order.
    fn place(&self, id: &str) -> Option<u32> {
        let i = *self.by_hash.get(&id_hash(id))?;
        if self.alerts[i as usize].id == id {
            return Some(i);
        }
        self.shared.get(id).copied()
    }

    /// The alert at place `i` (a place the book handed out).
    fn at(&self, i: u32) -> &Alert {
        &self.alerts[i as usize]
    }

    /// Every alert in raise order.
    pub fn iter(&self) -> impl Iterator<Item = &Alert> + '_ {
        self.alerts.iter()
    }

    /// The standing alerts of `reps` (every rep's with `None`), in raise order: what
    /// a listing of open or acknowledged alerts reads, without walking the closed
    /// ones.
    pub fn standing_of(&self, reps: Option<&[&str]>) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = match reps {
            Some(reps) => reps
                .iter()
                .filter_map(|r| self.standing.get(*r))
                .flat_map(|ids| ids.values())
                .map(|i| self.at(*i))
                .collect(),
            None => self
                .standing
                .values()
                .flat_map(|ids| ids.values())
                .map(|i| self.at(*i))
                .collect(),
        };
        out.sort_unstable_by_key(|a| a.order);
        out
    }

    /// The earliest `act_by` of a standing alert: when it passes, the book must look
    /// again even if nothing else happened.
    pub fn earliest_act_by(&self) -> Option<Timestamp> {
        self.standing
            .values()
            .flat_map(|m| m.values())
            .map(|i| self.at(*i).act_by)
            .min()
    }

    /// Records that an acknowledgement arrived for `id`.
    pub fn acknowledged(&mut self, id: &str) {
        if self.place(id).is_some() {
            self.changes.push((id.to_owned(), Change::Acknowledged));
        }
    }

    /// Reconciles one rep's standing alerts in this scope (these rules, on one bucket
    /// if the scope names one) with the rep's findings in it at `now`; the rep's other
    /// alerts stand as they are.
    #[allow(clippy::too_many_arguments)]
    pub fn reconcile(
        &mut self,
        rep: &str,
        scope: Scope<'_>,
        findings: Vec<Finding>,
        now: Timestamp,
        week: IsoWeek,
        seq: u64,
        tz: Tz,
        acks: &BTreeMap<String, Ack>,
    ) {
        // The rep's map is taken out (left empty in place) while the book changes, and
        // its alerts out of scope stay in it untouched.
        let mut after = match self.standing.get_mut(rep) {
            Some(standing) => std::mem::take(standing),
            None if findings.is_empty() => return,
            None => BTreeMap::new(),
        };
        let mut before: BTreeMap<FindingKey, u32> = if scope.is_all() {
            std::mem::take(&mut after)
        } else {
            let in_scope: Vec<FindingKey> = after
                .keys()
                .filter(|k| scope.covers(k.0, k.1.as_ref()))
                .cloned()
                .collect();
            in_scope
                .into_iter()
                .filter_map(|k| after.remove_entry(&k))
                .collect()
        };
        for finding in findings {
            let key = finding.key();
            let place = match before.remove(&key) {
                Some(i) => {
                    let a = &mut self.alerts[i as usize];
                    if a.week == week || now <= a.act_by {
                        let escalated = finding.severity > a.severity;
                        a.finding = finding;
                        if escalated {
                            a.severity = a.finding.severity;
                            a.escalated_at = Some(now);
                            if !acks.contains_key(&a.id) {
                                self.changes.push((a.id.clone(), Change::Escalated));
                            }
                        }
                        i
                    } else {
                        a.closed = Some((now, Closure::Superseded));
                        self.changes.push((a.id.clone(), Change::Superseded));
                        self.raise(rep, key.clone(), finding, week, now, seq, tz, acks)
                    }
                }
                None => self.raise(rep, key.clone(), finding, week, now, seq, tz, acks),
            };
            after.insert(key, place);
        }
        for i in before.into_values() {
            let a = &mut self.alerts[i as usize];
            a.closed = Some((now, Closure::Resolved));
            self.changes.push((a.id.clone(), Change::Resolved));
        }
        match (self.standing.get_mut(rep), after.is_empty()) {
            (Some(_), true) => {
                self.standing.remove(rep);
            }
            (Some(standing), false) => *standing = after,
            (None, true) => {}
            (None, false) => {
                self.standing.insert(rep.to_owned(), after);
            }
        }
    }

    /// Raises the week's alert for a finding, or reopens it if it was resolved earlier
    /// in the week. Returns its place.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        rep: &str,
        key: FindingKey,
        finding: Finding,
        week: IsoWeek,
        now: Timestamp,
        seq: u64,
        tz: Tz,
        acks: &BTreeMap<String, Ack>,
    ) -> u32 {
        let id = alert_id(&key, rep, week);
        if let Some(i) = self.place(&id) {
            let a = &mut self.alerts[i as usize];
            // Resolved earlier this week and back again: the same alert, reopened. An
            // acknowledged alert is not raised again this week.
            let escalated = finding.severity > a.severity;
            if escalated {
                a.severity = finding.severity;
                a.escalated_at = Some(now);
            }
            a.finding = finding;
            a.closed = None;
            if !acks.contains_key(&id) {
                self.changes.push((id, Change::Reopened));
            }
            return i;
        }
        let place = u32::try_from(self.alerts.len()).expect("fewer than 2^32 alerts");
        match self.by_hash.entry(id_hash(&id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(place);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.shared.insert(id.clone(), place);
            }
        }
        self.changes.push((id.clone(), Change::Raised));
        self.alerts.push(Alert {
            id,
            rep: rep.to_owned(),
            week,
            severity: finding.severity,
            finding,
            raised_at: now,
            raised_seq: seq,
            act_by: now.act_by(tz),
            escalated_at: None,
            closed: None,
            order: u64::from(place),
        });
        place
    }

    /// The ids of the standing alerts that are `focus`: per rep, at most
    /// `max_focus_per_rep`, ranked by [`rank_key`] (rear-view rules after all others,
    /// then higher severity, more money at stake, the broader bucket, the earlier
    /// raised). The rest are `watch`.
    pub fn focus(&self, cfg: &AlertConfig) -> std::collections::BTreeSet<String> {
        self.focus_of(self.standing.keys().map(String::as_str), cfg)
    }

    /// [`AlertBook::focus`] for these reps only: what a change to their alerts needs,
    /// without ranking the whole organisation's.
    pub fn focus_of<'a>(
        &self,
        reps: impl IntoIterator<Item = &'a str>,
        cfg: &AlertConfig,
    ) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for ids in reps.into_iter().filter_map(|rep| self.standing.get(rep)) {
            let mut ranked: Vec<&Alert> = ids.values().map(|i| self.at(*i)).collect();
            ranked.sort_by_key(|a| rank_key(a));
            out.extend(
                ranked
                    .into_iter()
                    .take(cfg.max_focus_per_rep as usize)
                    .map(|a| a.id.clone()),
            );
        }
        out
    }
}
