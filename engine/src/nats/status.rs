//! What the engineer on call asks of a NATS cluster first (`pacer cluster status`):
//! for each of Pacer's streams (events, alerts, dead letters, the deal mirror) its
//! replicas, leader and each follower's state, and for each of Pacer's consumers how
//! far behind it is and who leads it. Read from JetStream's own stream and consumer
//! info; nothing is kept.

use async_nats::jetstream::{
    self,
    context::{ConsumerInfoErrorKind, GetStreamError, GetStreamErrorKind},
    ErrorCode,
};
use serde::Serialize;

use crate::error::NatsError;
use crate::nats::lease::{Holder, Leases};
use crate::subjects::Subjects;

/// One copy of a stream or consumer other than the leader's.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Follower {
    pub server: String,
    /// Caught up with the leader.
    pub current: bool,
    /// The group considers it gone.
    pub offline: bool,
    /// Operations it is behind the leader, when the leader knows.
    pub lag: Option<u64>,
    /// Since it was last heard from.
    pub active_ms: u64,
}

/// One of Pacer's streams; `found: false` when it does not exist (yet).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StreamStatus {
    pub stream: String,
    pub found: bool,
    /// Not there is fine: the deal mirror exists only where a gateway has run.
    pub optional: bool,
    pub replicas: usize,
    pub messages: u64,
    pub leader: Option<String>,
    pub followers: Vec<Follower>,
}

/// One of Pacer's durable consumers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConsumerStatus {
    pub stream: String,
    pub consumer: String,
    pub found: bool,
    /// Messages not yet delivered to it.
    pub pending: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: usize,
    pub redelivered: usize,
    pub leader: Option<String>,
    pub followers: Vec<Follower>,
}

/// The cluster as Pacer uses it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClusterStatus {
    pub streams: Vec<StreamStatus>,
    pub consumers: Vec<ConsumerStatus>,
    /// Which engine consumes the events stream; `None` before any engine ran.
    pub lease: Option<LeaseStatus>,
}

/// The engine lease ([`crate::nats::lease`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The engine that holds it; `None`: no engine consumes (the last one stopped or
    /// died, and no standby took over).
    pub holder: Option<Holder>,
}

impl ClusterStatus {
    /// What is wrong, one line each: a stream or consumer missing, without a leader,
    /// or with a follower offline or behind. Empty: healthy.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let followers = |out: &mut Vec<String>, what: &str, list: &[Follower]| {
            for f in list {
                if f.offline {
                    out.push(format!("{what}: {} is offline", f.server));
                } else if !f.current {
                    out.push(format!(
                        "{what}: {} is behind the leader ({} operations)",
                        f.server,
                        f.lag.map_or("?".to_owned(), |l| l.to_string())
                    ));
                }
            }
        };
        for s in &self.streams {
            let what = format!("stream {}", s.stream);
            if !s.found {
                if !s.optional {
                    out.push(format!("{what}: not found"));
                }
                continue;
            }
            if s.leader.is_none() && s.replicas > 1 {
                out.push(format!("{what}: no leader"));
            }
            followers(&mut out, &what, &s.followers);
        }
        if let Some(LeaseStatus { holder: None }) = &self.lease {
            out.push("engine lease: no engine holds it (none consumes the events stream)".into());
        }
        for c in &self.consumers {
            let what = format!("consumer {} of {}", c.consumer, c.stream);
            if !c.found {
                out.push(format!("{what}: not found"));
                continue;
            }
            if c.leader.is_none() && !c.followers.is_empty() {
                out.push(format!("{what}: no leader"));
            }
            followers(&mut out, &what, &c.followers);
        }
        out
    }
}

fn followers(cluster: Option<&jetstream::stream::ClusterInfo>) -> (Option<String>, Vec<Follower>) {
    let Some(c) = cluster else {
        return (None, Vec::new());
    };
    let mut list: Vec<Follower> = c
        .replicas
        .iter()
        .map(|p| Follower {
            server: p.name.clone(),
            current: p.current,
            offline: p.offline,
            lag: p.lag,
            active_ms: u64::try_from(p.active.as_millis()).unwrap_or(u64::MAX),
        })
        .collect();
    list.sort_by(|a, b| a.server.cmp(&b.server));
    (c.leader.clone(), list)
}

/// The stream is not there (as opposed to a time-out, a refusal, no leader).
fn stream_not_found(e: &GetStreamError) -> bool {
    matches!(
        e.kind(),
        GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND
    )
}

/// Reads the status of Pacer's streams (`<PREFIX>_EVENTS`, `_ALERTS`, `_DLQ`, and the
/// buckets `KV_<PREFIX>_DEALS`, `KV_<PREFIX>_LEASES` and `KV_<PREFIX>_MARKS`), consumers (the engine's and
/// the deliverer's) and the engine lease.
pub async fn cluster_status(
    js: &jetstream::Context,
    subjects: &Subjects,
) -> Result<ClusterStatus, NatsError> {
    let names = [
        (subjects.events_stream(), false),
        (subjects.stream("ALERTS"), false),
        (subjects.stream("DLQ"), false),
        (
            format!(
                "KV_{}",
                crate::webhook::mirror::bucket_name(&subjects.prefix)
            ),
            true,
        ),
        (format!("KV_{}", subjects.stream("LEASES")), true),
        (format!("KV_{}", subjects.stream("MARKS")), true),
    ];
    let mut streams = Vec::new();
    for (name, optional) in names {
        let info = match js.get_stream(&name).await {
            Ok(mut s) => Some(
                s.info()
                    .await
                    .map_err(|e| NatsError::Stream {
                        stream: name.clone(),
                        doing: "reading its state",
                        reason: e.to_string(),
                    })?
                    .clone(),
            ),
            // Not there (a gateway-less site has no deal mirror).
            Err(e) if stream_not_found(&e) => None,
            // A time-out, a refusal, a stream without a leader: said as what it is.
            Err(e) => {
                return Err(NatsError::Stream {
                    stream: name,
                    doing: "finding it",
                    reason: e.to_string(),
                })
            }
        };
        streams.push(match info {
            None => StreamStatus {
                stream: name,
                found: false,
                optional,
                replicas: 0,
                messages: 0,
                leader: None,
                followers: Vec::new(),
            },
            Some(info) => {
                let (leader, followers) = followers(info.cluster.as_ref());
                StreamStatus {
                    stream: name,
                    found: true,
                    optional,
                    replicas: info.config.num_replicas,
                    messages: info.state.messages,
                    leader,
                    followers,
                }
            }
        });
    }
    let mut consumers = Vec::new();
    for (stream, consumer) in [
        (subjects.events_stream(), subjects.consumer()),
        (
            subjects.stream("ALERTS"),
            crate::nats::deliver::consumer_name(subjects),
        ),
    ] {
        let lost = |e: &dyn std::fmt::Display| NatsError::Consumer {
            consumer: consumer.clone(),
            doing: "reading its state",
            reason: e.to_string(),
        };
        // A missing stream or consumer is said as not found; any other failure as
        // what it is.
        let info = match js.get_stream(&stream).await {
            Ok(s) => match s.consumer_info(&consumer).await {
                Ok(info) => Some(info),
                Err(e)
                    if matches!(
                        e.kind(),
                        ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
                    ) =>
                {
                    None
                }
                Err(e) => return Err(lost(&e)),
            },
            Err(e) if stream_not_found(&e) => None,
            Err(e) => return Err(lost(&e)),
        };
        consumers.push(match info {
            None => ConsumerStatus {
                stream,
                consumer,
                found: false,
                pending: 0,
                ack_pending: 0,
                redelivered: 0,
                leader: None,
                followers: Vec::new(),
            },
            Some(info) => {
                let (leader, followers) = followers(info.cluster.as_ref());
                ConsumerStatus {
                    stream,
                    consumer,
                    found: true,
                    pending: info.num_pending,
                    ack_pending: info.num_ack_pending,
                    redelivered: info.num_redelivered,
                    leader,
                    followers,
                }
            }
        });
    }
    let lease = match streams.last() {
        Some(s) if s.found => {
            let bucket = subjects.stream("LEASES");
            let store = js
                .get_key_value(&bucket)
                .await
                .map_err(|e| NatsError::Lease {
                    bucket: bucket.clone(),
                    doing: "opening the bucket",
                    reason: e.to_string(),
                })?;
            let holder = Leases::holder_in(&store)
                .await
                .map_err(|e| NatsError::Lease {
                    bucket,
                    doing: "reading the lease",
                    reason: e.to_string(),
                })?;
            Some(LeaseStatus { holder })
        }
        _ => None,
    };
    Ok(ClusterStatus {
        streams,
        consumers,
        lease,
    })
}
