//! Deals: each deal's facts in log order, the view they describe (its status is
//! derived, independent of arrival order), and the index of deals by rep, kept in
//! step with the facts: every deal each rep owns, and its open deals with the month
//! each is expected to close in (how alerts read one rep's pipeline without looking
//! at every deal).
//!
//! Names in facts and views are interned ([`Sym`]); a fact is known by the seq of
//! the event that told it, which is how a void finds it. Readers see [`DealView`]s,
//! with names.

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

use super::names::{Names, Sym};
use crate::event::{CustomerKind, Percent};
use crate::time::{Date, Month};

/// Where a deal stands, derived from its facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

/// What one event said about a deal, and the date it took effect in the
/// organisation's zone (opened on, changed on, closed on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fact {
    pub(super) seq: u64,
    pub(super) on: Date,
    pub(super) kind: FactKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FactKind {
    Opened(Opening),
    Stage(StageChange),
    Won { amount: i64 },
    Lost,
}

/// A `deal_opened`, amounts in reporting minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Opening {
    pub(super) rep: Sym,
    pub(super) account: Sym,
    pub(super) customer_kind: CustomerKind,
    pub(super) product: Option<Sym>,
    pub(super) region: Option<Sym>,
    pub(super) amount: i64,
    pub(super) expected_close: Date,
    pub(super) probability: Option<Percent>,
}

/// A `deal_stage_changed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StageChange {
    pub(super) stage: Sym,
    pub(super) probability: Option<Percent>,
    pub(super) amount: Option<i64>,
    pub(super) expected_close: Option<Date>,
}

/// A deal as its facts describe it, names interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ViewCore {
    pub(super) rep: Sym,
    account: Sym,
    customer_kind: CustomerKind,
    product: Option<Sym>,
    region: Option<Sym>,
    amount: i64,
    expected_close: Date,
    probability: Option<Percent>,
    stage: Option<Sym>,
    opened_on: Date,
    status: DealStatus,
    closed_on: Option<Date>,
}

impl ViewCore {
    /// The view of these facts (in log order), or `None` when no opening is among
    /// them. Facts may arrive out of order (a CRM retries, a webhook overtakes
    /// another), so the view does not depend on it: the latest opening gives the
    /// deal's shape, stage changes then apply in log order, and the latest won or
    /// lost fact, if any, closes it. A closed deal stays closed unless that fact is
    /// voided.
    fn of<'f>(facts: impl DoubleEndedIterator<Item = &'f Fact> + Clone) -> Option<ViewCore> {
        let (o, opened_on) = facts.clone().rev().find_map(|f| match &f.kind {
            FactKind::Opened(o) => Some((o, f.on)),
            _ => None,
        })?;
        let mut v = ViewCore {
            rep: o.rep,
            account: o.account,
            customer_kind: o.customer_kind,
            product: o.product,
            region: o.region,
            amount: o.amount,
            expected_close: o.expected_close,
            probability: o.probability,
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

    /// One fact after the opening, in log order: a stage change moves the stage (and
    /// what it names of probability, amount, expected close); a win or a loss closes.
    /// An opening changes nothing here: it is the view's base.
    fn apply(&mut self, fact: &Fact) {
        match &fact.kind {
            FactKind::Opened(_) => {}
            FactKind::Stage(c) => {
                self.stage = Some(c.stage);
                if c.probability.is_some() {
                    self.probability = c.probability;
                }
                if let Some(a) = c.amount {
                    self.amount = a;
                }
                if let Some(d) = c.expected_close {
                    self.expected_close = d;
                }
            }
            FactKind::Won { amount } => {
                self.status = DealStatus::Won;
                self.amount = *amount;
                self.closed_on = Some(fact.on);
            }
            FactKind::Lost => {
                self.status = DealStatus::Lost;
                self.closed_on = Some(fact.on);
            }
        }
    }

    /// The month the deal is expected to close in, while it is open; `None` once it
    /// is won or lost. What places it in the open-deal index.
    fn open_closing(&self) -> Option<Month> {
        (self.status == DealStatus::Open).then(|| self.expected_close.month())
    }

    fn named<'s>(&self, deal: &'s str, names: &'s Names) -> DealView<'s> {
        DealView {
            deal,
            rep: names.name(self.rep),
            account: names.name(self.account),
            customer_kind: self.customer_kind,
            product: self.product.map(|s| names.name(s)),
            region: self.region.map(|s| names.name(s)),
            amount: self.amount,
            expected_close: self.expected_close,
            probability: self.probability,
            stage: self.stage.map(|s| names.name(s)),
            opened_on: self.opened_on,
            status: self.status,
            closed_on: self.closed_on,
        }
    }
}

/// A deal as its non-voided facts describe it, when a `deal_opened` is among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DealView<'s> {
    pub deal: &'s str,
    pub rep: &'s str,
    pub account: &'s str,
    pub customer_kind: CustomerKind,
    pub product: Option<&'s str>,
    pub region: Option<&'s str>,
    /// Minor units of the reporting currency.
    pub amount: i64,
    pub expected_close: Date,
    pub probability: Option<Percent>,
    pub stage: Option<&'s str>,
    pub opened_on: Date,
    pub status: DealStatus,
    /// The date it was won or lost.
    pub closed_on: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    id: Box<str>,
    /// In log order; empty once every fact was voided.
    facts: Vec<Fact>,
    /// The view of `facts`, kept in step with them.
    view: Option<ViewCore>,
}

/// One rep's deals, each list in deal-id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RepDeals {
    all: Vec<u32>,
    /// The open ones, with the month each is expected to close in.
    open: Vec<(u32, Month)>,
}

/// Every deal, and the index by rep.
#[derive(Clone, Default)]
pub(super) struct Deals {
    entries: Vec<Entry>,
    /// Indexes into `entries`, hashed by deal id.
    by_id: HashTable<u32>,
    by_rep: FxHashMap<Sym, RepDeals>,
}

impl PartialEq for Deals {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.by_rep == other.by_rep
    }
}

impl Eq for Deals {}

impl std::fmt::Debug for Deals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deals")
            .field("entries", &self.entries)
            .field("by_rep", &self.by_rep)
            .finish()
    }
}

fn hash_id(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

impl Deals {
    /// The index of deal `id`, if any fact ever named it.
    pub(super) fn find(&self, id: &str) -> Option<u32> {
        let entries = &self.entries;
        self.by_id
            .find(hash_id(id), |&i| &*entries[i as usize].id == id)
            .copied()
    }

    fn find_or_add(&mut self, id: &str) -> u32 {
        if let Some(i) = self.find(id) {
            return i;
        }
        let i = u32::try_from(self.entries.len()).expect("fewer than 4 billion deals");
        self.entries.push(Entry {
            id: id.into(),
            facts: Vec::new(),
            view: None,
        });
        let entries = &self.entries;
        self.by_id
            .insert_unique(hash_id(id), i, |&j| hash_id(&entries[j as usize].id));
        i
    }

    /// Appends a fact to deal `id` and brings the index up to date.
    pub(super) fn add(&mut self, id: &str, fact: Fact) {
        let i = self.find_or_add(id);
        let opening = matches!(fact.kind, FactKind::Opened(_));
        let e = &mut self.entries[i as usize];
        // Exactly the room for one more: a deal has two or three facts, and the
        // default growth (to four at once) would leave most of a deal's facts empty.
        e.facts.reserve_exact(1);
        match (opening, &mut e.view) {
            // A fact that is not an opening, appended to an opened deal, changes its
            // view exactly as the last step of `ViewCore::of` would: in place.
            (true, _) | (false, None) => {
                e.facts.push(fact);
                self.refresh(i);
            }
            (false, Some(view)) => {
                let before = view.open_closing();
                view.apply(&fact);
                let after = view.open_closing();
                let rep = view.rep;
                e.facts.push(fact);
                // Only a change between open and closed, or of an open deal's close
                // month, changes the index (the rep stays).
                if before != after {
                    self.set_open(rep, i, after);
                }
            }
        }
    }

    /// Removes the fact told by event `seq` from deal `id`.
    pub(super) fn remove(&mut self, id: &str, seq: u64) {
        if let Some(i) = self.find(id) {
            self.entries[i as usize].facts.retain(|f| f.seq != seq);
            self.refresh(i);
        }
    }

    /// The deal's owner now: the rep of its view.
    pub(super) fn owner(&self, id: &str) -> Option<Sym> {
        let i = self.find(id)?;
        self.entries[i as usize].view.map(|v| v.rep)
    }

    /// Recomputes the view of deal `i` from its facts and moves it in the index.
    fn refresh(&mut self, i: u32) {
        let e = &self.entries[i as usize];
        let new = ViewCore::of(e.facts.iter());
        let old = e.view;
        match (old, new) {
            // The common case (a stage or amount change): same rep, the index moves
            // only if the status or close month did.
            (Some(o), Some(n)) if o.rep == n.rep => {
                if o.open_closing() != n.open_closing() {
                    self.set_open(n.rep, i, n.open_closing());
                }
            }
            _ => {
                if let Some(o) = old {
                    self.set_open(o.rep, i, None);
                    if let Some(rd) = self.by_rep.get_mut(&o.rep) {
                        rd.all.retain(|&j| j != i);
                    }
                    self.forget_if_empty(o.rep);
                }
                if let Some(n) = new {
                    let at = self.position(n.rep, i, |rd| &rd.all, |&j| j);
                    let rd = self.by_rep.entry(n.rep).or_default();
                    if let Err(at) = at {
                        rd.all.insert(at, i);
                    }
                    self.set_open(n.rep, i, n.open_closing());
                }
            }
        }
        self.entries[i as usize].view = new;
    }

    /// Where deal `i` is (`Ok`) or would go (`Err`) in one of `rep`'s lists, which
    /// are in deal-id order.
    fn position<T>(
        &self,
        rep: Sym,
        i: u32,
        list: impl Fn(&RepDeals) -> &Vec<T>,
        ix: impl Fn(&T) -> u32,
    ) -> Result<usize, usize> {
        let Some(rd) = self.by_rep.get(&rep) else {
            return Err(0);
        };
        let id = &self.entries[i as usize].id;
        list(rd).binary_search_by(|t| self.entries[ix(t) as usize].id.cmp(id))
    }

    /// Records in the index that `rep`'s deal `i` is open and expected to close in
    /// `close`, or (`None`) that it is not open.
    fn set_open(&mut self, rep: Sym, i: u32, close: Option<Month>) {
        let at = self.position(rep, i, |rd| &rd.open, |(j, _)| *j);
        let rd = self.by_rep.entry(rep).or_default();
        match (at, close) {
            (Ok(at), Some(close)) => rd.open[at].1 = close,
            (Err(at), Some(close)) => rd.open.insert(at, (i, close)),
            (Ok(at), None) => {
                rd.open.remove(at);
            }
            (Err(_), None) => {}
        }
        self.forget_if_empty(rep);
    }

    fn forget_if_empty(&mut self, rep: Sym) {
        if self
            .by_rep
            .get(&rep)
            .is_some_and(|rd| rd.all.is_empty() && rd.open.is_empty())
        {
            self.by_rep.remove(&rep);
        }
    }

    // ---- read side ----

    pub(super) fn id(&self, i: u32) -> &str {
        &self.entries[i as usize].id
    }

    /// Every deal with at least one fact, in no particular order.
    pub(super) fn with_facts(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.entries.len() as u32).filter(|&i| self.has_facts(i))
    }

    /// Whether deal `i` has a fact left (every fact of it may have been voided).
    pub(super) fn has_facts(&self, i: u32) -> bool {
        !self.entries[i as usize].facts.is_empty()
    }

    /// Every deal with a view (an opening among its facts), in no particular order.
    pub(super) fn with_view(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.entries.len() as u32).filter(|&i| self.entries[i as usize].view.is_some())
    }

    /// The kept view of deal `i`, with names.
    pub(super) fn view<'s>(&'s self, i: u32, names: &'s Names) -> Option<DealView<'s>> {
        let e = &self.entries[i as usize];
        e.view.map(|v| v.named(&e.id, names))
    }

    /// Every deal of `rep`, in deal-id order.
    pub(super) fn of_rep(&self, rep: Sym) -> &[u32] {
        self.by_rep.get(&rep).map_or(&[], |rd| rd.all.as_slice())
    }

    /// The open deals of `rep` with their close months, in deal-id order.
    pub(super) fn open_of_rep(&self, rep: Sym) -> &[(u32, Month)] {
        self.by_rep.get(&rep).map_or(&[], |rd| rd.open.as_slice())
    }

    /// The reps with at least one open deal, in no particular order.
    pub(super) fn reps_with_open(&self) -> impl Iterator<Item = Sym> + '_ {
        self.by_rep
            .iter()
            .filter(|(_, rd)| !rd.open.is_empty())
            .map(|(rep, _)| *rep)
    }
}

/// One deal and its facts, as readers see it.
#[derive(Clone, Copy)]
pub struct Deal<'s> {
    pub(super) deals: &'s Deals,
    pub(super) names: &'s Names,
    pub(super) ix: u32,
}

impl<'s> Deal<'s> {
    pub fn id(&self) -> &'s str {
        self.deals.id(self.ix)
    }

    fn facts(&self) -> &'s [Fact] {
        &self.deals.entries[self.ix as usize].facts
    }

    /// The deal's current shape, computed from its facts (not the kept view), or
    /// `None` when the log has no (non-voided) opening.
    pub fn view(&self) -> Option<DealView<'s>> {
        ViewCore::of(self.facts().iter()).map(|v| v.named(self.id(), self.names))
    }

    /// The deal as it stood at the end of `day`: only facts dated on or before it
    /// count (opened on, changed on, closed on). The digest compares weeks with it.
    pub fn view_through(&self, day: Date) -> Option<DealView<'s>> {
        let kept: Vec<&Fact> = self.facts().iter().filter(|f| f.on <= day).collect();
        ViewCore::of(kept.into_iter()).map(|v| v.named(self.id(), self.names))
    }
}
