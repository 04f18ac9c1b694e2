//! A JetStream key-value store of Pacer's — the deal mirror's, the engine lease's —
//! opened or made. Its stream is made here as async-nats would make it (async-nats's
//! own `create_key_value` first reads account info in a shape the 2.9 server does not
//! send), and a store found with fewer copies than configured (made on one node,
//! before the cluster) is raised to them; more are left as found.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

/// What a store is to be.
pub struct KvSpec<'a> {
    /// The bucket's name (its stream is `KV_<name>`).
    pub name: &'a str,
    pub description: &'a str,
    /// Entries expire this long after they were written; zero: never.
    pub max_age: Duration,
    pub replicas: usize,
}

/// Why a store could not be opened: what was being done, and the server's answer.
#[derive(Debug)]
pub struct KvError {
    pub doing: &'static str,
    pub reason: String,
}

/// Opens the store `spec` names, making it when it is not there; returns it and the
/// `max_age` its stream has (a store found may differ from the spec).
pub async fn open_kv_store(
    js: &jetstream::Context,
    spec: &KvSpec<'_>,
) -> Result<(kv::Store, Duration), KvError> {
    let failed = |doing, e: &dyn std::fmt::Display| KvError {
        doing,
        reason: e.to_string(),
    };
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: format!("KV_{}", spec.name),
            description: Some(spec.description.to_owned()),
            subjects: vec![format!("$KV.{}.>", spec.name)],
            max_messages_per_subject: 1,
            max_age: spec.max_age,
            // The server's default (2 min) may not exceed a shorter max_age.
            duplicate_window: spec.max_age,
            num_replicas: spec.replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| failed("creating the bucket", &e))?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| failed("reading the bucket", &e))?
        .config
        .clone();
    let max_age = config.max_age;
    if config.num_replicas < spec.replicas {
        config.num_replicas = spec.replicas;
        js.update_stream(config)
            .await
            .map_err(|e| failed("raising its replicas to [nats] replicas", &e))?;
    }
    let store = js
        .get_key_value(spec.name)
        .await
        .map_err(|e| failed("opening the bucket", &e))?;
    Ok((store, max_age))
}
