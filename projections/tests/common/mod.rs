//! What the model tests share: a log under construction folded into a state, and
//! the events they are made of, for rep "ana" (team north, region emea) unless a
//! helper says otherwise.

#![allow(dead_code)]

use pacer_projections::alerts::{Alert, AlertConfig, Rule};
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{
    ActivityLogged, AlertAcknowledged, CustomerKind, CustomerRated, DealOpened, DealWon, Event,
    EventBody, Percent, PlanBasis, PlanLine, PlanPublished, Recorded, RepRegistered,
};
use pacer_projections::model::Model;
use pacer_projections::money::{Currency, Money};
use pacer_projections::state::{void_target, OrgConfig};
use pacer_projections::time::{Date, Month, Timestamp};

pub fn eur() -> Currency {
    Currency::from_code("EUR").unwrap()
}

pub fn month(s: &str) -> Month {
    Month::parse(s).unwrap()
}

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

/// A log under construction and the configuration it is folded with.
pub struct Log {
    pub events: Vec<Recorded>,
    pub org: OrgConfig,
}

impl Log {
    pub fn new() -> Self {
        Log::with(AlertConfig::default())
    }

    pub fn with(alerts: AlertConfig) -> Self {
        let mut log = Log {
            events: Vec::new(),
            org: OrgConfig {
                timezone: chrono_tz::UTC,
                currency: eur(),
                fiscal_year_start_month: 1,
                alerts,
                pace: Default::default(),
            },
        };
        log.add(
            "2026-10-01T08:00:00Z",
            EventBody::RepRegistered(RepRegistered {
                rep: "ana".into(),
                name: "Ana Silva".into(),
                team: "north".into(),
                manager: "maria".into(),
                region: Some("emea".into()),
                start_month: None,
            }),
        );
        log
    }

    pub fn add(&mut self, at: &str, body: EventBody) -> &mut Self {
        let id = format!("e{}", self.events.len() + 1);
        self.add_id(&id, at, body)
    }

    pub fn add_id(&mut self, id: &str, at: &str, body: EventBody) -> &mut Self {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Recorded {
            seq,
            recorded_at: ts(at),
            event: Event {
                event_id: id.into(),
                source: "test".into(),
                occurred_at: ts(at),
                body,
            },
        });
        self
    }

    pub fn tick(&mut self, at: &str) -> &mut Self {
        self.add(at, EventBody::ClockTick)
    }

    /// Plan lines (rep ana) for one month, published effective from that month (so
    /// each month's plan is its own version).
    pub fn plan(&mut self, m: &str, lines: &[(&str, i64)]) -> &mut Self {
        let version = self.events.len() as u32;
        self.add(
            "2026-10-01T09:00:00Z",
            EventBody::PlanPublished(PlanPublished {
                plan: "fy27".into(),
                version,
                basis: PlanBasis::TopDown,
                horizon_start: month("2026-10"),
                effective_from: month(m),
                currency: eur(),
                lines: lines
                    .iter()
                    .map(|(bucket, target)| PlanLine {
                        rep: "ana".into(),
                        month: month(m),
                        bucket: Bucket::parse(bucket).unwrap(),
                        target: *target,
                    })
                    .collect(),
            }),
        )
    }

    pub fn state(&self) -> Model {
        let mut s = Model::new(self.org.clone());
        for r in &self.events {
            let target = void_target(&r.event)
                .and_then(|id| self.events.iter().find(|e| e.event.event_id == id));
            s.apply(r, target);
        }
        s
    }
}

pub fn won(deal: &str, minor: i64, closed_on: &str, kind: CustomerKind) -> EventBody {
    EventBody::DealWon(DealWon {
        deal: deal.into(),
        rep: "ana".into(),
        account: "acme".into(),
        customer_kind: kind,
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: Money::new(minor, eur()),
        closed_on: Date::parse(closed_on).unwrap(),
        splits: Vec::new(),
    })
}

pub fn opened(
    deal: &str,
    minor: i64,
    close: &str,
    probability: u16,
    product: &str,
    kind: CustomerKind,
) -> EventBody {
    EventBody::DealOpened(DealOpened {
        deal: deal.into(),
        rep: "ana".into(),
        account: format!("acct-{deal}"),
        customer_kind: kind,
        product: Some(product.into()),
        region: Some("emea".into()),
        amount: Money::new(minor, eur()),
        expected_close: Date::parse(close).unwrap(),
        probability: Percent::from_hundredths(probability * 100),
    })
}

pub fn activity(kind: &str) -> EventBody {
    EventBody::ActivityLogged(ActivityLogged {
        rep: "ana".into(),
        kind: kind.into(),
        account: None,
        deal: None,
    })
}

pub fn rated(scores: [u8; 4]) -> EventBody {
    EventBody::CustomerRated(CustomerRated {
        rep: "ana".into(),
        account: "acme".into(),
        listening: scores[0],
        trust: scores[1],
        problem_solving: scores[2],
        responsiveness: scores[3],
    })
}

pub fn ack(alert_id: &str) -> EventBody {
    EventBody::AlertAcknowledged(AlertAcknowledged {
        alert_id: alert_id.into(),
        by: "maria".into(),
        note: Some("talked on Monday".into()),
    })
}

/// The standing alerts of one rule.
pub fn standing(state: &Model, rule: Rule) -> Vec<Alert> {
    state
        .alert_book()
        .iter()
        .filter(|a| a.rule() == rule && a.is_standing())
        .cloned()
        .collect()
}

pub fn one(state: &Model, rule: Rule) -> Alert {
    let list = standing(state, rule);
    assert_eq!(list.len(), 1, "{rule}: {list:#?}");
    list.into_iter().next().unwrap()
}

/// A rep registered in `team` (manager "m-<team>") on 2026-01-02.
pub fn register(log: &mut Log, rep: &str, team: &str) {
    log.add(
        "2026-01-02T08:00:00Z",
        EventBody::RepRegistered(RepRegistered {
            rep: rep.into(),
            name: rep.into(),
            team: team.into(),
            manager: format!("m-{team}"),
            region: Some("emea".into()),
            start_month: None,
        }),
    );
}

/// Plan lines of `rep` for month `m`, in a plan whose horizon starts 2026-01.
pub fn plan_of(log: &mut Log, rep: &str, m: &str, lines: &[(&str, i64)]) {
    let version = log.events.len() as u32;
    log.add(
        "2026-01-02T09:00:00Z",
        EventBody::PlanPublished(PlanPublished {
            plan: format!("plan-{rep}"),
            version,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-01"),
            effective_from: month(m),
            currency: eur(),
            lines: lines
                .iter()
                .map(|(bucket, target)| PlanLine {
                    rep: rep.into(),
                    month: month(m),
                    bucket: Bucket::parse(bucket).unwrap(),
                    target: *target,
                })
                .collect(),
        }),
    );
}

/// A deal `rep` won on `closed_on` (product analytics unless given).
pub fn won_by(
    rep: &str,
    deal: &str,
    minor: i64,
    closed_on: &str,
    kind: CustomerKind,
    product: &str,
) -> EventBody {
    EventBody::DealWon(DealWon {
        deal: deal.into(),
        rep: rep.into(),
        account: format!("acct-{deal}"),
        customer_kind: kind,
        product: Some(product.into()),
        region: Some("emea".into()),
        amount: Money::new(minor, eur()),
        closed_on: Date::parse(closed_on).unwrap(),
        splits: Vec::new(),
    })
}

/// The working days of `m`, in order.
pub fn working_days(m: &str) -> Vec<Date> {
    month(m).days().filter(|d| d.is_working_day()).collect()
}
