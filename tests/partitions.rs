//! Partitioned folds against the single fold (docs/partitions.md, step 1): a demo
//! organisation's history, with split deals, deals handed to another partition's
//! rep (while open, and after their win) in a currency whose rate is set again
//! between, voids (some before their event, some after a partition joined their
//! deal) and a deal's stage change before its opening added, routed by
//! `partition::Router` over 1 to 4 partitions. Each partition folds in full what is
//! routed to it (first, when it joins a deal, the deal's earlier events as they were
//! converted when they came) and the shared part of the rest. For every rep, its
//! partition's report rows, productivity and alerts, every team's merged answers
//! and every team's pacing curve must be the single fold's.

use std::collections::{BTreeMap, HashMap, HashSet};

use pacer_engine::demo::{generate, DemoSpec};
use pacer_projections::alerts::{
    alert_views, alert_week, Alert, AlertQuery, AlertView, Status, StatusFilter,
};
use pacer_projections::digest::{digest, Audience, RepDigest};
use pacer_projections::event::{
    DealOpened, DealStageChanged, Event, EventBody, EventVoided, FxRate, FxRateSet, Percent,
    Recorded, Split,
};
use pacer_projections::fx::normalize;
use pacer_projections::model::Model;
use pacer_projections::money::Currency;
use pacer_projections::pacing::CurveSource;
use pacer_projections::partition::{merge, partition_of, Owner, PartitionSet, Router};
use pacer_projections::productivity::productivity;
use pacer_projections::report::{report, ReportQuery};
use pacer_projections::state::{deal_of, void_target, OrgConfig};
use pacer_projections::time::Timestamp;

/// The demo's history (with three months before the plan, so the pacing curves are
/// learned) and the events that make partitions route across each other.
fn history(seed: u64) -> (Vec<Recorded>, OrgConfig) {
    let org = pacer_engine::config::Config::default().org;
    let demo = generate(&DemoSpec {
        reps: 24,
        seed,
        now: Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").unwrap(),
        timezone: org.timezone,
        currency: org.currency,
        daily_ticks: true,
        prior_months: 3,
    });
    let reps: Vec<String> = demo.reps.iter().map(|r| r.id.clone()).collect();
    // A rep of the other partition (of two) than `rep`, chosen by the event's index.
    let other = |rep: &str, i: usize| -> String {
        let mine = partition_of(rep, 2);
        let others: Vec<&String> = reps.iter().filter(|r| partition_of(r, 2) != mine).collect();
        others[i % others.len()].clone()
    };
    let mut events: Vec<Event> = Vec::new();
    // (position, event): added once the demo's events are in, later first.
    let mut later: Vec<(usize, Event)> = Vec::new();
    let (mut won, mut opened, mut staged, mut revenue) = (0, 0, 0, 0);
    let mut to_move: HashMap<String, (String, DealOpened)> = HashMap::new();
    // The deals handed over are in a currency other than the reporting one (pounds
    // for the default org, which reports in dollars), whose rate is set again
    // halfway: a partition that joins one must take its earlier amounts as they were
    // converted.
    let other_currency = Currency::from_code(if org.currency.code() == "USD" {
        "GBP"
    } else {
        "USD"
    })
    .unwrap();
    let mut in_other: HashSet<String> = HashSet::new();
    let mut last_stage: HashMap<String, Event> = HashMap::new();
    let now = Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").unwrap();
    let this_month = now.local_date(org.timezone).month();
    let rates = |tag: &str, rate: &str, at: Timestamp| -> Vec<Event> {
        (-30..=30)
            .map(|i| {
                let month = this_month.plus(i);
                Event {
                    event_id: format!("fx-{month}-{tag}"),
                    source: "finance".into(),
                    occurred_at: at,
                    body: EventBody::FxRateSet(FxRateSet {
                        currency: other_currency,
                        month,
                        rate: FxRate::parse(rate).unwrap(),
                    }),
                }
            })
            .collect()
    };
    let first = demo.events[0].occurred_at;
    events.extend(rates("first", "1.1", first));
    for (i, mut ev) in demo.events.into_iter().enumerate() {
        let at = ev.occurred_at;
        let id = ev.event_id.clone();
        let like = |id: String, body: EventBody| Event {
            event_id: id,
            source: "test".into(),
            occurred_at: at,
            body,
        };
        let void_of = |tag: &str, id: &str| {
            like(
                format!("void-{tag}-{id}"),
                EventBody::EventVoided(EventVoided {
                    voided_event_id: id.to_owned(),
                    reason: None,
                }),
            )
        };
        let void = |ev: &Event| void_of("", &ev.event_id);
        match &mut ev.body {
            EventBody::DealWon(w) => {
                won += 1;
                if in_other.contains(&w.deal) {
                    w.amount.currency = other_currency;
                }
                if won % 23 == 0 {
                    w.amount.currency = other_currency;
                    // Handed to a rep of another partition after it was won (an
                    // account handed over): that partition joins a deal whose win it
                    // had folded only the bookings of.
                    let handed = DealOpened {
                        deal: w.deal.clone(),
                        rep: other(&w.rep, i),
                        account: w.account.clone(),
                        customer_kind: w.customer_kind,
                        product: w.product.clone(),
                        region: w.region.clone(),
                        amount: w.amount,
                        expected_close: w.closed_on,
                        probability: None,
                    };
                    later.push((
                        events.len() + 5,
                        like(format!("{id}-handed"), EventBody::DealOpened(handed)),
                    ));
                    // Its month's rate set again between the win and the handover,
                    // and every other one's win voided after the handover.
                    later.push((
                        events.len() + 4,
                        like(
                            format!("fx-{id}"),
                            EventBody::FxRateSet(FxRateSet {
                                currency: other_currency,
                                month: w.closed_on.month(),
                                rate: FxRate::parse(if won % 2 == 0 { "1.3" } else { "1.2" })
                                    .unwrap(),
                            }),
                        ),
                    ));
                    if won % 46 == 0 {
                        later.push((events.len() + 7, void_of("after", &id)));
                    }
                } else if won % 5 == 0 {
                    let partner = other(&w.rep, i);
                    w.splits = vec![
                        Split {
                            rep: w.rep.clone(),
                            percent: Percent::from_hundredths(6_000).unwrap(),
                        },
                        Split {
                            rep: partner,
                            percent: Percent::from_hundredths(4_000).unwrap(),
                        },
                    ];
                }
            }
            EventBody::DealOpened(o) => {
                opened += 1;
                if opened % 9 == 0 {
                    in_other.insert(o.deal.clone());
                    o.amount.currency = other_currency;
                    // Handed to a rep of another partition just before it closes,
                    // after its stage changes.
                    let moved = DealOpened {
                        rep: other(&o.rep, i),
                        ..o.clone()
                    };
                    to_move.insert(o.deal.clone(), (format!("{}-moved", ev.event_id), moved));
                }
                if opened % 31 == 0 {
                    // A deal whose stage change arrives before its opening.
                    let deal = format!("{}-early", o.deal);
                    let early = EventBody::DealStageChanged(DealStageChanged {
                        deal: deal.clone(),
                        stage: "proposal".into(),
                        probability: Percent::from_hundredths(5_000),
                        amount: None,
                        expected_close: None,
                    });
                    events.push(like(format!("{}-early-stage", ev.event_id), early));
                    let opening = DealOpened { deal, ..o.clone() };
                    later.push((
                        events.len() + 3,
                        like(
                            format!("{}-early-open", ev.event_id),
                            EventBody::DealOpened(opening),
                        ),
                    ));
                }
            }
            EventBody::DealStageChanged(c) => {
                if let Some(a) = c.amount.as_mut().filter(|_| in_other.contains(&c.deal)) {
                    a.currency = other_currency;
                }
                staged += 1;
                if staged % 17 == 0 {
                    later.push((events.len() + 2, void(&ev)));
                }
            }
            EventBody::ActivityLogged(_) if i % 211 == 0 => {
                // Voided before it arrives.
                events.push(void(&ev));
            }
            _ => {}
        }
        if let EventBody::DealStageChanged(c) = &ev.body {
            last_stage.insert(c.deal.clone(), ev.clone());
        }
        if let Some((moved_id, moved)) = deal_of(&ev.body)
            .filter(|_| matches!(ev.body, EventBody::DealWon(_) | EventBody::DealLost(_)))
            .and_then(|d| to_move.remove(d))
        {
            let stage = last_stage.get(&moved.deal).map(|e| e.event_id.clone());
            events.push(Event {
                event_id: moved_id,
                source: "test".into(),
                occurred_at: ev.occurred_at,
                body: EventBody::DealOpened(moved),
            });
            // Its last stage change voided after the handover: the partition that
            // joined the deal folded that change when it joined.
            if let Some(stage) = stage {
                events.push(Event {
                    event_id: format!("void-after-{stage}"),
                    source: "test".into(),
                    occurred_at: ev.occurred_at,
                    body: EventBody::EventVoided(EventVoided {
                        voided_event_id: stage,
                        reason: None,
                    }),
                });
            }
        }
        if matches!(ev.body, EventBody::DealWon(_) | EventBody::Retention(..)) {
            revenue += 1;
            if revenue % 13 == 0 {
                later.push((events.len() + 3, void(&ev)));
            }
        }
        events.push(ev);
    }
    later.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, ev) in later {
        events.insert(at.min(events.len()), ev);
    }
    // That currency's rates set again halfway through.
    let half = events.len() / 2;
    let again = rates("again", "1.25", events[half].occurred_at);
    events.splice(half..half, again);
    let records = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            seq: i as u64 + 1,
            recorded_at: event.occurred_at,
            event,
        })
        .collect();
    (records, org)
}

/// For each record, the earlier record a void names (as the engine looks it up).
fn targets(records: &[Recorded]) -> Vec<Option<usize>> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        out.push(void_target(&rec.event).and_then(|id| first.get(id).copied()));
        first.entry(rec.event.event_id.as_str()).or_insert(i);
    }
    out
}

fn single(records: &[Recorded], org: &OrgConfig) -> Model {
    let targets = targets(records);
    let mut m = Model::new(org.clone());
    for (rec, t) in records.iter().zip(&targets) {
        m.apply(rec, t.map(|j| &records[j]));
    }
    m
}

/// The models of `count` partitions, each fed as an engine of that partition would
/// be; and how many events each folded in full.
fn partitioned(records: &[Recorded], org: &OrgConfig, count: u32) -> (Vec<Model>, Vec<usize>) {
    let targets = targets(records);
    let mut router = Router::new(count);
    let mut models: Vec<Model> = (0..count)
        .map(|index| Model::partition(org.clone(), Owner::new(index, count).unwrap()))
        .collect();
    let mut full = vec![0usize; count as usize];
    // Per deal, its events in order.
    let mut deals: HashMap<String, Vec<usize>> = HashMap::new();
    // Per event, the partitions that hold it in their logs: those that folded it in
    // full, and those that joined its deal since.
    let mut holds: Vec<PartitionSet> = Vec::with_capacity(records.len());
    let mut by_joining: Vec<PartitionSet> = Vec::with_capacity(records.len());
    // Each event with its amounts as converted when it came: what the partition
    // holding it hands over to one that joins its deal.
    // `None` when its month had no rate: it never counted, and nothing is handed over.
    let mut as_came: Vec<Option<Recorded>> = Vec::with_capacity(records.len());
    let (mut joins, mut joined_converted, mut voids_after_join) = (0, 0, 0);
    for (i, rec) in records.iter().enumerate() {
        let fx = models[0].fx();
        as_came.push(
            match normalize(&rec.event, org.currency, org.timezone, fx) {
                Ok(event) => Some(Recorded {
                    event: event.into_owned(),
                    ..rec.clone()
                }),
                Err(_) => None,
            },
        );
        let route = router.route(rec);
        if matches!(rec.event.body, EventBody::EventVoided(_)) {
            // Every partition undoes what it holds of the target: the event, its
            // shared part, or nothing but the id.
            for (k, model) in models.iter_mut().enumerate() {
                let k = k as u32;
                match targets[i] {
                    // What its log holds: the event as it came, or as handed over
                    // when it joined the deal; a booking record, with the amount
                    // as converted then.
                    Some(j) if holds[j].contains(k) => {
                        let held = if by_joining[j].contains(k) {
                            voids_after_join += 1;
                            as_came[j].as_ref().unwrap_or(&records[j])
                        } else {
                            &records[j]
                        };
                        model.apply(rec, Some(held));
                    }
                    Some(j) if is_revenue(&records[j].event.body) => {
                        model.apply_shared(rec, Some(as_came[j].as_ref().unwrap_or(&records[j])))
                    }
                    _ => model.apply(rec, None),
                }
                full[k as usize] += 1;
            }
            holds.push(route.full);
            by_joining.push(PartitionSet::EMPTY);
            continue;
        }
        let deal = deal_of(&rec.event.body).map(str::to_owned);
        for (k, model) in models.iter_mut().enumerate() {
            let k = k as u32;
            if !route.full.contains(k) {
                model.apply_shared(rec, None);
                continue;
            }
            if route.joined.contains(k) {
                joins += 1;
                let earlier = deal
                    .as_ref()
                    .and_then(|d| deals.get(d))
                    .into_iter()
                    .flatten();
                for &j in earlier {
                    if !holds[j].contains(k) {
                        let Some(handed) = &as_came[j] else {
                            continue;
                        };
                        if handed.event != records[j].event {
                            joined_converted += 1;
                        }
                        model.apply_joined(handed, None);
                        holds[j] = holds[j].union(PartitionSet::one(k));
                        by_joining[j] = by_joining[j].union(PartitionSet::one(k));
                    }
                }
            }
            model.apply(rec, None);
            full[k as usize] += 1;
        }
        holds.push(route.full);
        by_joining.push(PartitionSet::EMPTY);
        if let Some(d) = deal {
            deals.entry(d).or_default().push(i);
        }
    }
    // One partition holds every deal: nothing to join.
    assert!(
        count == 1 || (joins > 0 && joined_converted > 0 && voids_after_join > 0),
        "{joins} joins, {joined_converted} events in another currency folded by joining, \
         {voids_after_join} voids of an event a partition held by joining: the test lost its point"
    );
    (models, full)
}

fn is_revenue(body: &EventBody) -> bool {
    matches!(body, EventBody::DealWon(_) | EventBody::Retention(..))
}

/// An alert as the merged answer shows it: all but its place in one book's raise
/// order (the merge orders by seq, rep and rule).
fn shown(a: &Alert) -> Alert {
    Alert {
        order: 0,
        ..a.clone()
    }
}

/// A rep's digest section as a manager reads it.
fn section(r: &RepDigest) -> String {
    let alerts = |vs: &[AlertView]| -> Vec<(String, Status)> {
        vs.iter().map(|v| (v.alert.id.clone(), v.status)).collect()
    };
    format!(
        "{} {} {} {} focus {:?} watch {:?} resolved {} pace {:?} pipeline {:?} ratings {:?} {:?} reason {}",
        r.rep,
        r.name,
        r.team,
        r.manager,
        alerts(&r.focus),
        alerts(&r.watch),
        r.resolved,
        r.pace,
        r.pipeline,
        r.rating_this_month,
        r.rating_last_month,
        r.reason
    )
}

/// Fails on the first row where `got` and `want` differ, showing those two.
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: row {i}");
    }
    assert_eq!(got.len(), want.len(), "{what}: rows");
}

fn compare(records: &[Recorded], org: &OrgConfig, count: u32) {
    let one = single(records, org);
    let (parts, full) = partitioned(records, org, count);
    let now = one.current_month().unwrap();
    let reps: Vec<String> = one.reps().keys().cloned().collect();
    let mut rows = 0;
    let mut alerts = 0;
    let mut learned = 0;
    for rep in &reps {
        let k = partition_of(rep, count);
        let part = &parts[k as usize];
        for month in [now.plus(-3), now.plus(-1), now, now.plus(1)] {
            let q = ReportQuery {
                rep: Some(rep.clone()),
                ..ReportQuery::default()
            };
            let want = report(&one, month, &q);
            let got = report(part, month, &q);
            same(
                &got,
                &want,
                &format!("{count} partitions: {rep}'s report in {month}"),
            );
            rows += want.len();
            learned += want
                .iter()
                .filter(|r| matches!(r.curve, Some(CurveSource::Team { .. })))
                .count();
            let want = productivity(&one, month, &q);
            let got = productivity(part, month, &q);
            same(
                &got,
                &want,
                &format!("{count} partitions: {rep}'s productivity in {month}"),
            );
        }
        let q = AlertQuery {
            status: StatusFilter::All,
            rep: Some(rep.clone()),
            ..AlertQuery::default()
        };
        let view = |m| {
            alert_views(m, &q)
                .iter()
                .map(|v| (shown(v.alert), v.status, v.focus, v.team.clone()))
                .collect::<Vec<_>>()
        };
        let want = view(&one);
        same(
            &view(part),
            &want,
            &format!("{count} partitions: {rep}'s alerts"),
        );
        alerts += want.len();
    }
    // A team's answers merged from the partitions' (each narrowed to its own reps)
    // are the single engine's: report rows, alert listings, the weekly digest.
    let owners: Vec<Owner> = (0..count)
        .map(|index| Owner::new(index, count).unwrap())
        .collect();
    let week = alert_week(one.now().unwrap(), one.config().timezone);
    let mut merged = 0;
    for team in one.teams_now() {
        for month in [now.plus(-1), now] {
            let q = ReportQuery {
                team: Some(team.clone()),
                ..ReportQuery::default()
            };
            let want = report(&one, month, &q);
            let got = merge(
                parts.iter().zip(&owners).map(|(m, o)| {
                    let mut rows = report(m, month, &q);
                    rows.retain(|r| o.owns(r.rep));
                    rows
                }),
                |r| r.rep,
            );
            same(
                &got,
                &want,
                &format!("{count} partitions: {team}'s report in {month}"),
            );
            merged += want.len();
        }
        for status in [StatusFilter::All, StatusFilter::Open] {
            let q = AlertQuery {
                status,
                team: Some(team.clone()),
                ..AlertQuery::default()
            };
            let shown_all = |views: Vec<AlertView>| {
                views
                    .iter()
                    .map(|v| (shown(v.alert), v.status, v.focus, v.team.clone()))
                    .collect::<Vec<_>>()
            };
            let want = shown_all(alert_views(&one, &q));
            let got = shown_all(merge(
                parts.iter().zip(&owners).map(|(m, o)| {
                    let mut views = alert_views(m, &q);
                    views.retain(|v| o.owns(&v.alert.rep));
                    views
                }),
                |v| (v.alert.raised_seq, v.alert.rep.clone()),
            ));
            same(
                &got,
                &want,
                &format!("{count} partitions: {team}'s alerts ({status:?})"),
            );
            merged += want.len();
        }
        let audience = Audience::Team(team.clone());
        let want = digest(&one, &audience, week).unwrap();
        let got = merge(
            parts.iter().zip(&owners).map(|(m, o)| {
                let mut d = digest(m, &audience, week).unwrap();
                d.reps.retain(|r| o.owns(&r.rep));
                d.reps
            }),
            |r| r.rep.clone(),
        );
        same(
            &got.iter().map(section).collect::<Vec<_>>(),
            &want.reps.iter().map(section).collect::<Vec<_>>(),
            &format!("{count} partitions: {team}'s digest"),
        );
        merged += want.reps.len();
    }
    assert!(
        merged > 500,
        "{merged} team rows, alerts and digest sections compared"
    );
    // Each team's curve is the organisation's in every partition.
    let pace = one.pace().unwrap();
    let curves = |m: &Model| -> BTreeMap<String, _> {
        m.teams_now()
            .into_iter()
            .map(|t| {
                let s = m.pace_share(&t, &pace);
                (t, s)
            })
            .collect()
    };
    for part in &parts {
        assert_eq!(curves(part), curves(&one), "{count} partitions: the curves");
    }
    assert!(
        rows > 500 && alerts > 50 && learned > 20,
        "{rows} rows, {alerts} alerts, {learned} on a team's curve"
    );
    // Every event is folded in full once, except the org's (every partition) and
    // those of deals shared by partitions.
    let total: usize = full.iter().sum();
    assert!(
        total < records.len() * 13 / 10,
        "{count} partitions folded {total} of {} events in full",
        records.len()
    );
    assert!(
        count == 1 || full.iter().all(|f| *f < records.len() * 8 / 10),
        "{full:?} of {}",
        records.len()
    );
}

#[test]
fn two_partitions_answer_for_their_reps_as_one_engine_does() {
    let (records, org) = history(7);
    compare(&records, &org, 2);
}

#[test]
fn three_partitions_answer_for_their_reps_as_one_engine_does() {
    let (records, org) = history(11);
    compare(&records, &org, 3);
}

/// One partition is the whole organisation; four split 24 reps thinly (a team's
/// reps across all four).
#[test]
fn one_and_four_partitions_answer_for_their_reps_as_one_engine_does() {
    let (records, org) = history(5);
    compare(&records, &org, 1);
    let (records, org) = history(13);
    compare(&records, &org, 4);
}
