//! Deals: each deal's facts in log order, the view they describe (its status is
//! derived, independent of arrival order), and the index of deals by rep, kept in
//! step with the facts: every deal each rep owns, and its open deals with the month
//! each is expected to close in (how alerts read one rep's pipeline without looking
//! at every deal).
//!
//! Names in facts and views are interned ([`Sym`]); a fact is known by the seq of
//! the event that told it, which is how a void finds it. Readers see [`DealView`]s,
//! with names.
//!
//! A large organisation has about a million deals (10 000 reps), so a deal costs
//! little to keep: its id lives in one string of every id, its facts are packed
//! (varints, a dozen bytes each) in one arena as a chain, each fact's chunk starting
//! with the offset of the deal's next one, and its view is not kept but computed
//! from the facts when it is read: a deal has a handful of facts, and decoding them
//! takes tens of nanoseconds. A voided fact is unlinked from its chain; its bytes
//! stay in the arena (voids are rare).

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

use super::names::{Names, Sym};
use super::varint::{read_i64, read_u64, write_i64, write_u64};
use crate::contribution::Movement;
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fact {
    pub(super) seq: u64,
    pub(super) on: Date,
    pub(super) kind: FactKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    fn of(facts: impl Iterator<Item = Fact> + Clone) -> Option<ViewCore> {
        let (o, opened_on) = facts
            .clone()
            .filter_map(|f| match f.kind {
                FactKind::Opened(o) => Some((o, f.on)),
                _ => None,
            })
            .last()?;
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
            v.apply(&fact);
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

    fn is_open(&self) -> bool {
        self.status == DealStatus::Open
    }

    /// What the deal would add if it closed as it stands: its movement on its
    /// expected close, and its probability. No id, no stage: a forecast reads
    /// neither, and fetching them is a cache miss a deal.
    fn forecast<'s>(&self, names: &'s Names) -> (Movement<'s>, Option<Percent>) {
        let movement = Movement {
            rep: names.name(self.rep),
            on: self.expected_close,
            account: names.name(self.account),
            customer_kind: self.customer_kind,
            product: self.product.map(|s| names.name(s)),
            region: self.region.map(|s| names.name(s)),
            amount: self.amount,
        };
        (movement, self.probability)
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

/// An open deal as the pipeline rules read it ([`crate::state::State::open_lines`]):
/// the fields of its [`DealView`] they use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenLine<'s> {
    /// Minor units of the reporting currency.
    pub amount: i64,
    pub customer_kind: CustomerKind,
    pub product: Option<&'s str>,
    pub expected_close: Date,
}

/// A rep's list of deals up to this long is searched for a deal's index one by one
/// before it is searched by id.
const SCAN_LIST_MAX: usize = 64;

/// "No fact": the end of a chain, or a deal whose facts were all voided.
const NONE: u32 = u32::MAX;

/// A deal as stored: where its id starts in [`Deals::ids`] (it ends where the next
/// deal's starts), the offsets of its first and last fact in [`Deals::facts`], and
/// how many facts its chain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    id_at: u32,
    head: u32,
    tail: u32,
    facts: u32,
}

/// A deal with at least this many facts keeps its view in [`Deals::long_views`]:
/// decoding its chain for every new fact would make a deal that a CRM updates
/// thousands of times cost the square of that.
const LONG_CHAIN_FACTS: u32 = 16;

/// One rep's deals, each list in deal-id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RepDeals {
    all: Vec<u32>,
    /// The open ones, with their views: what reports and alerts read on every query
    /// and every deal event, kept rather than decoded each time.
    open: Vec<Open>,
}

/// An open deal in the index by rep: its view, and the month it is expected to
/// close in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Open {
    pub(super) ix: u32,
    pub(super) close: Month,
    view: ViewCore,
}

/// Every deal, and the index by rep.
#[derive(Clone, Default)]
pub(super) struct Deals {
    entries: Vec<Entry>,
    /// Every deal's id, one after the other, in the order deals first appeared.
    ids: String,
    /// Every fact, packed: a chunk is the offset of the deal's next fact (4 bytes,
    /// little-endian, [`NONE`] at the end of the chain), then the fact ([`encode`]).
    facts: Vec<u8>,
    /// Indexes into `entries`, hashed by deal id.
    by_id: HashTable<u32>,
    by_rep: FxHashMap<Sym, RepDeals>,
    /// The view of every deal with [`LONG_CHAIN_FACTS`] facts or more.
    long_views: FxHashMap<u32, Option<ViewCore>>,
}

/// Same deals (ids in the same order), same facts in the same order, same index:
/// where the bytes lie in the arenas does not count.
impl PartialEq for Deals {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && (0..self.entries.len() as u32)
                .all(|i| self.id(i) == other.id(i) && self.chain(i).eq(other.chain(i)))
            && self.by_rep == other.by_rep
    }
}

impl Eq for Deals {}

impl std::fmt::Debug for Deals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deals")
            .field(
                "entries",
                &(0..self.entries.len() as u32)
                    .map(|i| (self.id(i), self.chain(i).collect::<Vec<_>>()))
                    .collect::<Vec<_>>(),
            )
            .field("by_rep", &self.by_rep)
            .finish()
    }
}

fn hash_id(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

/// An offset into one of the arenas: they stay under 4 GiB (some 200 million
/// facts), far beyond what the rest of the state could hold.
fn offset(len: usize) -> u32 {
    u32::try_from(len)
        .ok()
        .filter(|&o| o != NONE)
        .expect("a deal arena under 4 GiB")
}

const OPENED: u8 = 0;
const STAGE: u8 = 1;
const WON: u8 = 2;
const LOST: u8 = 3;

/// Stage change flags: which optional figures follow.
const HAS_AMOUNT: u8 = 1;
const HAS_CLOSE: u8 = 2;

fn write_date(out: &mut Vec<u8>, d: Date) {
    write_i64(out, i64::from(d.days_from_ce()));
}

fn read_date(bytes: &[u8]) -> (Date, &[u8]) {
    let (days, rest) = read_i64(bytes);
    let days = i32::try_from(days).expect("a packed date was an i32");
    (Date::from_days_from_ce(days), rest)
}

fn write_sym(out: &mut Vec<u8>, s: Option<Sym>) {
    write_u64(out, u64::from(s.map_or(0, Sym::packed)));
}

fn read_sym(bytes: &[u8]) -> (Option<Sym>, &[u8]) {
    let (n, rest) = read_u64(bytes);
    let n = u32::try_from(n).expect("a packed sym was a u32");
    (Sym::unpacked(n), rest)
}

fn write_percent(out: &mut Vec<u8>, p: Option<Percent>) {
    write_u64(out, p.map_or(0, |p| u64::from(p.hundredths()) + 1));
}

fn read_percent(bytes: &[u8]) -> (Option<Percent>, &[u8]) {
    let (n, rest) = read_u64(bytes);
    let p = n.checked_sub(1).map(|h| {
        u16::try_from(h)
            .ok()
            .and_then(Percent::from_hundredths)
            .expect("a packed percent was a Percent")
    });
    (p, rest)
}

/// Appends `fact`, packed: its seq, its date, a tag, then the figures of its kind.
fn encode(fact: &Fact, out: &mut Vec<u8>) {
    write_u64(out, fact.seq);
    write_date(out, fact.on);
    match &fact.kind {
        FactKind::Opened(o) => {
            out.push(OPENED);
            write_sym(out, Some(o.rep));
            write_sym(out, Some(o.account));
            out.push(match o.customer_kind {
                CustomerKind::New => 0,
                CustomerKind::Existing => 1,
            });
            write_sym(out, o.product);
            write_sym(out, o.region);
            write_i64(out, o.amount);
            write_date(out, o.expected_close);
            write_percent(out, o.probability);
        }
        FactKind::Stage(c) => {
            out.push(STAGE);
            write_sym(out, Some(c.stage));
            write_percent(out, c.probability);
            let flags = if c.amount.is_some() { HAS_AMOUNT } else { 0 }
                | if c.expected_close.is_some() {
                    HAS_CLOSE
                } else {
                    0
                };
            out.push(flags);
            if let Some(a) = c.amount {
                write_i64(out, a);
            }
            if let Some(d) = c.expected_close {
                write_date(out, d);
            }
        }
        FactKind::Won { amount } => {
            out.push(WON);
            write_i64(out, *amount);
        }
        FactKind::Lost => out.push(LOST),
    }
}

/// The fact [`encode`] packed at the start of `bytes`.
fn decode(bytes: &[u8]) -> Fact {
    let (seq, b) = read_u64(bytes);
    let (on, b) = read_date(b);
    let (&tag, b) = b.split_first().expect("a packed fact has a tag");
    let kind = match tag {
        OPENED => {
            let (rep, b) = read_sym(b);
            let (account, b) = read_sym(b);
            let (&kind, b) = b.split_first().expect("a packed opening has a kind");
            let (product, b) = read_sym(b);
            let (region, b) = read_sym(b);
            let (amount, b) = read_i64(b);
            let (expected_close, b) = read_date(b);
            let (probability, _) = read_percent(b);
            FactKind::Opened(Opening {
                rep: rep.expect("an opening has a rep"),
                account: account.expect("an opening has an account"),
                customer_kind: if kind == 0 {
                    CustomerKind::New
                } else {
                    CustomerKind::Existing
                },
                product,
                region,
                amount,
                expected_close,
                probability,
            })
        }
        STAGE => {
            let (stage, b) = read_sym(b);
            let (probability, b) = read_percent(b);
            let (&flags, mut b) = b.split_first().expect("a packed stage change has flags");
            let mut amount = None;
            if flags & HAS_AMOUNT != 0 {
                let (a, rest) = read_i64(b);
                amount = Some(a);
                b = rest;
            }
            let expected_close = (flags & HAS_CLOSE != 0).then(|| read_date(b).0);
            FactKind::Stage(StageChange {
                stage: stage.expect("a stage change names its stage"),
                probability,
                amount,
                expected_close,
            })
        }
        WON => FactKind::Won {
            amount: read_i64(b).0,
        },
        LOST => FactKind::Lost,
        _ => unreachable!("encode writes one of four tags, not {tag}"),
    };
    Fact { seq, on, kind }
}

/// A deal's facts in log order, decoded from its chain.
#[derive(Clone)]
struct Chain<'d> {
    facts: &'d [u8],
    at: u32,
}

impl Chain<'_> {
    /// The offset of the fact after the one at `at`.
    fn next_of(facts: &[u8], at: u32) -> u32 {
        let at = at as usize;
        let bytes = facts[at..at + 4]
            .try_into()
            .expect("a chunk starts with 4 bytes");
        u32::from_le_bytes(bytes)
    }
}

impl Iterator for Chain<'_> {
    type Item = Fact;

    fn next(&mut self) -> Option<Fact> {
        if self.at == NONE {
            return None;
        }
        let here = self.at as usize;
        self.at = Chain::next_of(self.facts, self.at);
        Some(decode(&self.facts[here + 4..]))
    }
}

impl Deals {
    /// The index of deal `id`, if any fact ever named it.
    pub(super) fn find(&self, id: &str) -> Option<u32> {
        self.by_id.find(hash_id(id), |&i| self.id(i) == id).copied()
    }

    fn find_or_add(&mut self, id: &str) -> u32 {
        if let Some(i) = self.find(id) {
            return i;
        }
        let i = u32::try_from(self.entries.len()).expect("fewer than 4 billion deals");
        self.entries.push(Entry {
            id_at: offset(self.ids.len()),
            head: NONE,
            tail: NONE,
            facts: 0,
        });
        self.ids.push_str(id);
        let Deals {
            entries,
            ids,
            by_id,
            ..
        } = self;
        by_id.insert_unique(hash_id(id), i, |&j| hash_id(id_in(entries, ids, j)));
        i
    }

    /// Appends a fact to deal `id` and brings the index up to date.
    pub(super) fn add(&mut self, id: &str, fact: Fact) {
        let i = self.find_or_add(id);
        let old = self.core(i);
        self.push(i, &fact);
        let new = match old {
            // A fact that is not an opening, appended to an opened deal, changes its
            // view exactly as the last step of `ViewCore::of` would: in place.
            Some(mut v) if !matches!(fact.kind, FactKind::Opened(_)) => {
                v.apply(&fact);
                Some(v)
            }
            _ => self.core_decoded(i),
        };
        self.keep_if_long(i, new);
        self.reindex(i, old, new);
    }

    /// Keeps `view` as deal `i`'s when its chain is long, and forgets a kept one
    /// when it is not (any more).
    fn keep_if_long(&mut self, i: u32, view: Option<ViewCore>) {
        if self.entries[i as usize].facts >= LONG_CHAIN_FACTS {
            self.long_views.insert(i, view);
        } else if !self.long_views.is_empty() {
            // Only a void takes a chain below the bound; most states have no long
            // chain at all, and every deal event passes here.
            self.long_views.remove(&i);
        }
    }

    /// Packs `fact` at the end of the arena and links it at the end of deal `i`'s chain.
    fn push(&mut self, i: u32, fact: &Fact) {
        let at = offset(self.facts.len());
        self.facts.extend_from_slice(&NONE.to_le_bytes());
        encode(fact, &mut self.facts);
        let e = &mut self.entries[i as usize];
        match e.tail {
            NONE => e.head = at,
            tail => set_next(&mut self.facts, tail, at),
        }
        e.tail = at;
        e.facts += 1;
    }

    /// Removes the fact told by event `seq` from deal `id`.
    pub(super) fn remove(&mut self, id: &str, seq: u64) {
        let Some(i) = self.find(id) else {
            return;
        };
        let old = self.core(i);
        let mut e = self.entries[i as usize];
        let (mut prev, mut at) = (NONE, e.head);
        while at != NONE {
            let next = Chain::next_of(&self.facts, at);
            let (fact_seq, _) = read_u64(&self.facts[at as usize + 4..]);
            if fact_seq == seq {
                match prev {
                    NONE => e.head = next,
                    prev => set_next(&mut self.facts, prev, next),
                }
                if e.tail == at {
                    e.tail = prev;
                }
                e.facts -= 1;
            } else {
                prev = at;
            }
            at = next;
        }
        self.entries[i as usize] = e;
        let new = self.core_decoded(i);
        self.keep_if_long(i, new);
        self.reindex(i, old, new);
    }

    /// The deal's owner now: the rep of its view.
    pub(super) fn owner(&self, id: &str) -> Option<Sym> {
        self.core(self.find(id)?).map(|v| v.rep)
    }

    /// Moves deal `i` in the index from where view `old` put it to where `new` does.
    fn reindex(&mut self, i: u32, old: Option<ViewCore>, new: Option<ViewCore>) {
        match (old, new) {
            // The common case (a stage or amount change): same rep; the deal's place
            // in the open index changes, or its view there, unless it was and stays
            // closed.
            (Some(o), Some(n)) if o.rep == n.rep => {
                if o.is_open() || n.is_open() {
                    self.set_open(n.rep, i, Some(n));
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
                    self.set_open(n.rep, i, Some(n));
                }
            }
        }
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
        let list = list(rd);
        // Most lists are short (a rep's open deals): comparing 4-byte indexes beats
        // comparing ids, which are elsewhere in memory. Where a deal that is not there
        // would go takes the ids.
        if list.len() <= SCAN_LIST_MAX {
            if let Some(at) = list.iter().position(|t| ix(t) == i) {
                return Ok(at);
            }
        }
        let id = self.id(i);
        list.binary_search_by(|t| self.id(ix(t)).cmp(id))
    }

    /// Records in the index that `rep`'s deal `i` is open with `view`, or that it is
    /// not open (`None`, or a view of a closed deal).
    fn set_open(&mut self, rep: Sym, i: u32, view: Option<ViewCore>) {
        let at = self.position(rep, i, |rd| &rd.open, |o| o.ix);
        let rd = self.by_rep.entry(rep).or_default();
        let open =
            view.and_then(|view| view.open_closing().map(|close| Open { ix: i, close, view }));
        match (at, open) {
            (Ok(at), Some(open)) => rd.open[at] = open,
            (Err(at), Some(open)) => rd.open.insert(at, open),
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
        id_in(&self.entries, &self.ids, i)
    }

    /// Deal `i`'s facts, in log order.
    fn chain(&self, i: u32) -> Chain<'_> {
        Chain {
            facts: &self.facts,
            at: self.entries[i as usize].head,
        }
    }

    /// The view of deal `i`'s facts, names interned: kept for a long chain, else
    /// decoded.
    fn core(&self, i: u32) -> Option<ViewCore> {
        match self.long_views.get(&i) {
            Some(view) => *view,
            None => self.core_decoded(i),
        }
    }

    fn core_decoded(&self, i: u32) -> Option<ViewCore> {
        ViewCore::of(self.chain(i))
    }

    /// Every deal with at least one fact, in no particular order.
    pub(super) fn with_facts(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.entries.len() as u32).filter(|&i| self.has_facts(i))
    }

    /// Whether deal `i` has a fact left (every fact of it may have been voided).
    pub(super) fn has_facts(&self, i: u32) -> bool {
        self.entries[i as usize].head != NONE
    }

    /// The view of deal `i`, with names.
    pub(super) fn view<'s>(&'s self, i: u32, names: &'s Names) -> Option<DealView<'s>> {
        self.core(i).map(|v| v.named(self.id(i), names))
    }

    /// Every deal of `rep`, in deal-id order.
    pub(super) fn of_rep(&self, rep: Sym) -> &[u32] {
        self.by_rep.get(&rep).map_or(&[], |rd| rd.all.as_slice())
    }

    /// The open deals of `rep` with their close months, in deal-id order.
    pub(super) fn open_of_rep(&self, rep: Sym) -> &[Open] {
        self.by_rep.get(&rep).map_or(&[], |rd| rd.open.as_slice())
    }

    /// The kept view of an open deal, with names.
    pub(super) fn open_view<'s>(&'s self, open: &Open, names: &'s Names) -> DealView<'s> {
        open.view.named(self.id(open.ix), names)
    }

    /// What the pipeline rules read of an open deal, without its id and the names
    /// they do not read.
    pub(super) fn open_line<'s>(&self, open: &Open, names: &'s Names) -> OpenLine<'s> {
        let v = &open.view;
        OpenLine {
            amount: v.amount,
            customer_kind: v.customer_kind,
            product: v.product.map(|s| names.name(s)),
            expected_close: v.expected_close,
        }
    }

    /// [`ViewCore::forecast`] of an open deal.
    pub(super) fn open_forecast<'s>(
        &self,
        open: &Open,
        names: &'s Names,
    ) -> (Movement<'s>, Option<Percent>) {
        open.view.forecast(names)
    }

    /// The reps with at least one open deal, in no particular order.
    pub(super) fn reps_with_open(&self) -> impl Iterator<Item = Sym> + '_ {
        self.by_rep
            .iter()
            .filter(|(_, rd)| !rd.open.is_empty())
            .map(|(rep, _)| *rep)
    }
}

/// Deal `i`'s id: from where it starts to where the next deal's does.
fn id_in<'a>(entries: &[Entry], ids: &'a str, i: u32) -> &'a str {
    let from = entries[i as usize].id_at as usize;
    let to = entries
        .get(i as usize + 1)
        .map_or(ids.len(), |e| e.id_at as usize);
    &ids[from..to]
}

/// Points the chunk at `at` to the fact at `next`.
fn set_next(facts: &mut [u8], at: u32, next: u32) {
    let at = at as usize;
    facts[at..at + 4].copy_from_slice(&next.to_le_bytes());
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

    /// The deal's current shape, computed from its facts, or `None` when the log has
    /// no (non-voided) opening.
    pub fn view(&self) -> Option<DealView<'s>> {
        self.deals.view(self.ix, self.names)
    }

    /// The deal as it stood at the end of `day`: only facts dated on or before it
    /// count (opened on, changed on, closed on). The digest compares weeks with it.
    pub fn view_through(&self, day: Date) -> Option<DealView<'s>> {
        ViewCore::of(self.deals.chain(self.ix).filter(move |f| f.on <= day))
            .map(|v| v.named(self.id(), self.names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    /// Every kind of fact, with and without its optional figures, at the edges of
    /// what each field holds.
    fn every_kind(names: &mut Names) -> Vec<Fact> {
        let (ana, acme, widgets, north, won) = (
            names.intern("ana"),
            names.intern("acme"),
            names.intern("widgets"),
            names.intern("north"),
            names.intern("negotiation"),
        );
        let opening = |customer_kind, product, region, probability, amount| Opening {
            rep: ana,
            account: acme,
            customer_kind,
            product,
            region,
            amount,
            expected_close: day("2027-02-28"),
            probability,
        };
        let kinds = [
            FactKind::Opened(opening(
                CustomerKind::New,
                Some(widgets),
                Some(north),
                Some(Percent::HUNDRED),
                i64::MAX,
            )),
            FactKind::Opened(opening(CustomerKind::Existing, None, None, None, i64::MIN)),
            FactKind::Opened(opening(
                CustomerKind::New,
                None,
                Some(north),
                Some(Percent::ZERO),
                0,
            )),
            FactKind::Stage(StageChange {
                stage: won,
                probability: Some(Percent::from_hundredths(4_250).unwrap()),
                amount: Some(-1),
                expected_close: Some(day("0001-01-01")),
            }),
            FactKind::Stage(StageChange {
                stage: won,
                probability: None,
                amount: None,
                expected_close: None,
            }),
            FactKind::Stage(StageChange {
                stage: won,
                probability: None,
                amount: None,
                expected_close: Some(day("9999-12-31")),
            }),
            FactKind::Won { amount: 1_234_567 },
            FactKind::Lost,
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(n, kind)| Fact {
                seq: [0, 1, u64::MAX, 300][n % 4] + n as u64 % 2,
                on: day("2026-11-30").add_days(n as i32),
                kind,
            })
            .collect()
    }

    #[test]
    fn every_fact_reads_back_as_it_was_packed() {
        let mut names = Names::default();
        for fact in every_kind(&mut names) {
            let mut bytes = vec![];
            encode(&fact, &mut bytes);
            assert_eq!(decode(&bytes), fact);
        }
    }

    #[test]
    fn a_long_chain_keeps_its_view_in_step_with_its_facts() {
        let mut names = Names::default();
        let facts = every_kind(&mut names);
        let stage = |seq: u64, amount: i64| Fact {
            seq,
            on: day("2026-12-01"),
            kind: FactKind::Stage(StageChange {
                stage: names.get("negotiation").unwrap(),
                probability: None,
                amount: Some(amount),
                expected_close: None,
            }),
        };
        let mut deals = Deals::default();
        deals.add("d-1", Fact { seq: 1, ..facts[0] });
        let agree = |deals: &Deals| {
            let i = deals.find("d-1").unwrap();
            assert_eq!(deals.core(i), deals.core_decoded(i));
            let kept = deals.long_views.contains_key(&i);
            assert_eq!(kept, deals.entries[i as usize].facts >= LONG_CHAIN_FACTS);
            deals.core(i).unwrap().amount
        };
        for seq in 2..=40 {
            deals.add("d-1", stage(seq, seq as i64 * 100));
            assert_eq!(agree(&deals), seq as i64 * 100);
        }
        // Voids of the last facts, down past the threshold: each view is the facts'.
        for seq in (10..=40).rev() {
            deals.remove("d-1", seq);
            assert_eq!(agree(&deals), (seq as i64 - 1) * 100);
        }
        deals.add(
            "d-1",
            Fact {
                seq: 50,
                ..facts[6]
            },
        );
        assert_eq!(agree(&deals), 1_234_567);
        assert_eq!(deals.open_of_rep(names.get("ana").unwrap()), []);
    }

    #[test]
    fn chains_keep_log_order_and_a_void_unlinks_any_fact() {
        let mut names = Names::default();
        let facts = every_kind(&mut names);
        let mut deals = Deals::default();
        // Two deals interleaved, so their chunks alternate in the arena.
        for (n, fact) in facts.iter().enumerate() {
            let seq = n as u64 * 10;
            deals.add("d-1", Fact { seq, ..*fact });
            deals.add(
                "d-22",
                Fact {
                    seq: seq + 1,
                    ..*fact
                },
            );
        }
        let seqs = |deals: &Deals, id| {
            let i = deals.find(id).unwrap();
            deals.chain(i).map(|f| f.seq).collect::<Vec<_>>()
        };
        assert_eq!(seqs(&deals, "d-1"), [0, 10, 20, 30, 40, 50, 60, 70]);
        assert_eq!((deals.id(0), deals.id(1)), ("d-1", "d-22"));
        // The last, a middle one and the first.
        for seq in [70, 30, 0] {
            deals.remove("d-1", seq);
        }
        assert_eq!(seqs(&deals, "d-1"), [10, 20, 40, 50, 60]);
        // Appending after a void of the tail links to the new tail.
        deals.add(
            "d-1",
            Fact {
                seq: 80,
                ..facts[7]
            },
        );
        assert_eq!(seqs(&deals, "d-1"), [10, 20, 40, 50, 60, 80]);
        assert_eq!(seqs(&deals, "d-22").len(), 8);
        for seq in [10, 20, 40, 50, 60, 80] {
            deals.remove("d-1", seq);
        }
        let i = deals.find("d-1").unwrap();
        assert!(!deals.has_facts(i));
        assert_eq!(deals.view(i, &names), None);
        assert_eq!(deals.of_rep(names.get("ana").unwrap()), [1]);
    }
}
