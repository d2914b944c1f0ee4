//! Request connections behind a transaction-mode pooler (`RAPPORT_DB_POOLER=transaction`).
//!
//! PgBouncer in transaction mode hands each transaction whichever server session is free,
//! so a `SET` a client makes lands on one server session and stays there for the next
//! client, and a client's next statement may run on a session that never saw it. The request
//! pool therefore sets nothing: the pooled sessions must start with the request limits and
//! settings from the server side (PgBouncer's `connect_query`, or `ALTER ROLE … SET`), and
//! startup checks that they do, through the pooler, before serving. Everything that needs a
//! session of its own (migrations, background jobs, LISTEN) goes past the pooler
//! (`RAPPORT_DIRECT_DATABASE_URL`).

use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;

use super::{Session, StartupRetry, connect_with_timeout, is_fatal, one_line, set_statements};
use crate::config::DatabaseSettings;

/// Checks that a session opened through the pooler (`url`) starts with every setting a
/// request session needs ([`Session::settings`]). The error names each that differs and
/// gives the line that sets them all.
pub async fn check_pooled_session(settings: &DatabaseSettings) -> Result<(), String> {
    #[derive(diesel::QueryableByName)]
    struct Shown {
        #[diesel(sql_type = Nullable<Text>)]
        value: Option<String>,
    }
    let needed = Session::new(
        settings.statement_timeout,
        settings.idle_in_transaction_timeout,
    )
    .settings();
    let url = &settings.url;
    // The pooler may come up after the service (as the server may, see `prepare`).
    let mut retry = StartupRetry::new(settings.startup_timeout);
    let mut conn = loop {
        let reason = match connect_with_timeout(url.expose(), settings.connect_timeout, "").await {
            Ok(conn) => break conn,
            Err(e) => one_line(&e.to_string()),
        };
        tracing::warn!(reason = %reason, "the pooler is not reachable yet");
        if is_fatal(&reason) || !retry.wait().await {
            return Err(format!("cannot connect to {url}: {reason}"));
        }
    };
    // pg_trgm's setting exists once the extension's library is loaded, which its first
    // function call does.
    diesel::sql_query("SELECT word_similarity('a', 'a')")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot read through the pooler: {e}"))?;
    let mut wrong = Vec::new();
    for (name, value) in &needed {
        // `pg_settings` shows times in their base unit (ms).
        let shown: Shown = diesel::sql_query(
            "SELECT coalesce((SELECT setting FROM pg_settings WHERE name = $1), \
                             current_setting($1, true)) AS value",
        )
        .bind::<Text, _>(*name)
        .get_result(&mut conn)
        .await
        .map_err(|e| format!("cannot read {name} through the pooler: {e}"))?;
        let same = match (&shown.value, name.ends_with("threshold")) {
            (Some(got), true) => got.parse::<f64>().ok() == value.parse::<f64>().ok(),
            (Some(got), false) => got == value,
            (None, _) => false,
        };
        if !same {
            wrong.push(format!(
                "{name} is {} (needed: {value})",
                shown.value.as_deref().unwrap_or("unset")
            ));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "RAPPORT_DB_POOLER=transaction: sessions through {url} do not start as requests need \
         ({}); Rapport sets nothing on a pooled session, so set them for the pooled \
         sessions on the server side, e.g. PgBouncer's connect_query = '{}' (or ALTER ROLE \
         … IN DATABASE … SET each)",
        wrong.join(", "),
        set_statements(&needed)
    ))
}
