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
use futures::StreamExt;
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

/// A message ready to publish: subject, headers, payload.
pub type Message = (String, HeaderMap, Bytes);

/// One event line as a message: to `<prefix>.events.<type>` with `Nats-Msg-Id` = its
/// `event_id` (`unknown` and no id when the line is not a JSON object).
pub fn event_message(subjects: &Subjects, line: &[u8]) -> Message {
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
    (subject, headers, Bytes::copy_from_slice(line))
}

/// Waits for one acknowledgement and counts it.
async fn settle(
    (subject, ack): (String, PublishAckFuture),
    stats: &mut PublishStats,
) -> Result<(), NatsError> {
    match ack.await {
        Ok(a) => {
            stats.published += 1;
            if a.duplicate {
                stats.duplicates += 1;
            }
            Ok(())
        }
        Err(e) => Err(NatsError::Publish {
            subject,
            reason: format!("no acknowledgement: {e}"),
        }),
    }
}

/// Publishes one message to JetStream; the future resolves to its PubAck.
pub async fn publish_message(
    js: &jetstream::Context,
    (subject, headers, payload): Message,
) -> Result<PublishAckFuture, NatsError> {
    js.publish_with_headers(subject.clone(), headers, payload)
        .await
        .map_err(|e| NatsError::Publish {
            subject,
            reason: e.to_string(),
        })
}

/// Publishes every message of `messages`, keeping at most `in_flight_max`
/// unacknowledged, and waits for every acknowledgement.
pub async fn publish_all(
    js: &jetstream::Context,
    messages: impl futures::Stream<Item = Message>,
    in_flight_max: usize,
) -> Result<PublishStats, NatsError> {
    use futures::StreamExt;
    let mut stats = PublishStats::default();
    let mut in_flight: VecDeque<(String, PublishAckFuture)> = VecDeque::new();
    let mut messages = std::pin::pin!(messages);
    while let Some(message) = messages.next().await {
        if in_flight.len() >= in_flight_max.max(1) {
            if let Some(next) = in_flight.pop_front() {
                settle(next, &mut stats).await?;
            }
        }
        let subject = message.0.clone();
        let ack = publish_message(js, message).await?;
        in_flight.push_back((subject, ack));
    }
    while let Some(next) = in_flight.pop_front() {
        settle(next, &mut stats).await?;
    }
    Ok(stats)
}

/// Publishes every line received (blank lines skipped) as [`event_message`]s.
pub async fn publish_lines(
    js: &jetstream::Context,
    subjects: &Subjects,
    mut lines: tokio::sync::mpsc::Receiver<Vec<u8>>,
    in_flight_max: usize,
) -> Result<PublishStats, NatsError> {
    let messages = futures::stream::poll_fn(move |cx| lines.poll_recv(cx))
        .filter(|line| std::future::ready(!line.iter().all(u8::is_ascii_whitespace)))
        .map(|line| event_message(subjects, &line));
    publish_all(js, messages, in_flight_max).await
}
