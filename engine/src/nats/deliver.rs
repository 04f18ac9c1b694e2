//! The deliverer's feed with NATS: a durable pull consumer of `PACER_ALERTS`
//! (`<prefix>-deliver`), shared by every engine of a deployment so that each alert
//! change is matched to subscriptions once. Each batch's intents are recorded, with
//! the stream seqs of its messages, and flushed before the messages are acked; a
//! message whose seq was recorded (redelivered after a crash between the two, or a
//! lost ack) is only acked.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::Context;
use futures::StreamExt as _;
use tokio::sync::watch;

use crate::deliver::store::Mark;
use crate::deliver::{Deliverer, Message};
use crate::error::NatsError;
use crate::subjects::Subjects;

/// Messages taken and recorded at once.
const BATCH_MESSAGES_MAX: usize = 256;

/// The deliverer's durable consumer: `pacer-deliver` for the default prefix.
pub fn consumer_name(subjects: &Subjects) -> String {
    format!("{}-deliver", subjects.prefix.replace('.', "-"))
}

/// Creates (or finds) the deliverer's durable consumer. A new one starts at the
/// stream's end: the history of alerts is not delivered.
pub async fn consumer(js: &Context, subjects: &Subjects) -> Result<PullConsumer, NatsError> {
    let name = consumer_name(subjects);
    let err = |doing: &'static str, e: &dyn std::fmt::Display| NatsError::Consumer {
        consumer: name.clone(),
        doing,
        reason: e.to_string(),
    };
    let stream = js
        .get_stream(subjects.stream("ALERTS"))
        .await
        .map_err(|e| err("finding the alerts stream", &e))?;
    stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::New,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| err("creating the durable consumer", &e))
}

/// Feeds the deliverer from the consumer until `stop`.
pub async fn feed(
    consumer: PullConsumer,
    deliverer: Arc<Deliverer>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    'outer: while !*stop.borrow() {
        let batch = consumer
            .fetch()
            .max_messages(BATCH_MESSAGES_MAX)
            .expires(Duration::from_secs(2))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                eprintln!("pacer deliver: cannot pull alerts ({e}); retrying in {backoff:?}");
                tokio::select! {
                    _ = stop.changed() => break 'outer,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => {
                    eprintln!("pacer deliver: a pull ended early: {e}");
                    break;
                }
            }
        }
        if msgs.is_empty() {
            continue;
        }
        let d = Arc::clone(&deliverer);
        let mut owned: Vec<(u64, String, String, bytes::Bytes)> = Vec::with_capacity(msgs.len());
        for m in &msgs {
            let Ok(info) = m.info() else {
                eprintln!(
                    "pacer deliver: a message on {} is not from JetStream; skipped",
                    m.subject
                );
                continue;
            };
            let seq = info.stream_sequence;
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map_or_else(|| format!("stream:{seq}"), |v| v.as_str().to_owned());
            owned.push((seq, m.subject.to_string(), id, m.payload.clone()));
        }
        let recorded = tokio::task::spawn_blocking(move || {
            // Each message once: one redelivered (a pull that ended early, a batch
            // not recorded, an ack lost) is matched only when its own seq was not.
            let mut fresh = Vec::new();
            for o in &owned {
                if !d.store().stream_seen(o.0)? {
                    fresh.push(o);
                }
            }
            let seqs: Vec<u64> = fresh.iter().map(|o| o.0).collect();
            let messages: Vec<Message<'_>> = fresh
                .iter()
                .map(|(_, subject, id, payload)| Message {
                    subject,
                    msg_id: id,
                    payload,
                })
                .collect();
            d.record(Mark::Stream(&seqs), &messages)
        })
        .await
        .expect("the recording task does not panic");
        match recorded {
            Ok(_) => {
                for m in &msgs {
                    if let Err(e) = m.ack().await {
                        // Redelivered later, and then only acked (below the mark).
                        eprintln!("pacer deliver: an ack was not taken: {e}");
                    }
                }
            }
            Err(e) => {
                // Not acked: NATS delivers them again after ack_wait.
                eprintln!("pacer deliver: alerts not recorded: {e}; NATS will deliver them again");
                tokio::select! {
                    _ = stop.changed() => break 'outer,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
