//! Validated value types shared by several areas: once parsed, a value is valid everywhere.

mod email;
mod password;
mod text;

pub use email::Email;
pub use password::Password;
pub use text::{optional_text, required_text};
