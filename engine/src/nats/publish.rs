//! `pacer publish`: puts JSON Lines events onto JetStream for operators, scripts and
//! tests. Each event goes to `<prefix>.events.<type>` with `Nats-Msg-Id` = its
//! `event_id`, so the stream itself drops a re-published event within its duplicate
//! window; every publish waits for its acknowledgement (up to 256 in flight).
//!
//! The client does not validate: the engine does, and dead-letters what it rejects.
//! A line that is not even a JSON object still goes out (to `<prefix>.events.unknown`)
//! so that it reaches the dead-letter stream with its reason.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::Subjects;
use crate::error::NatsError;

/// What a publish run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    pub published: u64,
    /// Acknowledged as duplicates by the stream (already published).
    pub duplicates: u64,
}

/// Publishes one event line; returns its acknowledgement to await.
pub async fn publish_line(
    js: &jetstream::Context,
    subjects: &Subjects,
    line: &[u8],
) -> Result<PublishAckFuture, NatsError> {
    let parsed: Option<Value> = serde_json::from_slice(line).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let subject = subjects.event(&field("type").unwrap_or_else(|| "unknown".into()));
    let mut headers = HeaderMap::new();
    if let Some(id) = field("event_id") {
        headers.insert("Nats-Msg-Id", id.as_str());
    }
    js.publish_with_headers(subject.clone(), headers, Bytes::copy_from_slice(line))
        .await
        .map_err(|e| NatsError::Publish {
            subject,
            reason: e.to_string(),
        })
}

/// Publishes every line received, keeping at most `in_flight_max` unacknowledged.
pub async fn publish_lines(
    js: &jetstream::Context,
    subjects: &Subjects,
    mut lines: tokio::sync::mpsc::Receiver<Vec<u8>>,
    in_flight_max: usize,
) -> Result<PublishStats, NatsError> {
    let mut stats = PublishStats::default();
    let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::new();
    let settle =
        |ack: Result<jetstream::publish::PublishAck, _>, stats: &mut PublishStats| match ack {
            Ok(a) => {
                stats.published += 1;
                if a.duplicate {
                    stats.duplicates += 1;
                }
                Ok(())
            }
            Err(e) => Err(NatsError::Publish {
                subject: subjects.events_all(),
                reason: format!("no acknowledgement: {e}"),
            }),
        };
    while let Some(line) = lines.recv().await {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if in_flight.len() >= in_flight_max.max(1) {
            if let Some(ack) = in_flight.pop_front() {
                settle(ack.await, &mut stats)?;
            }
        }
        in_flight.push_back(publish_line(js, subjects, &line).await?);
    }
    while let Some(ack) = in_flight.pop_front() {
        settle(ack.await, &mut stats)?;
    }
    Ok(stats)
}
