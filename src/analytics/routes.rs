use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::Utc;
use diesel_async::AsyncPgConnection;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    ChurnEntry, ChurnQuery, ParetoQuery, ParetoReport, ParetoRow, Recomputed, Segment, Segments,
    SegmentsQuery, Settings, SettingsInput, ValueQuery, WinBackGrouping, WinBackQuery,
    WinBackReport,
};
use super::store;
use crate::auth::{Principal, Scope};
use crate::customers::figures::{ChurnReason, Measure, ValueTier};
use crate::customers::json::LifecycleStage;
use crate::exports::{Filters, Format, refuse_paging, respond};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, comma_list, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings)
        .service(put_settings)
        .service(recompute)
        .service(pareto)
        .service(export_pareto)
        .service(segments)
        .service(churn_risk)
        .service(win_back)
        .service(customer_value);
}

/// A customer's value figures.
///
/// Per currency, as of now, four of the course's five aspects of a customer's value:
/// cumulative sales (net of refunds, with the number of purchases, first and last purchase
/// and average order value), profit contribution (over the purchases recorded with a cost),
/// lifetime potential m·r/(1 + d − r) and demand contribution (the share of every customer's
/// net sales in the analytics window). The last two follow the analytics settings (measure,
/// window, `retention_rate`, `discount_rate`); each says what it was computed from. Amounts
/// in minor units.
///
/// `group=true` gives the figures of the customer's whole group of organizations (its root
/// and every organization below it through `parent_id`, 10 levels at most), rolled up to
/// the root (`group` says which root and how many customers).
///
/// `referrals` are the customer's own: how many live customers name it as `referred_by_id`,
/// the value they brought in the analytics settings' measure, currency and window, and the
/// key-customer class: `high_value` (value tier `key`), `influential` (at least the
/// settings' `influential_referrals` referrals, or `influential` set by hand) or `dual`
/// (both).
///
/// With owned-only access, the customer must be one the caller manages, and a group's
/// figures are of the organizations in it they manage.
#[utoipa::path(
    tag = "Purchases",
    operation_id = "customer_value",
    params(("id" = Uuid, Path, description = "Customer id"), ValueQuery),
    security(("bearer" = ["purchases:read"])),
    responses(
        (status = 200, description = "The customer's value figures",
            body = crate::purchases::json::CustomerValue),
        (status = 400, description = "A malformed id or an unknown or malformed parameter",
            body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `purchases:read`", body = Problem,
            content_type = PROBLEM),
        (status = 404, description = "No such customer (or not one the caller may see)",
            body = Problem, content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/value")]
async fn customer_value(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesRead)?;
    let query: ValueQuery = query::parse(req.query_string())?;
    let mut conn = state.pool.get().await?;
    crate::customers::visible(&principal, crate::customers::store::get(&conn, *id).await?)?;
    let value = super::customer_value(
        &mut conn,
        *id,
        query.group.unwrap_or(false),
        principal.access.owner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(value))
}

/// The analytics settings and the last computation.
///
/// Its `ETag` is the settings' version: send it as `If-Match` with a change.
#[utoipa::path(
    tag = "Analytics",
    security(("bearer" = ["analytics:read"])),
    responses((status = 200, description = "The settings", body = Settings,
        headers(("ETag" = String, description = "The settings' version"))))
)]
#[get("/analytics/settings")]
async fn get_settings(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let mut conn = state.pool.get().await?;
    let settings = super::settings_view(&store::settings(&mut conn).await?);
    Ok(response::versioned(settings.version, &settings))
}

/// Change the analytics settings.
///
/// Every field required; versioned and audited. They apply from the next computation (the
/// figures served until then say which settings they were computed with).
#[utoipa::path(
    tag = "Analytics",
    params(IfMatchHeader),
    request_body = SettingsInput,
    security(("bearer" = ["analytics:manage"])),
    responses((status = 200, description = "The settings after the change", body = Settings,
        headers(("ETag" = String, description = "The settings' new version"))))
)]
#[put("/analytics/settings")]
async fn put_settings(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<SettingsInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsManage)?;
    let mut conn = state.pool.get().await?;
    let settings =
        super::set_settings(&mut conn, &principal.actor, &if_match, input.into_inner()).await?;
    Ok(response::versioned(settings.version, &settings))
}

/// Recompute the analytics now.
///
/// Computes every live customer's value, value tier, future value, value matrix class, RFM
/// scores and churn risk in one set-wise SQL statement (the background job does the same
/// every `RAPPORT_ANALYTICS_INTERVAL`), and moves the customers at risk into `dissolution`
/// when the settings ask for it. It reads one consistent snapshot and writes only the
/// figures that changed, in transactions of 10 000 rows, so it never holds back the event
/// feed and webhooks for long. Answers when done, and goes on if the client hangs up:
/// seconds to a minute for a million customers (see bench/README.md). Each
/// figure's definition is given with it in `CustomerAnalytics` and with the settings'
/// fields; docs/analytics.md has them all in one place.
#[utoipa::path(
    tag = "Analytics",
    security(("bearer" = ["analytics:manage"])),
    responses(
        (status = 200, description = "The computation", body = Recomputed),
        (status = 409, description = "Another computation is running", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/analytics/recompute")]
async fn recompute(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsManage)?;
    // On its own task: a client that hangs up does not cut a computation short.
    let actor = principal.actor.clone();
    // A computation on demand is the job's, under the job's statement timeout.
    let pool = state.jobs.clone();
    let done = actix_web::rt::spawn(async move { super::recompute(&pool, &actor).await })
        .await
        .map_err(|_| ApiError::internal("the computation stopped"))??;
    Ok(HttpResponse::Ok().json(done))
}

/// The win-back report (流失客户, the leaking bucket).
///
/// Per calendar month of the period (`group_by=month`, the default; the first and last cut
/// to `from` and `to`) or per reason code over the whole period (`group_by=reason_code`):
/// `active_at_start`, the live customers whose stage just before the period was active
/// (`acquaintance`, `exploration`, `stable`, `commitment` or `dissolution`); `lost`, the
/// moves into `churned` in it (a customer lost twice counts twice); the churn rate `lost ÷
/// active_at_start`; `won_back`, those losses followed by a purchase or by a move out of
/// `churned` into an active stage before the customer's next loss; the win-back rate
/// `won_back ÷ lost`; and the median days to win back. `data` lists the losses of the
/// whole period, oldest first, with their reasons, a page at a time (the figures are the
/// same on every page). Days are UTC; the period runs from `from` 00:00 to the end of `to`.
///
/// With owned-only access (`access: owned`), the figures and losses of the customers the
/// caller manages.
#[utoipa::path(
    tag = "Analytics",
    params(WinBackQuery),
    security(("bearer" = ["analytics:read"])),
    responses(
        (status = 200, description = "The report, and a page of its losses", body = WinBackReport),
        (status = 400, description = "A missing, malformed or unknown parameter; `from` after \
            `to`; a period over 3660 days", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `analytics:read`", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/analytics/win-back")]
async fn win_back(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let query: WinBackQuery = query::parse(req.query_string())?;
    let from = query.from.ok_or_else(|| invalid("from", "is required"))?;
    let to = query.to.ok_or_else(|| invalid("to", "is required"))?;
    if from > to {
        return Err(invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= 3660 {
        return Err(invalid("from", "the period may span at most 3660 days"));
    }
    let page = pagination::request::<(chrono::DateTime<Utc>, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        super::win_back::ORDER,
    )?;
    let request = super::win_back::WinBackRequest {
        from,
        to,
        group_by: query.group_by.unwrap_or(WinBackGrouping::Month),
        owner: principal.access.owner(),
    };
    let report: WinBackReport = state
        .read(&req, async |conn| {
            super::win_back::report(conn, request, &page).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Checks a Pareto query's period, measure and currency.
async fn pareto_filter(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    query: &ParetoQuery,
) -> Result<(store::ParetoFilter, Option<super::pareto::AspectBasis>), ApiError> {
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = match query.from {
        Some(from) => from,
        None => super::rules::default_period(to).0,
    };
    if from > to {
        return Err(invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= 3660 {
        return Err(invalid("from", "the period may span at most 3660 days"));
    }
    if let Some(p) = query.top_sales_percent
        && !(1..=100).contains(&p)
    {
        return Err(invalid("top_sales_percent", "must be from 1 to 100"));
    }
    let settings = store::settings(conn).await?;
    let currency = match query::currency(query.currency.as_deref())? {
        Some(c) => c,
        None => settings.currency.clone(),
    };
    let filter = store::ParetoFilter {
        from,
        to,
        measure: query.measure.unwrap_or(Measure::Revenue),
        currency,
        top_sales_percent: query.top_sales_percent.map(i32::from),
        owner: principal.access.owner(),
        group: query.group.unwrap_or(false),
    };
    Ok((filter, super::pareto::AspectBasis::of(&settings)))
}

/// Customers ranked by value over a period (Pareto, 80/20).
///
/// Each customer's value is the sum over their purchases in the currency whose time falls
/// in the period (`from` 00:00 UTC to the end of `to`): `revenue` is amount − refunded,
/// `profit` is amount − refunded − cost over the purchases recorded with a cost. Customers
/// whose value is positive are ranked, largest first (ties by customer id), each with their
/// share and the cumulative share of the total. The summary gives the share of the top
/// 20 % of customers, what the top 10, 20, 40 and 50 % of customers bring (the top k % is
/// ⌈customers × k ÷ 100⌉ customers), and how few customers make 10, 20, 40, 50 and 80 % of
/// the total. `top_sales_percent=20` lists only the customers who make the first 20 % of
/// the total. Deleted and erased customers count, without their name.
///
/// `group=true` ranks groups of organizations (`parent_id`): the purchases of every
/// organization in a group count for its root, ranked in their place (`customer_id` is the
/// root's); customers in no group are ranked as they are.
///
/// **Kept rankings.** Each analytics computation (`POST /v1/analytics/recompute` and the
/// scheduled one) keeps, from the same snapshot as the figures, the ranking of its default
/// period: the 365 days ending with the computation's UTC day (`computed_at`'s date − 364
/// to that date, included), in the currency of the settings it used, by `revenue` and,
/// when those settings' measure is `profit`, by `profit` too, with `group=false` and
/// `group=true`. A request is served from the kept ranking, by an index range on rank
/// (milliseconds), when all of these hold: the caller has full access; `live` is not
/// `true`; its measure, currency (given, or the settings' now) and `group` are those of a
/// kept ranking; and either it gives neither `from` nor `to` (then its period **is** the
/// kept one, which ends on the computation's day, not today) or its period (with the
/// defaults below) is exactly the kept one. `top_sales_percent` is answered from the kept
/// cumulative sums. The answer then says `live: false` and the `computed_at` of the
/// computation; its ranks, values, purchases and summary are those of the purchases as
/// they stood at that time (a purchase recorded since counts from the next computation),
/// while the names and credit grades are read for the page's rows as they stand now
/// (deleted and erased customers without their name, as below). Any other request ranks
/// its period now (`live: true`, `computed_at: null`; seconds over millions of purchases):
/// without `from` and `to` the period is the 365 days ending today. Pages are keyed by
/// rank: a computation (or, live, a purchase) between two pages may shift the ranking
/// under them. `GET /v1/exports/pareto` always ranks live and gives the whole ranking as
/// one file.
///
/// With owned-only access (`access: owned`), the ranking and its summary are of the customers
/// the caller manages (with `group=true`, their purchases count for their group's root,
/// shown without its name when the caller does not manage it).
#[utoipa::path(
    tag = "Analytics",
    params(ParetoQuery),
    security(("bearer" = ["analytics:read"])),
    responses((status = 200, description = "The ranking and its summary", body = ParetoReport))
)]
#[get("/analytics/pareto")]
async fn pareto(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let query: ParetoQuery = query::parse(req.query_string())?;
    let page = pagination::request::<i64>(query.limit, query.cursor.as_deref(), "rank")?;
    let (filter, basis, computed_at, lines) = state
        .read(&req, async |conn| {
            let (mut filter, basis) = pareto_filter(conn, &principal, &query).await?;
            let after = page.after.unwrap_or(0);
            if let Some(kept) = kept_ranking(conn, &query, &filter).await? {
                (filter.from, filter.to) = (kept.period_from, kept.period_to);
                let lines =
                    store::kept_page(conn, &kept, filter.top_sales_percent, after, page.fetch())
                        .await?;
                // Empty only when two computations started since the header was read (the
                // slot was emptied): then its period is ranked live.
                if !lines.is_empty() {
                    return Ok((filter, basis, Some(kept.computed_at), lines));
                }
            }
            let lines = store::pareto(conn, &filter, after, page.fetch()).await?;
            Ok((filter, basis, None, lines))
        })
        .await?;
    let Some(first) = lines.first() else {
        return Err(ApiError::internal("the Pareto query returned no summary"));
    };
    let summary = super::pareto::summary(first);
    let rows: Vec<(ParetoRow, i64)> = lines
        .iter()
        .filter_map(|line| super::pareto::row(line, basis.as_ref()))
        .collect();
    let Page { data, next_cursor } = pagination::page_keyed(rows, &page, "rank");
    Ok(HttpResponse::Ok().json(ParetoReport {
        from: filter.from,
        to: filter.to,
        measure: filter.measure,
        currency: filter.currency,
        live: computed_at.is_none(),
        computed_at,
        summary,
        data,
        next_cursor,
    }))
}

/// The kept ranking that answers a Pareto request, if one does (see `pareto`'s
/// description): full access, not `live`, the measure, currency and grouping of a ranking
/// the served computation kept, and no period or exactly the kept one.
async fn kept_ranking(
    conn: &mut AsyncPgConnection,
    query: &ParetoQuery,
    filter: &store::ParetoFilter,
) -> Result<Option<store::KeptRanking>, ApiError> {
    if query.live == Some(true) || filter.owner.is_some() {
        return Ok(None);
    }
    let Some(kept) =
        store::kept_header(conn, filter.measure, filter.group, &filter.currency).await?
    else {
        return Ok(None);
    };
    let no_period = query.from.is_none() && query.to.is_none();
    let same_period = kept.period_from == filter.from && kept.period_to == filter.to;
    Ok((no_period || same_period).then_some(kept))
}

/// Export the Pareto ranking as CSV or NDJSON.
///
/// The whole ranking `GET /v1/analytics/pareto` pages through, for the same query (no
/// `limit`, no `cursor`), as CSV (the default) or NDJSON by `Accept`; `406` otherwise. The
/// period is ranked once and the rows stream as they come, so memory stays flat whatever
/// the number of customers.
///
/// With owned-only access, the ranking of the customers the caller manages.
#[utoipa::path(
    tag = "Analytics",
    params(Filters<ParetoQuery>),
    security(("bearer" = ["analytics:read"])),
    responses(
        (status = 200, description = "The ranking: CSV rows, or one `ParetoRow` per line",
            content((String = "text/csv"), (ParetoRow = "application/x-ndjson")),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"pareto-<UTC time>.csv\"` (or `.ndjson`)"))),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/pareto")]
async fn export_pareto(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let query: ParetoQuery = query::parse(req.query_string())?;
    refuse_paging(query.limit, query.cursor.as_deref())?;
    let format = Format::negotiate(req.headers())?;
    let (filter, basis) = state
        .read(&req, async |conn| {
            pareto_filter(conn, &principal, &query).await
        })
        .await?;
    let source = super::pareto::Ranking::new(filter, basis, state.read_pool(&req)?);
    respond(&state, &req, format, "pareto", source).await
}

/// Customers, value and satisfaction by segment.
///
/// Every live customer, counted once per dimension: value tier, value matrix class, volume ×
/// loyalty quadrant and recommended relationship level (from the last computation; `none`
/// for customers computed since, and for a recommendation without a margin), lifecycle
/// stage, relationship level, loyalty tier (`none` without one), buyer type and
/// organization type (`none` when not set, and for the other kind of customer), credit grade
/// (`a` to `d` as the customer's `credit.grade` stands when counted, `none` when not graded). Per group:
/// customers, their value in the window (the settings' measure and currency), mean value,
/// the mean of their latest NPS and CSAT answers with the NPS (% promoters − % detractors)
/// and CSAT (% of 4 and 5) of those answers, how many are at churn risk (so that the
/// satisfaction-to-loyalty link shows, tier by tier), and the group's lifetime potential
/// (m·r / (1 + d − r) of its summed m) and demand contribution (its net sales in the window
/// ÷ every customer's).
///
/// The key-customer class is a dimension too: `high_value` (value tier `key`),
/// `influential` (at least the settings' `influential_referrals` live referrals, or
/// `influential` set by hand), `dual` (both) and `none`.
///
/// `group=true` counts each group of organizations (`parent_id`) once, as its root: the
/// root's tier, class, stage, level, loyalty tier, credit grade and satisfaction, with the
/// value, m and window sales (so the lifetime potential and demand contribution) of every
/// organization in the group; subsidiaries are not counted on their own.
///
/// **Kept breakdown.** Each analytics computation ends by keeping this breakdown
/// (`group=false` and `group=true`), once its figures are written and its customers at risk
/// moved, and a caller with full access is served it (`live: false`; milliseconds): every
/// count and figure as it stood then, stages, levels, loyalty tiers, credit grades and
/// satisfaction included; a change since shows from the next computation. `live=true`
/// counts now instead (`live: true`: one scan of the customers, seconds at a million), as
/// does every request before the computation at `computed_at` has kept its breakdown, and
/// every request with owned-only access.
///
/// With owned-only access, only the customers the caller manages are counted.
#[utoipa::path(
    tag = "Analytics",
    operation_id = "segments",
    params(SegmentsQuery),
    security(("bearer" = ["analytics:read"])),
    responses(
        (status = 200, description = "The breakdown", body = Segments),
        (status = 400, description = "An unknown or malformed parameter", body = Problem,
            content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `analytics:read`", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/analytics/segments")]
async fn segments(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let query: SegmentsQuery = query::parse(req.query_string())?;
    let group = query.group.unwrap_or(false);
    let (settings, live, rows) = state
        .read(&req, async |conn| {
            let settings = store::settings(conn).await?;
            if query.live != Some(true) && principal.access.owner().is_none() {
                // Kept by the computation the settings record (`None` before one kept it).
                if let Some((_, rows)) = store::kept_segments(conn, group).await? {
                    return Ok((settings, false, rows));
                }
            }
            let used = settings.computed_with().unwrap_or_else(|| settings.input());
            let rows = store::segments(
                conn,
                used.churn_threshold as i16,
                principal.access.owner(),
                group,
            )
            .await?;
            Ok((settings, true, rows))
        })
        .await?;
    let used = settings.computed_with().unwrap_or_else(|| settings.input());
    let mut out = Segments {
        computed_at: settings.computed_at,
        live,
        currency: used.currency.clone(),
        measure: used.measure,
        value_tier: Vec::new(),
        value_class: Vec::new(),
        lifecycle_stage: Vec::new(),
        relationship_level: Vec::new(),
        loyalty_tier: Vec::new(),
        key_class: Vec::new(),
        loyalty_quadrant: Vec::new(),
        recommended_relationship_level: Vec::new(),
        buyer_type: Vec::new(),
        organization_type: Vec::new(),
        credit_grade: Vec::new(),
    };
    let totals = settings.totals();
    for row in rows {
        let aspects = super::aspects(&used, row.year_value, row.window_sales, &totals);
        let segment = Segment {
            lifetime_potential: aspects.lifetime_potential,
            demand_contribution_percent: aspects.demand_contribution_percent,
            mean_value: row.mean_value,
            key: row.key,
            customers: row.customers,
            value: row.value,
            nps_respondents: row.nps_respondents,
            mean_nps: row.mean_nps,
            nps: row.nps,
            csat_respondents: row.csat_respondents,
            mean_csat: row.mean_csat,
            csat: row.csat,
            at_risk: row.at_risk,
        };
        match row.dimension.as_str() {
            "value_tier" => out.value_tier.push(segment),
            "value_class" => out.value_class.push(segment),
            "lifecycle_stage" => out.lifecycle_stage.push(segment),
            "relationship_level" => out.relationship_level.push(segment),
            "key_class" => out.key_class.push(segment),
            "loyalty_tier" => out.loyalty_tier.push(segment),
            "loyalty_quadrant" => out.loyalty_quadrant.push(segment),
            "recommended_relationship_level" => out.recommended_relationship_level.push(segment),
            "buyer_type" => out.buyer_type.push(segment),
            "organization_type" => out.organization_type.push(segment),
            _ => out.credit_grade.push(segment),
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

/// The customers at churn risk, highest score first, with the reasons.
///
/// From the last computation: live customers whose score reaches `min_score` (the
/// settings' `churn_threshold` by default), each with the reasons, their points and the
/// figures behind them. The score is the sum of the reasons' points, at most 100:
/// `purchase_frequency_falling` 25 (fewer purchases in the recent half-window than half of
/// what the customer's own earlier rate predicts), `purchase_overdue` 25 (more days since the
/// last purchase than twice the customer's mean interval; with one purchase, more than the
/// window), `no_recent_contact` 15 (no interaction for `contact_days`), `open_complaints` 15
/// each (at most 30), `dissatisfied` 20 (the latest NPS or CSAT answer is 0–6 or 1–3).
/// Prospects and churned customers score 0. Served by the score index.
///
/// With owned-only access, only the customers the caller manages are listed.
#[utoipa::path(
    tag = "Analytics",
    params(ChurnQuery),
    security(("bearer" = ["analytics:read"])),
    responses((status = 200, description = "A page of customers at risk", body = Page<ChurnEntry>))
)]
#[get("/analytics/churn-risk")]
async fn churn_risk(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AnalyticsRead)?;
    let query: ChurnQuery = query::parse(req.query_string())?;
    if let Some(min) = query.min_score
        && !(1..=100).contains(&min)
    {
        return Err(invalid("min_score", "must be from 1 to 100"));
    }
    let reasons: Vec<ChurnReason> = comma_list("reason", query.reason.as_deref())?;
    let stages: Vec<LifecycleStage> =
        comma_list("lifecycle_stage", query.lifecycle_stage.as_deref())?;
    let tiers: Vec<ValueTier> = comma_list("value_tier", query.value_tier.as_deref())?;
    let page = pagination::request::<(i16, Uuid)>(query.limit, query.cursor.as_deref(), "risk")?;
    let read = state
        .read(&req, async |conn| {
            let settings = store::settings(conn).await?;
            let (Some(at), Some(used)) = (settings.computed_at, settings.computed_with()) else {
                return Ok(None);
            };
            let filter = store::ChurnFilter {
                min_score: query.min_score.unwrap_or(used.churn_threshold as i16),
                reasons: reasons.iter().map(|r| r.as_str().to_owned()).collect(),
                lifecycle_stages: stages.iter().map(|s| s.as_str().to_owned()).collect(),
                account_manager_id: query.account_manager_id,
                value_tiers: tiers.iter().map(|t| t.as_str().to_owned()).collect(),
                owner: principal.access.owner(),
            };
            let rows = store::churn_list(conn, &filter, page.after, page.fetch()).await?;
            Ok(Some((at, used, rows)))
        })
        .await?;
    // Before the first computation there is no risk to list.
    let Some((at, used, rows)) = read else {
        return Ok(HttpResponse::Ok().json(Page::<ChurnEntry> {
            data: Vec::new(),
            next_cursor: None,
        }));
    };
    let entries: Vec<(ChurnEntry, (i16, Uuid))> = rows
        .into_iter()
        .map(|r| {
            let key = (r.row.churn_score, r.row.customer_id);
            let entry = ChurnEntry {
                customer_id: r.row.customer_id,
                name: r.name,
                lifecycle_stage: r
                    .lifecycle_stage
                    .parse()
                    .unwrap_or(LifecycleStage::Dissolution),
                account_manager_id: r.account_manager_id,
                value_tier: r.row.value_tier.parse().unwrap_or(ValueTier::Opportunity),
                value: r.row.value,
                churn_risk: super::churn_risk(&r.row, &used, at),
            };
            (entry, key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(entries, &page, "risk")))
}
