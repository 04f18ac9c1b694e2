//! Micro-benchmarks of the hot paths: decoding an event, its bucket contributions,
//! folding events into the state (a replay, and activities arriving with alerts
//! live), and a team report. Run: `cargo bench -p pacer-engine`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pacer_engine::config::Config;
use pacer_engine::demo::{generate, DemoSpec};
use pacer_engine::wire::{decode, encode, Limits};
use pacer_projections::contribution::contributions;
use pacer_projections::event::{EventBody, Recorded};
use pacer_projections::model::Model;
use pacer_projections::report::{report, ReportQuery};
use pacer_projections::time::Timestamp;

fn demo_events(reps: usize) -> Vec<Recorded> {
    let now = Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").unwrap();
    let config = Config::default();
    let demo = generate(&DemoSpec {
        reps,
        seed: 42,
        now,
        timezone: config.org.timezone,
        currency: config.org.currency,
        daily_ticks: false,
        prior_months: 0,
    });
    demo.events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            seq: i as u64 + 1,
            recorded_at: now,
            event,
        })
        .collect()
}

fn hot_paths(c: &mut Criterion) {
    let events = demo_events(10);
    let config = Config::default();
    let won = events
        .iter()
        .find(|r| r.event.body.type_name() == "deal_won")
        .expect("the demo wins deals");
    let json = serde_json::to_vec(&encode(&won.event)).unwrap();
    let limits = Limits::default();

    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode deal_won", |b| {
        b.iter(|| decode(black_box(&json), &limits).unwrap())
    });
    g.bench_function("contributions deal_won", |b| {
        b.iter(|| contributions(black_box(&won.event), config.org.timezone))
    });
    g.finish();

    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function(format!("apply {} demo events", events.len()), |b| {
        b.iter(|| {
            let mut state = Model::new(config.org.clone());
            for r in &events {
                // The demo voids nothing.
                state.apply(r, None);
            }
            state
        })
    });
    g.finish();

    let mut state = Model::new(config.org.clone());
    for r in &events {
        state.apply(r, None);
    }

    // The demo's last 1 000 activities again, under new ids, arriving after its final
    // tick: each re-evaluates its rep's alerts, as on the live path.
    let last_seq = events.last().map_or(0, |r| r.seq);
    let now = state.now().expect("the demo ends with a tick");
    let live: Vec<Recorded> = events
        .iter()
        .filter(|r| matches!(r.event.body, EventBody::ActivityLogged(_)))
        .rev()
        .take(1_000)
        .enumerate()
        .map(|(i, r)| {
            let mut event = r.event.clone();
            event.event_id = format!("live-{i}");
            event.occurred_at = now;
            Recorded {
                seq: last_seq + 1 + i as u64,
                recorded_at: now,
                event,
            }
        })
        .collect();
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(live.len() as u64));
    g.bench_function(
        format!("apply {} activities, alerts live", live.len()),
        |b| {
            b.iter_batched(
                || state.clone(),
                |mut state| {
                    for r in &live {
                        state.apply(r, None);
                    }
                    state
                },
                BatchSize::LargeInput,
            )
        },
    );
    g.finish();

    let month = state.current_month().unwrap();
    let team = ReportQuery {
        team: Some("north".into()),
        ..ReportQuery::default()
    };
    c.bench_function("variance: team report", |b| {
        b.iter(|| report(black_box(&state), month, &team))
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
