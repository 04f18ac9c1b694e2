//! One module per subcommand; what they share (opening the log, the wall clock,
//! rebuilding the projections with a progress bar) is in [`common`].

pub mod ack;
pub mod alerts;
pub mod bench;
pub mod cluster;
pub mod common;
pub mod comp;
pub mod config;
pub mod demo;
pub mod digest;
pub mod dlq;
pub mod gateway;
pub mod ingest;
pub mod log;
pub mod plan;
pub mod publish;
pub mod query_bench;
pub mod replay;
pub mod report;
pub mod serve;
pub mod subscribe;
pub mod tick;
pub mod user;
pub mod web_bench;
