//! Pacer's pure model of a sales organisation: the typed events, the buckets they
//! contribute to, the fold that turns the log into state, and the plan-vs-actual
//! figures (variance, attainment, pace, forecast) computed from that state.
//!
//! This crate does no I/O, reads no clock and spawns nothing. Time arrives inside
//! events; configuration arrives as arguments. Given the same events it always
//! produces the same state and the same figures, which is what lets the engine
//! rebuild everything from the log byte for byte.

pub mod alerts;
pub mod bucket;
pub mod comp;
pub mod config;
pub mod contribution;
pub mod digest;
pub mod draft;
pub mod error;
pub mod event;
pub mod fx;
pub mod model;
pub mod money;
pub mod pacing;
pub mod partition;
pub mod plan;
pub mod productivity;
pub mod report;
pub mod state;
pub mod time;

pub use bucket::Bucket;
pub use config::OrgConfig;
pub use contribution::{contributions, Contribution};
pub use error::ParseError;
pub use event::{Event, EventBody, Recorded};
pub use model::Model;
pub use money::{Currency, Money, Ratio};
pub use report::{report, Pace, ReportQuery, ReportRow};
pub use state::State;
pub use time::{Date, Month, Timestamp};
