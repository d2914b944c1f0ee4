//! One integration test binary: the real app over HTTP against real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod analytics;
mod api_clients;
mod audit;
mod auth;
mod cli;
mod customer_lists;
mod customers;
mod docs;
mod errors;
mod events;
mod exports;
mod hostile;
mod idempotency;
mod import_reports;
mod import_rows;
mod imports;
mod interactions;
mod loyalty;
mod loyalty_points;
mod openapi;
mod operations;
mod outage;
mod owned_access;
mod pipeline;
mod purchases;
mod rate_limits;
mod schema;
mod statements;
mod surveys;
mod tokens;
mod uploads;
mod users;
mod webhooks;
