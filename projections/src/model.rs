//! The model: the chain of folds one recorded event goes through, in one direction.
//! First the facts ([`State::fold`]: actuals, deals, plans, the org), then the alert
//! book over them ([`crate::alerts::watch`]: the rules re-evaluated for the scope the
//! event touched). Figures (`report`, `pacing`, `digest`) are computed from the state
//! on demand and stored nowhere. Nothing downstream feeds back upstream.

use std::ops::Deref;

use crate::alerts::book::AlertBook;
use crate::alerts::watch;
use crate::event::{EventBody, Recorded};
use crate::pacing::Memo;
use crate::partition::Owner;
use crate::state::{applicable_target, OrgConfig, State};

/// The state and the alert book, folded together from the log. Reads of the state
/// go through `Deref`; the book is [`Model::alert_book`]. Two models are equal when
/// they folded the same events in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    state: State,
    alerts: AlertBook,
    /// For one partition of a partitioned organisation: the alert rules are
    /// evaluated for its reps only ([`crate::partition`]).
    owner: Option<Owner>,
    /// What the alert rules worked out from completed months, kept between events.
    memo: Memo,
}

impl Model {
    pub fn new(cfg: OrgConfig) -> Self {
        Model {
            state: State::new(cfg),
            alerts: AlertBook::default(),
            owner: None,
            memo: Memo::default(),
        }
    }

    /// The model of one partition: fed the events [`crate::partition::Router`] routes
    /// to it with [`Model::apply`] and the others with [`Model::apply_shared`], its
    /// figures and alerts for its own reps are the whole organisation's model's. For
    /// other reps it knows only part (their plans, their bookings by day): callers
    /// answer for [`Owner::owns`] reps only.
    pub fn partition(cfg: OrgConfig, owner: Owner) -> Self {
        Model {
            owner: Some(owner),
            ..Model::new(cfg)
        }
    }

    /// The partition this model is of, if any.
    pub fn owner(&self) -> Option<Owner> {
        self.owner
    }

    /// Folds one recorded event into the state, then into the alert book. Never
    /// fails: the engine validated the event before it was stored. `target` as
    /// [`State::apply`] takes it.
    pub fn apply(&mut self, rec: &Recorded, target: Option<&Recorded>) {
        let target = applicable_target(rec, target);
        self.alerts.begin_event();
        let Some(ev) = self.state.admit(rec) else {
            return;
        };
        let watch = watch::before(&self.state, &self.alerts, &ev, target);
        let applied = self.state.fold(rec, &ev, target);
        if applied.acknowledged {
            if let EventBody::AlertAcknowledged(a) = &ev.body {
                self.alerts.acknowledged(&a.alert_id);
            }
        }
        if let Some(watch) = watch {
            self.after(watch, &ev, target, applied.history_moved, rec.seq);
        }
    }

    /// The alert book's half of a fold: [`watch::Watch::after`] on this model.
    fn after(
        &mut self,
        watch: watch::Watch,
        ev: &crate::event::Event,
        target: Option<&Recorded>,
        history_moved: bool,
        seq: u64,
    ) {
        let owner = self.owner;
        watch.after(
            &self.state,
            &mut self.alerts,
            ev,
            target,
            history_moved,
            seq,
            owner,
            &mut self.memo,
        );
    }

    /// For a partition that joins a deal ([`crate::partition::Route::joined`]), before
    /// the event it joins with: folds one of the deal's earlier events into the facts,
    /// the part it had not folded ([`State::fold_joined`]), its amounts as converted
    /// when it came (the holding partition hands it over so). No alert is evaluated:
    /// the deal was none of this partition's reps' until the joining event, which is.
    pub fn apply_joined(&mut self, rec: &Recorded, target: Option<&Recorded>) {
        let target = applicable_target(rec, target);
        if let Some(ev) = self.state.admit_again(rec) {
            self.state.fold_joined(rec, &ev, target);
        }
    }

    /// Folds what a partition shares of an event another partition folds in full
    /// ([`State::fold_shared`]: a revenue event's bookings by day, a void of one),
    /// then re-evaluates this partition's reps whose pacing curve it moved.
    pub fn apply_shared(&mut self, rec: &Recorded, target: Option<&Recorded>) {
        let target = applicable_target(rec, target);
        self.alerts.begin_event();
        let Some(ev) = self.state.admit(rec) else {
            return;
        };
        let watch = watch::before_shared(&self.state, &ev, target);
        self.state.fold_shared(rec, &ev, target);
        if let Some(watch) = watch {
            self.after(watch, &ev, target, false, rec.seq);
        }
    }

    /// The facts.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Every alert the fold has raised, and which stand.
    pub fn alert_book(&self) -> &AlertBook {
        &self.alerts
    }
}

impl Deref for Model {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}
