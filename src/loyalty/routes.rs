use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::Utc;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    EntryKind, EvaluationReport, LedgerEntry, LedgerQuery, LoyaltyStatus, PointsInput,
    PointsRequestKind, Posting, ProgramInput, ProgramView, Simulation, SimulationInput,
    StatusQuery, Tiers,
};
use super::{ledger, members, store};
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_program)
        .service(put_program)
        .service(get_tiers)
        .service(put_tiers)
        .service(customer_loyalty)
        .service(customer_points)
        .service(post_points)
        .service(evaluate)
        .service(simulate);
}

/// The loyalty programme's configuration.
///
/// Its `ETag` is the configuration's version, shared with the tiers: send it as `If-Match`
/// with a change so that two admins' edits never silently overwrite each other.
#[utoipa::path(
    tag = "Loyalty",
    security(("bearer" = ["loyalty:read"])),
    responses((status = 200, description = "The programme", body = ProgramView,
        headers(("ETag" = String, description = "The configuration's version"))))
)]
#[get("/loyalty/program")]
async fn get_program(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let conn = state.pool.get().await?;
    let program = store::program(&conn).await?;
    Ok(response::versioned(program.version, &program))
}

/// Change the loyalty programme.
///
/// The whole configuration, every part required; versioned and audited. Sending the
/// configuration in force changes nothing.
#[utoipa::path(
    tag = "Loyalty",
    params(IfMatchHeader),
    request_body = ProgramInput,
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "The programme after the change", body = ProgramView,
        headers(("ETag" = String, description = "The configuration's new version"))))
)]
#[put("/loyalty/program")]
async fn put_program(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<ProgramInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    let mut conn = state.pool.get().await?;
    let program =
        super::set_program(&mut conn, &principal.actor, &if_match, input.into_inner()).await?;
    Ok(response::versioned(program.version, &program))
}

/// The programme's tiers, lowest first.
#[utoipa::path(
    tag = "Loyalty",
    security(("bearer" = ["loyalty:read"])),
    responses((status = 200, description = "The tiers", body = Tiers,
        headers(("ETag" = String, description = "The configuration's version"))))
)]
#[get("/loyalty/tiers")]
async fn get_tiers(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let conn = state.pool.get().await?;
    let (program, tiers) = tokio::try_join!(store::program(&conn), store::tiers(&conn))?;
    Ok(response::versioned(program.version, &Tiers { tiers }))
}

/// Replace the tiers.
///
/// The full ordered list, lowest first: unique keys, the first threshold 0 and each next
/// one higher. A customer will hold the highest tier whose threshold their qualifying sum
/// (points earned or amount spent in the window, by the programme's basis) reaches.
/// Versioned with the programme and audited.
#[utoipa::path(
    tag = "Loyalty",
    params(IfMatchHeader),
    request_body = Tiers,
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "The tiers after the change", body = Tiers,
        headers(("ETag" = String, description = "The configuration's new version"))))
)]
#[put("/loyalty/tiers")]
async fn put_tiers(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<Tiers>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    let mut conn = state.pool.get().await?;
    let (tiers, version) = super::set_tiers(
        &mut conn,
        &principal.actor,
        &if_match,
        input.into_inner().tiers,
    )
    .await?;
    Ok(response::versioned(version, &Tiers { tiers }))
}

/// The customer, when the caller may see it (`404` otherwise).
async fn visible_customer(
    conn: &mut crate::db::DbConn,
    principal: &Principal,
    id: Uuid,
) -> Result<(), ApiError> {
    let record = crate::customers::store::get(conn, id).await?;
    crate::customers::visible(principal, record).map(drop)
}

/// A customer's standing in the loyalty programme.
///
/// The balance (points available now), the tier and **why**: the qualifying sum (points
/// earned on purchases net of refunds, or money spent net of refunds, by the programme's
/// basis) over the rolling window, in figures and in words. Then what the next tier
/// takes, what keeps the current one (the threshold, until when the contributions
/// already in the window secure it, and under a grace period when a downgrade would
/// come), the points lapsing soon, and the tier history. A customer who is not yet a
/// member shows the first tier and nothing earned.
#[utoipa::path(
    tag = "Loyalty",
    params(("id" = Uuid, Path, description = "Customer id"), StatusQuery),
    security(("bearer" = ["loyalty:read"])),
    responses(
        (status = 200, description = "The standing", body = LoyaltyStatus),
        (status = 404, description = "No such customer", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/loyalty")]
async fn customer_loyalty(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let query: StatusQuery = query::parse(req.query_string())?;
    let days = query.expiring_days.unwrap_or(members::EXPIRING_DAYS);
    if !(1..=3650).contains(&days) {
        return Err(invalid("expiring_days", "must be from 1 to 3650"));
    }
    let mut conn = state.pool.get().await?;
    visible_customer(&mut conn, &principal, *id).await?;
    let status = members::status(&mut conn, *id, days).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// A customer's points ledger, newest first.
///
/// Append-only: every earn, redemption, adjustment, expiry and refund reversal, one entry
/// per expiry lot touched (a redemption spanning three lots shows three entries sharing a
/// `posting_id`). Its sum is the balance.
#[utoipa::path(
    tag = "Loyalty",
    params(("id" = Uuid, Path, description = "Customer id"), LedgerQuery),
    security(("bearer" = ["loyalty:read"])),
    responses(
        (status = 200, description = "A page of entries", body = Page<LedgerEntry>),
        (status = 404, description = "No such customer", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/points")]
async fn customer_points(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let query: LedgerQuery = query::parse(req.query_string())?;
    let kinds: Vec<EntryKind> = query::comma_list("kind", query.kind.as_deref())?;
    let page = pagination::request::<i64>(query.limit, query.cursor.as_deref(), "seq_desc")?;
    let mut conn = state.pool.get().await?;
    visible_customer(&mut conn, &principal, *id).await?;
    let rows = ledger::entries(&mut conn, *id, &kinds, page.after, page.fetch()).await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let seq = r.seq;
            (members::entry_view(r), seq)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, "seq_desc")))
}

/// Redeem or adjust a customer's points.
///
/// `redeem` spends points, oldest expiring first (one entry per lot), and needs
/// `loyalty:redeem`; asking for more than the balance is a `409` that names what is
/// available, however many redemptions run at once. `adjust` adds or takes points with a
/// reason and needs `loyalty:adjust`; points added expire like earned ones. Send an
/// `Idempotency-Key` so that a retry never spends twice.
#[utoipa::path(
    tag = "Loyalty",
    params(("id" = Uuid, Path, description = "Customer id")),
    request_body = PointsInput,
    security(("bearer" = ["loyalty:redeem", "loyalty:adjust"])),
    responses(
        (status = 201, description = "What was written, and the balance after", body = Posting),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "Fewer points available than asked for, or the \
            customer's personal data was erased", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/points")]
async fn post_points(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<PointsInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    principal.require(match input.kind {
        PointsRequestKind::Redeem => Scope::LoyaltyRedeem,
        PointsRequestKind::Adjust => Scope::LoyaltyAdjust,
    })?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let posting = members::post_points(&mut conn, &principal.actor, *id, input).await?;
    Ok(HttpResponse::Created().json(posting))
}

/// Run the evaluation pass now.
///
/// What the background pass (every `RAPPORT_LOYALTY_INTERVAL`) does: writes `expire`
/// entries for lapsed points, then re-evaluates every member's tier: up when the
/// qualifying sum reaches a higher tier, down by the programme's downgrade policy, each
/// move in the tier history. Works set-wise, a batch of members per transaction; safe
/// beside requests and other instances. Answers what it changed.
#[utoipa::path(
    tag = "Loyalty",
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "What the pass changed", body = EvaluationReport))
)]
#[post("/loyalty/evaluate")]
async fn evaluate(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    principal.access.require_all("the loyalty evaluation")?;
    let mut conn = state.pool.get().await?;
    let report = super::pass::run(&mut conn, &principal.actor, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Try a tier configuration.
///
/// Where every member's qualifying sum today would place them under the proposed tiers
/// (and, if given, qualification): members per tier and the moves from the tiers they
/// hold, ignoring downgrade policies. Changes nothing.
#[utoipa::path(
    tag = "Loyalty",
    request_body = SimulationInput,
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "Where members would land", body = Simulation))
)]
#[post("/loyalty/simulate")]
async fn simulate(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<SimulationInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    principal
        .access
        .require_all("a simulation of the programme")?;
    let mut conn = state.pool.get().await?;
    let simulation = super::pass::simulate(&mut conn, input.into_inner()).await?;
    Ok(HttpResponse::Ok().json(simulation))
}
