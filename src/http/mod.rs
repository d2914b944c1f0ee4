//! What every resource shares, built once: errors as problem+json, JSON and query
//! extraction, cursor pagination, ETag/If-Match, idempotency keys, request ids, metrics.

pub mod body;
pub mod caller;
pub mod client_address;
pub mod consistency;
pub mod error;
pub mod etag;
pub mod fallback;
pub mod idempotency;
pub mod in_flight;
pub mod input;
pub mod json;
pub mod limiter;
pub mod metrics;
pub mod pagination;
pub mod patch;
pub mod query;
pub mod rate_limit;
pub mod request_id;
pub mod response;
pub mod shared_limits;
pub mod tabular;
pub mod validation;
pub mod write_position;

pub use error::{ApiError, ErrorCode, FieldError, Problem};
