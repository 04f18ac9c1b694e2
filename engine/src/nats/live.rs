//! The live feed of alert changes in NATS mode. The engine publishes each change on
//! `<prefix>.alerts.<team>.<rep>` (through JetStream, with `Nats-Msg-Id` = the
//! change's id); `pacer serve --nats --http` subscribes to those subjects and hands
//! each change to the readers of `GET /v1/alerts/stream` and the web app, as the
//! one-process engine does straight from its fold. A reader that falls more than
//! [`STREAM_BACKLOG_MAX`] changes behind is told how many it missed.

use async_nats::Client;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::error::NatsError;
use crate::local::{AlertMessage, STREAM_BACKLOG_MAX};
use crate::nats::Subjects;

/// Subscribes to every alert subject of `subjects` and returns the feed; the
/// subscription lasts as long as the client.
pub async fn feed(
    client: &Client,
    subjects: &Subjects,
) -> Result<broadcast::Sender<AlertMessage>, NatsError> {
    let subject = format!("{}.alerts.>", subjects.prefix);
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| NatsError::Subscribe {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
    let (tx, _) = broadcast::channel(STREAM_BACKLOG_MAX);
    let out = tx.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let id = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            // No reader is not an error: the alert is in the engine's book anyway.
            let _ = out.send(AlertMessage {
                id,
                subject: msg.subject.to_string(),
                json: msg.payload,
            });
        }
    });
    Ok(tx)
}
