//! Customer value analytics (DOMAIN.md sections 2 and 5): Pareto, value tiers, the value
//! matrix, RFM, segments and churn risk.
//!
//! Every live customer's figures are computed together, set-wise in one SQL statement
//! ([`store::compute`]), by the background job every `RAPPORT_ANALYTICS_INTERVAL` and on
//! demand (`POST /v1/analytics/recompute`), under a lock so that instances never compute at
//! once. The definitions, with the settings' defaults in brackets (all configurable at
//! `/v1/analytics/settings`):
//!
//! - **Value**: net revenue (amount − refunded) or profit (amount − refunded − cost, over
//!   the purchases with a cost) of the customer's purchases in the settings' currency over
//!   the window [365 days] ending now.
//! - **Value tier**: with N live customers and `above` the number of them whose value is
//!   strictly greater, a customer with a positive value is `key` when above × 100 < key % × N
//!   [5], else `development` under [20] %, else `maintenance` under [50] %; the rest, and
//!   everyone without a positive value, is `opportunity`. Ties share a tier.
//! - **Future value**: the purchases expected over the next window, max(0, 2 × recent +
//!   (recent − earlier)) = max(0, 3 × recent − earlier), where recent and earlier count the
//!   purchases in the window's recent and earlier halves, times the window's mean purchase
//!   value (value ÷ purchases), rounded half away from zero. A steady customer's future value
//!   is their current value; one whose purchases stopped has none.
//! - **Value matrix**: a current (future) value is high when it is positive and fewer than
//!   [20] % of customers have a strictly greater one: `vip` high and high, `improve` low now
//!   and high in future, `maintain` high now and low in future, `abandon` low and low.
//! - **RFM** (customers who ever bought in the currency, B of them): each score is
//!   1 + ⌊5 × beaten ÷ B⌋ where beaten counts the buyers strictly worse: an earlier last
//!   purchase (recency), fewer purchases in the window (frequency), less value in the window
//!   (monetary). Tied customers share a score; 5 beats at least 80 % of buyers.
//! - **Churn risk** (customers past `prospect` and not `churned`): the sum, at most 100, of
//!   `purchase_frequency_falling` 25 (fewer purchases in the recent half-window than half of
//!   those the customer's own earlier rate predicts: purchases before the recent half ×
//!   half-window ÷ time from the first purchase to the recent half; needs two purchases and
//!   a half-window of history before it), `purchase_overdue` 25 (more days since the last
//!   purchase than twice the mean interval between the customer's purchases, at least one
//!   day; with a single purchase, more than the window), `no_recent_contact` 15 (no
//!   interaction in [90] days), `open_complaints` 15 per open or in-progress complaint (at
//!   most 30), `dissatisfied` 20 (the latest NPS or CSAT answer, whichever came last, is a
//!   detractor's 0–6 or a CSAT of 1–3). At risk from [50]. When the settings enable it, each
//!   computation moves the customers at risk in `acquaintance`, `exploration`, `stable` or
//!   `commitment` into `dissolution`, with the score and reasons as the stage change's reason,
//!   once per episode of risk: from the computation that first finds the customer at risk
//!   (`at_risk_since`) while they stay at risk. One moved into `dissolution` since (by anyone)
//!   is not moved again, so staff who move them back keep the last word.
//! - **Value aspects**: m (the value over the 12 months before the computation) and the
//!   window's net sales per customer, every buyer's sales and the currency's retention, from
//!   the sums of `aspect_sums.sql` that the value endpoint uses too; the arithmetic is
//!   [`aspects`], shared likewise.
//! - **Recommended relationship level** (DOMAIN.md section 9): the course's matrix of
//!   customer count (few under [5] %, medium under [20] % by value rank, else many) against
//!   margin (low under [10] %, high from [30] %): rank 1 + count (0, 1, 2) + margin (0, 1, 2)
//!   of `basic` … `partnership`; flagged when the customer's level is below it.
//! - **Volume × loyalty**: the share of the last [12] periods of [30] days with a purchase,
//!   and the quadrant of a large (`key` or `development`) or small customer, loyal from
//!   [50] %.

pub mod json;
mod pareto;
mod routes;
pub mod rules;
pub mod store;
pub mod win_back;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::audit;
use crate::auth::Actor;
use crate::customers::figures::{
    ChurnReason, ChurnReasonDetail, ChurnRisk, CustomerAnalytics, Rfm, ValueClass, ValueTier,
};
use crate::customers::json::LifecycleStage;
use crate::customers::store::CustomerRecord;
use crate::db::DbPool;
use crate::http::error::{ApiError, FieldError};
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};
use crate::state::AppState;
use json::{Computation, Recomputed, Settings, SettingsInput};

pub use routes::configure;

/// Customers moved into `dissolution` per statement and transaction.
const MOVE_CHUNK: usize = 2_000;

/// Changed figures written per statement and transaction.
const WRITE_CHUNK: usize = 10_000;

/// The stages a customer at risk may be moved out of into `dissolution`.
pub const MOVABLE: [LifecycleStage; 4] = [
    LifecycleStage::Acquaintance,
    LifecycleStage::Exploration,
    LifecycleStage::Stable,
    LifecycleStage::Commitment,
];

pub fn settings_view(row: &store::SettingsRow) -> Settings {
    let input = row.input();
    Settings {
        currency: input.currency,
        measure: input.measure,
        window_days: input.window_days,
        key_percent: input.key_percent,
        development_percent: input.development_percent,
        maintenance_percent: input.maintenance_percent,
        high_value_percent: input.high_value_percent,
        churn_threshold: input.churn_threshold,
        contact_days: input.contact_days,
        move_to_dissolution: input.move_to_dissolution,
        retention_rate: input.retention_rate,
        discount_rate: input.discount_rate,
        influential_referrals: input.influential_referrals,
        few_customers_percent: input.few_customers_percent,
        medium_customers_percent: input.medium_customers_percent,
        low_margin_percent: input.low_margin_percent,
        high_margin_percent: input.high_margin_percent,
        callback_days: input.callback_days,
        loyalty_periods: input.loyalty_periods,
        loyalty_period_days: input.loyalty_period_days,
        loyal_percent: input.loyal_percent,
        last_computation: row.computed_at.map(|computed_at| Computation {
            computed_at,
            customers: row.computed_customers.unwrap_or(0),
            duration_ms: row.computed_ms.unwrap_or(0),
        }),
        updated_at: row.updated_at,
        version: row.version,
    }
}

fn validate(input: &SettingsInput) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Err(e) = crate::domain::currency_code(&input.currency) {
        errors.push(FieldError::new("currency", e));
    }
    let ranges = [
        ("window_days", input.window_days, 28, 3660),
        ("key_percent", input.key_percent, 1, 100),
        ("development_percent", input.development_percent, 1, 100),
        ("maintenance_percent", input.maintenance_percent, 1, 100),
        ("high_value_percent", input.high_value_percent, 1, 100),
        ("churn_threshold", input.churn_threshold, 1, 100),
        ("contact_days", input.contact_days, 1, 3660),
        (
            "influential_referrals",
            input.influential_referrals,
            1,
            10000,
        ),
        ("few_customers_percent", input.few_customers_percent, 1, 100),
        (
            "medium_customers_percent",
            input.medium_customers_percent,
            1,
            100,
        ),
        ("low_margin_percent", input.low_margin_percent, 0, 100),
        ("high_margin_percent", input.high_margin_percent, 1, 100),
        ("loyalty_periods", input.loyalty_periods, 1, 60),
        ("loyalty_period_days", input.loyalty_period_days, 1, 366),
        ("loyal_percent", input.loyal_percent, 1, 100),
    ];
    for (field, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            errors.push(FieldError::new(
                field,
                format!("must be from {min} to {max}"),
            ));
        }
    }
    let days = &input.callback_days;
    for (field, value) in [
        ("callback_days.accountable", days.accountable),
        ("callback_days.proactive", days.proactive),
        ("callback_days.partnership", days.partnership),
    ] {
        if value.is_some_and(|d| !(1..=365).contains(&d)) {
            errors.push(FieldError::new(
                field,
                "must be from 1 to 365, or null (none)",
            ));
        }
    }
    errors.extend(rules::rates(input.retention_rate, input.discount_rate));
    if (1..=100).contains(&input.medium_customers_percent)
        && input.few_customers_percent >= input.medium_customers_percent
    {
        errors.push(FieldError::new(
            "medium_customers_percent",
            "must be greater than few_customers_percent",
        ));
    }
    if (1..=100).contains(&input.high_margin_percent)
        && input.low_margin_percent >= input.high_margin_percent
    {
        errors.push(FieldError::new(
            "high_margin_percent",
            "must be greater than low_margin_percent",
        ));
    }
    if errors.is_empty() && input.key_percent >= input.development_percent {
        errors.push(FieldError::new(
            "development_percent",
            "must be greater than key_percent",
        ));
    }
    if errors.is_empty() && input.development_percent >= input.maintenance_percent {
        errors.push(FieldError::new(
            "maintenance_percent",
            "must be greater than development_percent",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Replaces the settings (versioned, audited). They apply from the next computation.
pub async fn set_settings(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    input: SettingsInput,
) -> Result<Settings, ApiError> {
    validate(&input)?;
    conn.transaction(async |conn| {
        let before = store::lock_settings(conn).await?;
        if_match.check(before.version)?;
        if before.input() == input {
            return Ok(settings_view(&before));
        }
        let after = store::update_settings(conn, &input).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "analytics.settings_changed",
                "analytics_settings",
                "settings",
                audit::diff(&before.input(), &after.input()),
            ),
        )
        .await?;
        Ok(settings_view(&after))
    })
    .await
}

/// Computes every live customer's figures now, and moves the customers at risk into
/// `dissolution` when the settings ask for it. `409` while another computation runs.
///
/// The figures are computed in one read-only snapshot (which holds the lock) and only those
/// that changed are written, [`WRITE_CHUNK`] rows per transaction on a second connection;
/// the moves too go [`MOVE_CHUNK`] customers per transaction. No transaction that writes
/// lasts long, so none holds back the event feed and webhooks (an event is served once every
/// transaction older than its own has ended) while a million customers are computed.
pub async fn recompute(pool: &DbPool, actor: &Actor) -> Result<Recomputed, ApiError> {
    use futures_util::TryStreamExt;
    let started = std::time::Instant::now();
    let mut reader = pool.get().await?;
    let mut writer = pool.get().await?;
    let writer = &mut *writer;
    reader
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |reader| {
            if !store::try_lock(reader).await? {
                return Err(ApiError::conflict(
                    "a computation is running; its figures will be served when it ends",
                ));
            }
            // Its aggregates and five rankings of every customer spill to disk at the
            // default 4 MB (the bench: 25 s against 18 s); one computation runs at a time.
            store::set_work_mem(reader).await?;
            let used = store::settings(reader).await?.input();
            let now = store::transaction_time(reader).await?;
            let customers = store::live_customers(reader).await?;
            // The default Pareto rankings and the breakdown are kept in the slot not served,
            // served from when `finish` records this computation.
            let slot = store::next_slot(writer).await?;
            store::clear_slot(writer, slot).await?;
            let kept = kept_specs(&used, now);
            // Read and write at once: the reader's statement goes on producing rows while
            // the writer's connection writes the chunk before (at most two chunks wait).
            let (chunks, mut to_write) = tokio::sync::mpsc::channel::<Write>(2);
            // When the figures were all read (ms from the start): the rankings take the rest
            // of the read, which the log reports.
            let figures_read = std::sync::atomic::AtomicI64::new(0);
            let figures_read = &figures_read;
            // The reader owns the sender: when it is done, the writer's loop ends.
            let read = async move {
                let mut totals = store::Totals::default();
                {
                    let mut rows = store::changed(reader, now).await?;
                    let mut chunk = Vec::with_capacity(WRITE_CHUNK);
                    while let Some(row) = rows.try_next().await? {
                        let Some(figures) = row.figures else {
                            if let Some(json) = row.totals {
                                totals = serde_json::from_str(&json).map_err(ApiError::internal)?;
                            }
                            continue;
                        };
                        chunk.push(figures);
                        if chunk.len() == WRITE_CHUNK {
                            let full =
                                std::mem::replace(&mut chunk, Vec::with_capacity(WRITE_CHUNK));
                            if chunks.send(Write::Figures(full)).await.is_err() {
                                // The writer stopped; its error is the one to report.
                                return Ok(totals);
                            }
                        }
                    }
                    if !chunk.is_empty() && chunks.send(Write::Figures(chunk)).await.is_err() {
                        // As above: the writer has an error to report.
                        return Ok(totals);
                    }
                }
                figures_read.store(millis(started), std::sync::atomic::Ordering::Relaxed);
                // The rankings, from the same snapshot as the figures.
                for spec in kept {
                    let mut lines = store::kept_ranking(reader, &spec).await?;
                    let mut chunk = store::Lines::default();
                    let mut summary = store::RankingSummary::default();
                    while let Some(line) = lines.try_next().await? {
                        match (
                            line.rank,
                            line.customer_id,
                            line.value,
                            line.purchases,
                            line.cumulative,
                        ) {
                            (
                                Some(rank),
                                Some(id),
                                Some(value),
                                Some(purchases),
                                Some(cumulative),
                            ) => {
                                chunk.rank.push(rank);
                                chunk.customer_id.push(id);
                                chunk.value.push(value);
                                chunk.purchases.push(purchases);
                                chunk.cumulative.push(cumulative);
                                let total = line.total.unwrap_or(0);
                                summary.crossed(rank, value, cumulative, total);
                            }
                            _ => {
                                summary.n = line.n.unwrap_or(0);
                                summary.total = line.total.unwrap_or(0);
                                summary.band_values = line.band_values.unwrap_or_default();
                                summary.sales_customers = line.sales_customers.unwrap_or_default();
                            }
                        }
                        if chunk.len() == WRITE_CHUNK {
                            let full = std::mem::take(&mut chunk);
                            if chunks
                                .send(Write::Lines(spec.ranking(), full))
                                .await
                                .is_err()
                            {
                                return Ok(totals);
                            }
                        }
                    }
                    if !chunk.is_empty()
                        && chunks
                            .send(Write::Lines(spec.ranking(), chunk))
                            .await
                            .is_err()
                    {
                        return Ok(totals);
                    }
                    if chunks.send(Write::Ranking(spec, summary)).await.is_err() {
                        return Ok(totals);
                    }
                }
                Ok::<store::Totals, ApiError>(totals)
            };
            let write = async {
                let mut changed = 0;
                while let Some(next) = to_write.recv().await {
                    match next {
                        Write::Figures(chunk) => changed += store::write(writer, &chunk).await?,
                        Write::Lines(ranking, lines) => {
                            store::write_lines(writer, slot, ranking, &lines).await?;
                        }
                        Write::Ranking(spec, summary) => {
                            store::write_ranking(writer, slot, &spec, now, &summary).await?;
                        }
                    }
                }
                Ok::<i64, ApiError>(changed)
            };
            let (totals, changed) = futures_util::future::try_join(read, write).await?;
            store::analyze_slot(writer, slot).await?;
            let rankings_ms =
                millis(started) - figures_read.load(std::sync::atomic::Ordering::Relaxed);
            let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            store::finish(writer, now, &used, customers, took, totals).await?;
            let moved = if used.move_to_dissolution {
                move_at_risk(writer, actor, used.churn_threshold as i16).await?
            } else {
                0
            };
            // The breakdown, once the figures it counts by are written and the customers at
            // risk moved (served from when written: until then, counted live).
            let segments_started = std::time::Instant::now();
            for group in [false, true] {
                store::keep_segments(writer, slot, now, used.churn_threshold as i16, group).await?;
            }
            tracing::info!(
                rankings_ms,
                segments_ms = millis(segments_started),
                "analytics kept the default Pareto rankings and the segment breakdown"
            );
            Ok(Recomputed {
                computation: Computation {
                    computed_at: now,
                    customers,
                    duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                },
                changed,
                moved_to_dissolution: moved,
            })
        })
        .await
}

/// Milliseconds since `since`.
fn millis(since: std::time::Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// What the computation's reader hands its writer.
enum Write {
    /// Changed figures, as [`store::Changed::figures`].
    Figures(Vec<String>),
    /// Lines of the kept ranking with this key.
    Lines(i16, store::Lines),
    /// A kept ranking's summary, once its lines are all sent.
    Ranking(store::KeptSpec, store::RankingSummary),
}

/// The Pareto rankings a computation as of `now` keeps: the default period's (the 365 days
/// ending with `now`'s UTC day, as `GET /v1/analytics/pareto` ranks by default) in the
/// settings' currency, by revenue and (when the settings' measure is profit) by profit, of
/// customers and of groups.
fn kept_specs(used: &SettingsInput, now: DateTime<Utc>) -> Vec<store::KeptSpec> {
    use crate::customers::figures::Measure;
    let (from, to) = rules::default_period(now.date_naive());
    let mut measures = vec![Measure::Revenue];
    if used.measure == Measure::Profit {
        measures.push(Measure::Profit);
    }
    measures
        .into_iter()
        .flat_map(|measure| {
            [false, true].map(|group| store::KeptSpec {
                measure,
                group,
                currency: used.currency.clone(),
                from,
                to,
            })
        })
        .collect()
}

/// Moves the customers at risk from `threshold` who are in a [`MOVABLE`] stage into
/// `dissolution`, once per episode of risk, [`MOVE_CHUNK`] per transaction. Returns how
/// many moved.
async fn move_at_risk(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    threshold: i16,
) -> Result<i64, ApiError> {
    let movable = MOVABLE.map(LifecycleStage::as_str);
    let moves: Vec<(Uuid, String)> = store::dissolution_candidates(conn, threshold, &movable)
        .await?
        .into_iter()
        .map(|(id, score, reasons)| {
            (
                id,
                format!("churn risk {score} of 100: {}", reasons.join(", ")),
            )
        })
        .collect();
    let mut moved = 0;
    for chunk in moves.chunks(MOVE_CHUNK) {
        moved += conn
            .transaction(async |conn| {
                crate::customers::move_stages(
                    conn,
                    actor,
                    chunk,
                    &MOVABLE,
                    LifecycleStage::Dissolution,
                    // The job sees signs of leaving (no purchase, complaints, low scores),
                    // not their cause: `other`, until staff learn why.
                    Some(crate::domain::ChurnCause::Other),
                )
                .await
            })
            .await? as i64;
    }
    Ok(moved)
}

/// The background job: a computation every `every`, on every instance (the lock lets one
/// compute at a time; the others skip their turn).
pub async fn schedule(state: actix_web::web::Data<AppState>, every: Duration) {
    let actor = Actor::Service("analytics".to_owned());
    loop {
        tokio::time::sleep(every).await;
        match recompute(&state.jobs, &actor).await {
            Ok(r) => tracing::info!(
                customers = r.computation.customers,
                duration_ms = r.computation.duration_ms,
                moved_to_dissolution = r.moved_to_dissolution,
                "analytics computed"
            ),
            Err(err) if err.problem().status == 409 => {
                tracing::debug!("analytics computation skipped: another instance computes");
            }
            Err(err) => tracing::warn!(error = ?err, "the analytics computation failed"),
        }
    }
}

/// The figures of a churn score, in words, with their points.
pub fn churn_risk(row: &store::Row, used: &SettingsInput, at: DateTime<Utc>) -> ChurnRisk {
    let days_since = row
        .last_purchase_at
        .map(|t| (at - t).num_seconds() as f64 / 86_400.0);
    let reasons = row
        .churn_reasons
        .iter()
        .filter_map(|r| r.parse::<ChurnReason>().ok())
        .map(|reason| {
            let (points, detail) = match reason {
                ChurnReason::PurchaseFrequencyFalling => (
                    25,
                    format!(
                        "{} purchases in the last {} days, where the customer's earlier rate \
                         predicts {:.1}",
                        row.purchases_recent,
                        used.window_days / 2,
                        row.expected_recent.unwrap_or(0.0)
                    ),
                ),
                ChurnReason::PurchaseOverdue => (
                    25,
                    match row.mean_interval_days {
                        Some(mean) => format!(
                            "no purchase for {:.0} days; the mean interval is {mean:.1} days",
                            days_since.unwrap_or(0.0)
                        ),
                        None => format!(
                            "a single purchase, {:.0} days ago (the window is {} days)",
                            days_since.unwrap_or(0.0),
                            used.window_days
                        ),
                    },
                ),
                ChurnReason::NoRecentContact => (
                    15,
                    match row.last_contact_at {
                        Some(t) => format!(
                            "last contact {} days ago (over {})",
                            (at - t).num_days(),
                            used.contact_days
                        ),
                        None => "no contact on record".to_owned(),
                    },
                ),
                ChurnReason::OpenComplaints => (
                    15 * row.open_complaints.min(2) as i16,
                    format!("{} open complaints", row.open_complaints),
                ),
                ChurnReason::Dissatisfied => {
                    let answers: Vec<String> = [
                        row.latest_nps.map(|n| format!("NPS {n}")),
                        row.latest_csat.map(|c| format!("CSAT {c}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    (20, format!("latest answers: {}", answers.join(", ")))
                }
            };
            ChurnReasonDetail {
                reason,
                points,
                detail,
            }
        })
        .collect();
    ChurnRisk {
        score: row.churn_score,
        at_risk: i32::from(row.churn_score) >= used.churn_threshold,
        at_risk_since: row.at_risk_since,
        reasons,
    }
}

/// A customer's lifetime potential and demand contribution, and what they were computed
/// from: the one definition of the arithmetic, for the value endpoint, the analytics rows,
/// the segments and the Pareto ranking. `m` is the value over the last 12 months in the
/// settings' measure, `sales` the net sales in the window; `totals` are the currency's.
pub struct Aspects {
    pub lifetime_potential: Option<i64>,
    pub demand_contribution_percent: Option<f64>,
    /// r as used, and as measured (before the cap) when measured.
    pub retention_rate: Option<f64>,
    pub measured_retention_rate: Option<f64>,
}

pub fn aspects(
    settings: &SettingsInput,
    m: Option<i64>,
    sales: i64,
    totals: &store::Totals,
) -> Aspects {
    use json::RetentionRate;
    let d = settings.discount_rate;
    let (retention, measured) = match settings.retention_rate {
        RetentionRate::Fixed(r) => (Some(r), None),
        RetentionRate::Measured(_) => {
            let rate = rules::measured_retention(totals.retained, totals.last_year_buyers);
            (rate.map(|r| rules::capped(r, d)), rate)
        }
    };
    Aspects {
        lifetime_potential: m
            .zip(retention)
            .and_then(|(m, r)| rules::lifetime_potential(m, r, d)),
        demand_contribution_percent: rules::percent(sales, totals.all_sales),
        retention_rate: retention,
        measured_retention_rate: measured,
    }
}

/// A customer's figures as the API shows them (`totals`: the computation's), with their
/// credit grade as it stands.
pub fn view(
    row: &store::Row,
    credit_grade: Option<crate::customers::json::CreditGrade>,
    used: &SettingsInput,
    computed_at: DateTime<Utc>,
    totals: &store::Totals,
) -> CustomerAnalytics {
    use crate::customers::figures::LoyaltyQuadrant;
    let value_aspects = aspects(used, row.year_value, row.window_sales, totals);
    let rfm = match (
        row.recency_score,
        row.frequency_score,
        row.monetary_score,
        row.last_purchase_at,
    ) {
        (Some(recency), Some(frequency), Some(monetary), Some(last_purchase_at)) => Some(Rfm {
            recency,
            frequency,
            monetary,
            code: format!("{recency}{frequency}{monetary}"),
            last_purchase_at,
        }),
        _ => None,
    };
    CustomerAnalytics {
        computed_at,
        currency: used.currency.clone(),
        measure: used.measure,
        value: row.value,
        purchases: row.purchases,
        value_tier: row.value_tier.parse().unwrap_or(ValueTier::Opportunity),
        future_value: row.future_value,
        value_class: row.value_class.parse().unwrap_or(ValueClass::Abandon),
        rfm,
        churn_risk: churn_risk(row, used, computed_at),
        lifetime_potential: value_aspects.lifetime_potential,
        demand_contribution_percent: value_aspects.demand_contribution_percent,
        credit_grade,
        margin_percent: row.margin_percent,
        recommended_relationship_level: row
            .recommended_relationship_level
            .as_deref()
            .and_then(|l| l.parse().ok()),
        relationship_below_recommended: row.relationship_below_recommended,
        loyalty_index: rules::rate(
            i64::from(row.loyalty_periods_bought),
            i64::from(used.loyalty_periods),
        )
        .unwrap_or(0.0),
        loyalty_quadrant: row
            .loyalty_quadrant
            .parse()
            .unwrap_or(LoyaltyQuadrant::SmallDisloyal),
    }
}

/// The figures of some customers, each given with their credit grade, as of the last
/// computation, by customer (one query). Customers not computed yet are absent.
pub async fn for_customers(
    conn: &mut AsyncPgConnection,
    customers: &[(Uuid, Option<crate::customers::json::CreditGrade>)],
) -> Result<HashMap<Uuid, CustomerAnalytics>, ApiError> {
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = store::rows(conn, customers).await?;
    // Every row carries the same computation: its settings are read once.
    let Some(first) = rows.first() else {
        return Ok(HashMap::new());
    };
    let Some((at, used)) = computation(first) else {
        return Ok(HashMap::new());
    };
    Ok(rows
        .iter()
        .map(|c| {
            let figures = view(&c.row, c.credit_grade, &used, at, &c.totals);
            (c.row.customer_id, figures)
        })
        .collect())
}

/// One customer with their figures as of the last computation (`None`: not computed yet),
/// read in one statement.
pub async fn customer_with_figures(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(CustomerRecord, Option<CustomerAnalytics>)>, ApiError> {
    let found = store::customer_with_row(conn, id).await?;
    Ok(found.map(|(customer, computed)| {
        let figures = computed.and_then(|c| {
            let (at, used) = computation(&c)?;
            Some(view(&c.row, c.credit_grade, &used, at, &c.totals))
        });
        (customer, figures)
    }))
}

/// When and with which settings a stored row was computed.
fn computation(computed: &store::Computed) -> Option<(DateTime<Utc>, SettingsInput)> {
    let used = serde_json::from_str::<SettingsInput>(computed.computed_with.as_deref()?).ok()?;
    Some((computed.computed_at?, used))
}

/// A customer's value figures per currency (DOMAIN.md section 5's aspects): cumulative
/// sales, average order value and profit contribution from the purchases, and the lifetime
/// potential and demand contribution from the analytics settings (measure, window, rates).
///
/// With `group`, the figures are of the customer's whole group (its root and every
/// organization below it, those `owner` manages when given); the referral figures stay the
/// customer's own.
pub async fn customer_value(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    group: bool,
    owner: Option<Uuid>,
) -> Result<crate::purchases::json::CustomerValue, ApiError> {
    use crate::customers::figures::{
        DemandBasis, GroupScope, KeyClass, LifetimeBasis, Measure, Referrals, RetentionSource,
    };
    use json::RetentionRate;
    let settings = store::settings(conn).await?.input();
    let measured = matches!(settings.retention_rate, RetentionRate::Measured(_));
    let (members, group) = if group {
        let ancestors = crate::customers::store::ancestors(conn, customer_id).await?;
        let root_id = ancestors.last().copied().unwrap_or(customer_id);
        let members = store::group_members(conn, root_id, owner).await?;
        let scope = GroupScope {
            root_id,
            customers: members.len() as i64,
        };
        (members, Some(scope))
    } else {
        (vec![customer_id], None)
    };
    let found = store::referrals(conn, customer_id, &settings).await?;
    let referrals = Referrals {
        referrals: found.referrals,
        referred_value: found.referred_value,
        currency: settings.currency.clone(),
        measure: settings.measure,
        window_days: settings.window_days,
        high_value: found.high_value,
        influential: found.influential,
        key_class: KeyClass::of(found.high_value, found.influential),
    };
    let sums = crate::purchases::store::value(conn, &members).await?;
    let aspects: HashMap<String, store::AspectRow> = store::value_aspects(
        conn,
        &members,
        settings.window_days,
        measured,
        settings.measure == Measure::Profit,
    )
    .await?
    .into_iter()
    .map(|a| (a.currency.clone(), a))
    .collect();
    let d = settings.discount_rate;
    let currencies = sums
        .into_iter()
        .map(|r| {
            let aspect = aspects.get(&r.currency);
            let m = aspect.and_then(|a| match settings.measure {
                Measure::Revenue => Some(a.year_value.unwrap_or(0)),
                Measure::Profit => a.year_value,
            });
            let (sales, totals) = aspect.map_or((0, store::Totals::default()), |a| {
                (
                    a.window_sales,
                    store::Totals {
                        all_sales: a.all_sales,
                        last_year_buyers: a.last_year_buyers,
                        retained: a.retained,
                    },
                )
            });
            let all_sales = totals.all_sales;
            let figured = self::aspects(&settings, m, sales, &totals);
            crate::purchases::json::CurrencyValue {
                average_order_value: rules::average(r.sales, r.purchases),
                purchases: r.purchases,
                cumulative_sales: r.sales,
                refunded: r.refunded,
                profit_contribution: r.profit,
                purchases_with_cost: r.with_cost,
                first_purchase_at: r.first_at,
                last_purchase_at: r.last_at,
                lifetime_potential: figured.lifetime_potential,
                lifetime_basis: LifetimeBasis {
                    measure: settings.measure,
                    yearly_value: m,
                    retention: if measured {
                        RetentionSource::Measured
                    } else {
                        RetentionSource::Fixed
                    },
                    retention_rate: figured.retention_rate,
                    measured_retention_rate: figured.measured_retention_rate,
                    discount_rate: d,
                },
                demand_contribution_percent: figured.demand_contribution_percent,
                demand_basis: DemandBasis {
                    window_days: settings.window_days,
                    sales,
                    all_sales,
                },
                currency: r.currency,
            }
        })
        .collect();
    Ok(crate::purchases::json::CustomerValue {
        customer_id,
        currencies,
        group,
        referrals,
    })
}
