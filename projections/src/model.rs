//! The model: the chain of folds one recorded event goes through, in one direction.
//! First the facts ([`State::fold`]: actuals, deals, plans, the org), then the alert
//! book over them ([`crate::alerts::watch`]: the rules re-evaluated for the scope the
//! event touched). Figures (`report`, `pacing`, `digest`) are computed from the state
//! on demand and stored nowhere. Nothing downstream feeds back upstream.

use std::ops::Deref;

use crate::alerts::book::AlertBook;
use crate::alerts::watch;
use crate::event::{EventBody, Recorded};
use crate::state::{applicable_target, OrgConfig, State};

/// The state and the alert book, folded together from the log. Reads of the state
/// go through `Deref`; the book is [`Model::alert_book`]. Two models are equal when
/// they folded the same events in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    state: State,
    alerts: AlertBook,
}

impl Model {
    pub fn new(cfg: OrgConfig) -> Self {
        Model {
            state: State::new(cfg),
            alerts: AlertBook::default(),
        }
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
            watch.after(
                &self.state,
                &mut self.alerts,
                &ev,
                target,
                applied.history_moved,
                rec.seq,
            );
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
