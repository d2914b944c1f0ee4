//! Authentication and permissions: bearer tokens, the token exchange, roles and scopes.

mod json;
pub mod jwt;
pub mod keyring;
pub mod ownership;
pub mod password;
mod principal;
mod revoked;
mod routes;
mod scopes;
pub mod throttle;

pub use ownership::{AccessLevel, CustomerAccess, Held};
pub use principal::{AccessCache, Actor, Principal, authenticate};
pub use routes::configure;
pub use scopes::{Role, Scope, Scopes};
