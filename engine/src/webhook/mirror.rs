//! Where each deal's [`DealRecord`] is kept between webhook calls: a tree of the
//! log's sled database when Pacer runs as one process, a JetStream key-value bucket
//! when stateless gateways share it. Both offer compare-and-set, so two requests
//! about one deal (two gateways, or two connections to one) never both win: the
//! loser reloads and recomputes (see [`crate::http`]).
//!
//! Beside the records, the mirror keeps an index of the deals waiting for their
//! owner's mapping ([`WaitingDeal`]: a key `~waiting:<deal>` of the tree, a key
//! `waiting.<deal>` of the bucket), so that they can be listed, counted, and told
//! when a reload maps their owner, without reading every record.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{DealKey, DealRecord};
use crate::kv_store::{open_kv_store, KvSpec};

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

/// A deal taken in that cannot be told yet: its owner maps to no rep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingDeal {
    pub crm: String,
    pub tenant: String,
    pub deal: String,
    /// The CRM owner id no rep maps to.
    pub owner: String,
    /// What the intake answered.
    pub reason: String,
    /// When the owner was set (ms), as the CRM said.
    pub since_ms: i64,
}

impl WaitingDeal {
    /// Its mirror key.
    pub fn key(&self) -> Option<DealKey> {
        use crate::webhook::Crm;
        let crm = [Crm::Hubspot, Crm::Pipedrive, Crm::Salesforce]
            .into_iter()
            .find(|c| c.as_str() == self.crm)?;
        Some(DealKey {
            crm,
            tenant: self.tenant.clone(),
            deal: self.deal.clone(),
        })
    }
}

/// The prefix of the waiting index's keys in the sled tree (deal ids start with a
/// CRM's name, never with `~`).
const WAITING_SLED: &str = "~waiting:";
/// The prefix of the waiting index's keys in the bucket.
const WAITING_KV: &str = "waiting.";

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
        let spec = KvSpec {
            name: &bucket_name(prefix),
            description: "Pacer: each CRM deal's properties and what Pacer was told",
            max_age: Duration::ZERO,
            replicas,
        };
        let (store, _) = open_kv_store(js, &spec)
            .await
            .map_err(|e| MirrorError::Unavailable {
                doing: e.doing,
                reason: e.reason,
            })?;
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

    /// Marks a deal as waiting for its owner's mapping (again, with what is said
    /// now). Durable when it returns.
    pub async fn wait(&self, waiting: &WaitingDeal, key: &DealKey) -> Result<(), MirrorError> {
        let bytes = serde_json::to_vec(waiting).expect("a waiting deal serialises");
        match self {
            Mirror::Sled(tree) => {
                let sled_err = |source| MirrorError::Sled {
                    doing: "marking a deal waiting",
                    source,
                };
                tree.insert(format!("{WAITING_SLED}{}", key.id()), bytes)
                    .map_err(sled_err)?;
                tree.flush_async().await.map_err(sled_err)?;
            }
            Mirror::Kv(store) => {
                store
                    .put(format!("{WAITING_KV}{}", kv_key(key)), Bytes::from(bytes))
                    .await
                    .map_err(|e| MirrorError::Unavailable {
                        doing: "marking a deal waiting",
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }

    /// The deal no longer waits. Durable when it returns.
    pub async fn unwait(&self, key: &DealKey) -> Result<(), MirrorError> {
        match self {
            Mirror::Sled(tree) => {
                let sled_err = |source| MirrorError::Sled {
                    doing: "marking a deal told",
                    source,
                };
                tree.remove(format!("{WAITING_SLED}{}", key.id()))
                    .map_err(sled_err)?;
                tree.flush_async().await.map_err(sled_err)?;
            }
            Mirror::Kv(store) => {
                store
                    .purge(format!("{WAITING_KV}{}", kv_key(key)))
                    .await
                    .map_err(|e| MirrorError::Unavailable {
                        doing: "marking a deal told",
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }

    /// Every deal waiting for its owner's mapping, in key order. With a bucket:
    /// one request for the keys ever marked, and one per key.
    pub async fn waiting(&self) -> Result<Vec<WaitingDeal>, MirrorError> {
        let corrupt = |key: &str, e: serde_json::Error| MirrorError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        };
        let mut out = Vec::new();
        match self {
            Mirror::Sled(tree) => {
                for item in tree.scan_prefix(WAITING_SLED) {
                    let (k, v) = item.map_err(|source| MirrorError::Sled {
                        doing: "listing the waiting deals",
                        source,
                    })?;
                    let key = String::from_utf8_lossy(&k).into_owned();
                    out.push(serde_json::from_slice(&v).map_err(|e| corrupt(&key, e))?);
                }
            }
            Mirror::Kv(store) => {
                let unavailable = |e: &dyn std::fmt::Display| MirrorError::Unavailable {
                    doing: "listing the waiting deals",
                    reason: e.to_string(),
                };
                let prefix = format!("$KV.{}.", store.name);
                let stream = store.stream.clone();
                let mut subjects = stream
                    .info_with_subjects(format!("{prefix}{WAITING_KV}>"))
                    .await
                    .map_err(|e| unavailable(&e))?;
                let mut keys = Vec::new();
                while let Some(item) = subjects.next().await {
                    let (subject, _) = item.map_err(|e| unavailable(&e))?;
                    keys.push(subject.strip_prefix(&prefix).unwrap_or(&subject).to_owned());
                }
                keys.sort();
                for key in keys {
                    // A deal told since holds a purge marker: no value.
                    if let Some(v) = store.get(&key).await.map_err(|e| unavailable(&e))? {
                        out.push(serde_json::from_slice(&v).map_err(|e| corrupt(&key, e))?);
                    }
                }
            }
        }
        Ok(out)
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
