//! Pacer's engine: everything between the outside world and the pure model.
//!
//! It decodes the public JSON schema ([`wire`]), checks it against the deployment's
//! rules ([`validate`]), keeps the durable append-only log ([`log`]), runs ingest in
//! the brief's order ([`ingest`]), loads configuration ([`config`]), rebuilds the
//! projections from the log ([`replay`]), renders shared output ([`output`], and the
//! weekly [`digest`] as JSON, text or Markdown) and generates realistic demo
//! organisations ([`demo`]). [`nats`] is `pacer serve`: JetStream in, alerts, digests
//! and queries out.

pub mod access;
pub mod bench;
pub mod comp_file;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod digest;
pub mod dlq;
pub mod engine;
pub mod error;
pub mod http;
pub mod ingest;
pub mod kv_store;
pub mod local;
pub mod log;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod output;
pub mod plan_file;
pub mod plans;
pub mod replay;
pub mod subjects;
pub mod validate;
pub mod web;
pub mod webhook;
pub mod wire;
pub mod xlsx;

pub use config::Config;
pub use error::{ConfigError, IngestError, LogError, NatsError, RejectKind, Rejection};
pub use log::Log;
