//! The errors of the pure model: values that do not parse into a domain type.
//!
//! Each message quotes the offending value; the engine's decoder adds the field name.

use thiserror::Error;

/// A value that is not a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("{value:?} is not an RFC 3339 timestamp ({reason})")]
    Time { value: String, reason: String },
    #[error("{value:?} is not a date (YYYY-MM-DD)")]
    Date { value: String },
    #[error("{value:?} is not an ISO week (YYYY-Www, such as 2026-W47)")]
    Week { value: String },
    #[error("{value:?} is not a month (YYYY-MM)")]
    Month { value: String },
    #[error("{value:?} is not an ISO-4217 currency with a minor unit")]
    Currency { value: String },
    #[error("{value:?} is not an exact amount: {reason}")]
    Decimal { value: String, reason: String },
    #[error("{value:?} is not a positive exchange rate with at most ten decimals")]
    Rate { value: String },
    #[error("{value:?} is not a bucket (total, new_customer, retention, geo:<region>, product:<line>, account:<customer>, activity:<kind>)")]
    Bucket { value: String },
}
