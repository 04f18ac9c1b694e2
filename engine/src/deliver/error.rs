//! The deliverer's operating errors: its store (the log's database) and the
//! subscriptions and users files.

use thiserror::Error;

use crate::access::AccessError;

#[derive(Debug, Error)]
pub enum DeliverError {
    #[error("the deliveries store: {doing}: {reason}")]
    Store { doing: &'static str, reason: String },
    #[error(transparent)]
    Access(#[from] AccessError),
}
