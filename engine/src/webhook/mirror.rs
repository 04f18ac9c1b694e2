//! Where each deal's [`DealRecord`] is kept between webhook calls: a tree of the
//! log's sled database when Pacer runs as one process, a JetStream key-value bucket
//! when stateless gateways share it. Both offer compare-and-set, so two requests
//! about one deal (two gateways, or two connections to one) never both win: the
//! loser reloads and recomputes (see [`crate::http`]).

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use thiserror::Error;

use super::{DealKey, DealRecord};

/// The largest record kept for one deal (well under NATS's 1 MiB message limit).
pub const RECORD_BYTES_MAX: usize = 256 * 1024;

/// The bucket's name for a subject prefix (`pacer` → `PACER_DEALS`).
pub fn bucket_name(prefix: &str) -> String {
    format!("{}_DEALS", prefix.replace(['.', '-'], "_").to_uppercase())
}

/// Operating errors of the mirror.
#[derive(Debug, Error)]
pub enum MirrorError {
    #[error("the deal mirror (sled) failed while {doing}: {source}")]
    Sled {
        doing: &'static str,
        source: sled::Error,
    },
    /// The key-value bucket cannot be reached: the CRM should retry later.
    #[error("the deal mirror bucket is unavailable while {doing}: {reason}")]
    Unavailable { doing: &'static str, reason: String },
    #[error("the mirrored record of {key} would be {bytes} bytes, over the limit of {RECORD_BYTES_MAX}; map fewer fields")]
    TooLarge { key: String, bytes: usize },
    #[error("the mirrored record of {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A record's version as loaded, for compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// The record's bytes as loaded (sled compares them); `None`: absent.
    Sled(Option<Vec<u8>>),
    /// The key's revision; 0: absent.
    Kv(u64),
}

/// The store of deal records.
// One per process, never per message: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Mirror {
    Sled(sled::Tree),
    Kv(kv::Store),
}

impl Mirror {
    /// Opens (or creates) the bucket for `prefix`; one history entry per key.
    pub async fn kv(
        js: &async_nats::jetstream::Context,
        prefix: &str,
        replicas: usize,
    ) -> Result<Mirror, MirrorError> {
        let bucket = bucket_name(prefix);
        if let Ok(store) = js.get_key_value(&bucket).await {
            return Ok(Mirror::Kv(store));
        }
        // The bucket's stream is made here, as async-nats would make it: its own
        // `create_key_value` first reads account info in a shape the 2.9 server
        // does not send.
        let unavailable = |doing, e: &dyn std::fmt::Display| MirrorError::Unavailable {
            doing,
            reason: e.to_string(),
        };
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("Pacer: each CRM deal's properties and what Pacer was told".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("creating the bucket", &e))?;
        let store = js
            .get_key_value(&bucket)
            .await
            .map_err(|e| unavailable("opening the bucket", &e))?;
        Ok(Mirror::Kv(store))
    }

    /// The deal's record (empty when new) and its version.
    pub async fn load(&self, key: &DealKey) -> Result<(DealRecord, Version), MirrorError> {
        let (bytes, version) = match self {
            Mirror::Sled(tree) => {
                let got = tree
                    .get(key.id().as_bytes())
                    .map_err(|source| MirrorError::Sled {
                        doing: "reading a deal",
                        source,
                    })?
                    .map(|v| v.to_vec());
                (got.clone(), Version::Sled(got))
            }
            Mirror::Kv(store) => {
                let entry =
                    store
                        .entry(kv_key(key))
                        .await
                        .map_err(|e| MirrorError::Unavailable {
                            doing: "reading a deal",
                            reason: e.to_string(),
                        })?;
                match entry {
                    Some(e) if e.operation == kv::Operation::Put => {
                        (Some(e.value.to_vec()), Version::Kv(e.revision))
                    }
                    Some(e) => (None, Version::Kv(e.revision)),
                    None => (None, Version::Kv(0)),
                }
            }
        };
        let record = match bytes {
            None => DealRecord::default(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| MirrorError::Corrupt {
                key: key.id(),
                reason: e.to_string(),
            })?,
        };
        Ok((record, version))
    }

    /// Stores the record if it is still at `version`; its new version, or `None`
    /// when another writer changed it meanwhile (nothing stored).
    pub async fn store(
        &self,
        key: &DealKey,
        record: &DealRecord,
        version: &Version,
    ) -> Result<Option<Version>, MirrorError> {
        let bytes = serde_json::to_vec(record).expect("a deal record serialises");
        if bytes.len() > RECORD_BYTES_MAX {
            return Err(MirrorError::TooLarge {
                key: key.id(),
                bytes: bytes.len(),
            });
        }
        match (self, version) {
            (Mirror::Sled(tree), Version::Sled(old)) => {
                let swapped = tree
                    .compare_and_swap(key.id().as_bytes(), old.as_deref(), Some(bytes.clone()))
                    .map_err(|source| MirrorError::Sled {
                        doing: "storing a deal",
                        source,
                    })?;
                Ok(swapped.is_ok().then_some(Version::Sled(Some(bytes))))
            }
            (Mirror::Kv(store), Version::Kv(rev)) => {
                let result = if *rev == 0 {
                    store
                        .create(kv_key(key), Bytes::from(bytes))
                        .await
                        .map_err(|e| match e.kind() {
                            kv::CreateErrorKind::AlreadyExists => None,
                            _ => Some(e.to_string()),
                        })
                } else {
                    store
                        .update(kv_key(key), Bytes::from(bytes), *rev)
                        .await
                        .map_err(|e| match e.kind() {
                            kv::UpdateErrorKind::WrongLastRevision => None,
                            _ => Some(e.to_string()),
                        })
                };
                match result {
                    Ok(rev) => Ok(Some(Version::Kv(rev))),
                    Err(None) => Ok(None),
                    Err(Some(reason)) => Err(MirrorError::Unavailable {
                        doing: "storing a deal",
                        reason,
                    }),
                }
            }
            _ => unreachable!("a version comes from the same mirror"),
        }
    }

    /// Makes what was stored durable (sled; a bucket's writes are acknowledged
    /// durable already).
    pub async fn flush(&self) -> Result<(), MirrorError> {
        if let Mirror::Sled(tree) = self {
            tree.flush_async()
                .await
                .map_err(|source| MirrorError::Sled {
                    doing: "flushing",
                    source,
                })?;
        }
        Ok(())
    }
}

/// A bucket key for a deal: `<crm>.<tenant>.<deal>`, with any byte outside the
/// allowed `[-_a-zA-Z0-9]` written as `=XX`.
fn kv_key(key: &DealKey) -> String {
    let escape = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
        out
    };
    format!(
        "{}.{}.{}",
        key.crm.as_str(),
        escape(&key.tenant),
        escape(&key.deal)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Crm;

    #[test]
    fn keys_escape_what_the_bucket_does_not_take() {
        let k = DealKey {
            crm: Crm::Salesforce,
            tenant: "00D.x".into(),
            deal: "006 a/b".into(),
        };
        assert_eq!(kv_key(&k), "salesforce.00D=2Ex.006=20a=2Fb");
        assert_eq!(bucket_name("acme.pacer"), "ACME_PACER_DEALS");
    }

    #[tokio::test]
    async fn sled_compare_and_set_refuses_a_stale_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mirror = Mirror::Sled(db.open_tree("deals").unwrap());
        let k = DealKey {
            crm: Crm::Hubspot,
            tenant: "1".into(),
            deal: "2".into(),
        };
        let (mut a, va) = mirror.load(&k).await.unwrap();
        let (mut b, vb) = mirror.load(&k).await.unwrap();
        a.told.n = 1;
        b.told.n = 2;
        assert!(mirror.store(&k, &a, &va).await.unwrap().is_some());
        assert!(mirror.store(&k, &b, &vb).await.unwrap().is_none());
        let (now, _) = mirror.load(&k).await.unwrap();
        assert_eq!(now.told.n, 1);
    }
}
