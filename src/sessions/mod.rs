//! Signing in and out: `POST /v1/auth/token` (a password or client credentials for a
//! token), `POST /v1/auth/logout` and `GET /v1/me`. It reads the users and API clients it
//! signs in, so it sits beside them, above `auth`, which checks the tokens it issues.

mod json;
mod routes;

pub use routes::configure;
