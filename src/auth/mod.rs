//! Authentication and permissions: bearer tokens, the token exchange, roles and scopes.

pub mod changes;
pub mod jwt;
pub mod keyring;
pub mod ownership;
pub mod password;
mod principal;
pub mod revoked;
mod scopes;
pub mod store;
pub mod throttle;

pub use ownership::{AccessLevel, CustomerAccess, Held};
pub use principal::{AccessCache, Actor, Principal, authenticate, identify};
pub use scopes::{Role, Scope, Scopes};
