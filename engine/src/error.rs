//! The engine's errors. Three kinds, kept apart:
//!
//! - [`Rejection`]: bad input. Typed, names the field and the value, and costs the
//!   sender that one event (it goes to the dead-letter path); nothing else stops.
//! - [`LogError`], [`ConfigError`], [`IngestError`]: operating errors of one module
//!   (a disk, a file, a setting), reported with their context.
//! - Bugs panic.

use std::path::PathBuf;

use thiserror::Error;

/// Why an event was rejected: also the `<reason>` of the dead-letter subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectKind {
    /// Not a JSON object at all.
    MalformedJson,
    /// Over a size limit (event bytes, id bytes, plan lines).
    TooLarge,
    /// A `type` the schema does not have.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A field of the wrong JSON type.
    WrongType,
    /// A field of the right type whose value is not allowed.
    InvalidValue,
    /// A currency other than the reporting currency, with no rate to convert it.
    UnsupportedCurrency,
}

impl RejectKind {
    /// The slug used in subjects and metrics (`malformed_json`, `missing_field`, ...).
    pub fn slug(self) -> &'static str {
        match self {
            RejectKind::MalformedJson => "malformed_json",
            RejectKind::TooLarge => "too_large",
            RejectKind::UnknownType => "unknown_type",
            RejectKind::MissingField => "missing_field",
            RejectKind::WrongType => "wrong_type",
            RejectKind::InvalidValue => "invalid_value",
            RejectKind::UnsupportedCurrency => "unsupported_currency",
        }
    }
}

/// A rejected event: which field, and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct Rejection {
    pub kind: RejectKind,
    /// The field's path in the event (`amount`, `lines[3].target`); `event` when the
    /// problem is the whole event.
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(kind: RejectKind, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            kind,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Operating errors of the log.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot open the log at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("the log at {path} is in use by another process (a running `pacer serve` or `pacer ingest`?)")]
    Locked { path: PathBuf },
    #[error("{path} holds a log of format {found:?}, which this version of pacer cannot read")]
    Format { path: PathBuf, found: String },
    #[error("log storage failed while {doing}: {source}")]
    Storage {
        doing: &'static str,
        source: sled::Error,
    },
    #[error("an earlier append to the log at {path} failed part-way; reopen the log before appending again")]
    Poisoned { path: PathBuf },
    #[error("the log at {path} was created with {key} = {stored:?}, but the configuration says {configured:?}; use the configuration the log was created with")]
    OrgMismatch {
        path: PathBuf,
        key: &'static str,
        stored: String,
        configured: String,
    },
    #[error("log record at seq {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("cannot encode the event {event_id:?} for the log: {reason}")]
    Encode { event_id: String, reason: String },
}

/// Operating errors of the configuration file.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Operating errors of an ingest run (bad lines are not errors: they are counted and
/// reported, and the run goes on).
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("cannot read {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Operating errors of the NATS side (`pacer serve`, `pacer publish`), each with what
/// was being done and where.
#[derive(Debug, Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("cannot read the NATS credentials in {}: {reason}", path.display())]
    Credentials { path: PathBuf, reason: String },
    #[error("JetStream stream {stream}: {doing}: {reason}")]
    Stream {
        stream: String,
        doing: &'static str,
        reason: String,
    },
    #[error("JetStream consumer {consumer}: {doing}: {reason}")]
    Consumer {
        consumer: String,
        doing: &'static str,
        reason: String,
    },
    #[error("publishing to {subject}: {reason}")]
    Publish { subject: String, reason: String },
    #[error("the query service: {reason}")]
    Service { reason: String },
    #[error("subscribing to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("cannot serve HTTP on {addr}: {reason}")]
    Http { addr: String, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("the engine lease in KV bucket {bucket}: {doing}: {reason}")]
    Lease {
        bucket: String,
        doing: &'static str,
        reason: String,
    },
    #[error("the engine lease: KV bucket {bucket} keeps a lease {bucket_s} s, [serve] lease_ttl_s is {configured_s}; every engine of a deployment must use the same (to change it, stop them all and delete the bucket)")]
    LeaseTtl {
        bucket: String,
        bucket_s: u64,
        configured_s: u64,
    },
    #[error("the engine lease in KV bucket {bucket} is lost: {reason}; this engine takes no more events (start it again: it waits as the standby)")]
    LeaseLost { bucket: String, reason: String },
    #[error(transparent)]
    Log(#[from] LogError),
}
