//! Validated value types shared by several areas: once parsed, a value is valid everywhere.

mod channel;
mod churn_cause;
mod country;
mod duration;
mod email;
mod money;
mod password;
mod phone;
mod rate_limit;
mod stored_text;
mod text;
mod text_enum;

pub use channel::Channel;
pub use churn_cause::ChurnCause;
pub use country::{country_code, currency_code};
pub use duration::{parse_duration, show_duration};
pub use email::Email;
pub use money::{MAX_AMOUNT, money};
pub use password::Password;
pub use phone::{Phone, normalise_phone};
pub use rate_limit::RateLimit;
pub use text::{clearable_text, optional_text, required_text};
