//! Pacer on NATS: `pacer serve` consumes events from JetStream into the log and
//! publishes alerts, digests and query answers; `pacer publish` is the small client
//! that puts events onto the stream.
//!
//! - this module: connecting (with every usual auth option) and the
//!   JetStream streams Pacer needs (created or extended, never shrunk or deleted).
//! - `pipeline`: the consumer loop, in the brief's order (decode → validate → dedupe
//!   → append → flush → ack), the clock tick, alert and digest publishing.
//! - `lease`: which engine consumes the stream (a KV key with a TTL), the others
//!   waiting as hot standbys.
//! - `query`: request/reply queries on the NATS service API.
//! - `publish`: `pacer publish FILE.jsonl`.
//!
//! Debian's nats-server is 2.9, so the client speaks the 2.9 JetStream API (the
//! `async-nats` server_2_10+ features are off).

pub mod deliver;
pub mod lease;
pub mod live;
pub mod pipeline;
pub mod publish;
pub mod query;
pub mod status;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions};

use crate::config::NatsConfig;
use crate::error::NatsError;
pub use crate::subjects::{token, Subjects};

/// The header that carries the reason of a dead letter.
pub const ERROR_HEADER: &str = "Pacer-Error";

/// A task of the engine's that is aborted when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects with the configured servers and credentials. The client reconnects by
/// itself for as long as the process runs; the first connection is retried too, so
/// the engine can start before NATS.
pub async fn connect(cfg: &NatsConfig, name: &str) -> Result<Client, NatsError> {
    if cfg.urls.is_empty() {
        return Err(NatsError::Connect {
            urls: String::new(),
            reason: format!("{name} needs a NATS server: pass --nats URL or set [nats] urls"),
        });
    }
    let mut opts = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5));
    if let Some(path) = &cfg.creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| NatsError::Credentials {
                path: path.clone(),
                reason: e.to_string(),
            })?;
    }
    if let Some(path) = &cfg.nkey {
        let seed = std::fs::read_to_string(path).map_err(|e| NatsError::Credentials {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        opts = opts.nkey(seed.trim().to_owned());
    }
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        opts = opts.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &cfg.token {
        opts = opts.token(token.clone());
    }
    if let Some(ca) = &cfg.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    opts.connect(cfg.urls.as_slice())
        .await
        .map_err(|e| NatsError::Connect {
            urls: cfg.urls.join(","),
            reason: e.to_string(),
        })
}

/// Creates the streams Pacer needs, or extends existing ones with the subjects they
/// lack and raises their replicas to `[nats] replicas` (a stream made on one node,
/// before the cluster). An existing stream keeps its limits, storage and everything
/// else: Pacer never deletes or shrinks a stream (it may be someone else's).
pub async fn ensure_streams(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    subjects: &Subjects,
) -> Result<(), NatsError> {
    let p = &subjects.prefix;
    let window = Duration::from_secs(cfg.duplicate_window_s.max(1));
    let wanted = [
        (subjects.stream("EVENTS"), vec![subjects.events_all()]),
        (
            subjects.stream("ALERTS"),
            vec![format!("{p}.alerts.>"), format!("{p}.digest.>")],
        ),
        (subjects.stream("DLQ"), vec![format!("{p}.dlq.>")]),
    ];
    for (name, subjects) in wanted {
        ensure_stream(js, &name, subjects, window, cfg.replicas as usize).await?;
    }
    Ok(())
}

async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: Vec<String>,
    duplicate_window: Duration,
    replicas: usize,
) -> Result<(), NatsError> {
    let err = |doing: &'static str, e: &dyn std::fmt::Display| NatsError::Stream {
        stream: name.to_owned(),
        doing,
        reason: e.to_string(),
    };
    match js.get_stream(name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| err("reading the stream", &e))?;
            let mut config = info.config.clone();
            if config.duplicate_window < duplicate_window {
                eprintln!(
                    "pacer: stream {name} keeps Nats-Msg-Id for {:?}, less than the configured {:?}; \
                     a restart after that long may publish an alert twice (Pacer does not shrink a stream's limits)",
                    config.duplicate_window, duplicate_window
                );
            }
            let missing: Vec<String> = subjects
                .into_iter()
                .filter(|s| !config.subjects.contains(s))
                .collect();
            // Fewer copies than configured (a stream made on one node, before the
            // cluster): the cluster makes the others. More: left as found.
            let replicate = config.num_replicas < replicas;
            if replicate {
                eprintln!(
                    "pacer: stream {name} has {} replica(s); raising it to the configured {replicas}",
                    config.num_replicas
                );
                config.num_replicas = replicas;
            }
            if !missing.is_empty() || replicate {
                config.subjects.extend(missing);
                js.update_stream(config).await.map_err(|e| {
                    err(
                        if replicate {
                            "raising its replicas to [nats] replicas (is the cluster that big?)"
                        } else {
                            "adding subjects to the stream"
                        },
                        &e,
                    )
                })?;
            }
            Ok(())
        }
        Err(_) => {
            js.create_stream(stream::Config {
                name: name.to_owned(),
                subjects,
                storage: stream::StorageType::File,
                duplicate_window,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| err("creating the stream", &e))?;
            Ok(())
        }
    }
}
