//! Validated value types shared by several areas: once parsed, a value is valid everywhere.

mod channel;
mod country;
mod email;
mod money;
mod password;
mod phone;
mod text;
mod text_enum;

pub use channel::Channel;
pub use country::{country_code, currency_code};
pub use email::Email;
pub use money::{MAX_AMOUNT, money};
pub use password::Password;
pub use phone::normalise_phone;
pub use text::{clearable_text, optional_text, required_text};
