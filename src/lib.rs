//! Rapport: a headless CRM, as a JSON REST API.
//!
//! One folder per domain area (routes, store, json side by side); `http` holds the
//! conventions every area shares; `startup` builds the application that `main` and the
//! tests both run.

pub mod analytics;
pub mod api_clients;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod customer_query;
pub mod customers;
pub mod db;
pub mod domain;
pub mod duplicates;
pub mod events;
pub mod exports;
pub mod http;
pub mod imports;
pub mod interactions;
pub mod journal;
pub mod loyalty;
pub mod openapi;
pub mod ops;
pub mod pipeline;
pub mod privacy;
pub mod purchases;
pub mod secrets;
pub mod service_tokens;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod surveys;
pub mod telemetry;
pub mod timeline;
pub mod users;
pub mod webhooks;

use actix_web::middleware::from_fn;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every route, for the app and for the OpenAPI document alike.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.configure(ops::configure).service(
        scope("/v1")
            .wrap(from_fn(http::idempotency::middleware))
            .configure(sessions::configure)
            .configure(users::configure)
            .configure(api_clients::configure)
            .configure(service_tokens::configure)
            .configure(customers::configure)
            .configure(duplicates::configure)
            .configure(contacts::configure)
            .configure(privacy::configure)
            .configure(customer_query::configure)
            .configure(interactions::configure)
            .configure(purchases::configure)
            .configure(loyalty::configure)
            .configure(surveys::configure)
            .configure(imports::configure)
            .configure(imports::mappings::configure)
            .configure(timeline::configure)
            .configure(exports::configure)
            .configure(events::configure)
            .configure(webhooks::configure)
            .configure(analytics::configure)
            .configure(pipeline::configure)
            .configure(audit::configure),
    );
}
