use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{ItemType, Key, TimelineItem};
use crate::auth::{Principal, Scope};
use crate::http::error::ApiError;
use crate::http::pagination::{self, Page};
use crate::http::query;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(customer_timeline);
}

/// Which items of the timeline, and the page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Item types separated by commas (`interaction`, `lifecycle_change`, `purchase`,
    /// `survey_response`, `tier_change`); all by default (survey responses only with
    /// `surveys:read`).
    #[param(example = "interaction,purchase")]
    pub types: Option<String>,
    /// `contacts`: an organization's timeline shows the interactions of its contacts too
    /// (the people linked to it, now or once, that the caller can see), each under its
    /// person's `customer_id`.
    #[param(example = "contacts", pattern = "^contacts$")]
    pub include: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const ORDER: &str = "-at";

/// A customer's timeline.
///
/// Everything that happened with the customer, newest first, one typed item each:
/// interactions (a pending follow-up at its due time), changes of lifecycle stage,
/// purchases, survey responses (with `surveys:read`) and changes of loyalty tier. The
/// object is under the field its `type` names. Cursor-paginated; items at the same time
/// come in a stable order.
///
/// `include=contacts` adds, on an organization's timeline, the interactions of the people
/// linked to it (current and past contacts): what was said with each of them, where it
/// was recorded on the person. With owned-only access, those of the people the caller
/// manages.
#[utoipa::path(
    tag = "Timeline",
    operation_id = "customer_timeline",
    params(("id" = Uuid, Path, description = "Customer id"), TimelineQuery),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses((status = 200, description = "A page of the timeline, newest first",
        body = Page<TimelineItem>))
)]
#[get("/customers/{id}/timeline")]
async fn customer_timeline(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    principal.require(Scope::InteractionsRead)?;
    principal.require(Scope::PurchasesRead)?;
    let query: TimelineQuery = query::parse(req.query_string())?;
    let mut types: Vec<ItemType> = query::comma_list("types", query.types.as_deref())?;
    // Survey responses show to those who may read them; the rest of the timeline to all.
    if !principal.can(Scope::SurveysRead) {
        if types.contains(&ItemType::SurveyResponse) {
            principal.require(Scope::SurveysRead)?;
        }
        if types.is_empty() {
            types = ItemType::ALL
                .iter()
                .copied()
                .filter(|t| *t != ItemType::SurveyResponse)
                .collect();
        }
    }
    let with_contacts = match query.include.as_deref() {
        None => false,
        Some("contacts") => true,
        Some(_) => return Err(query::invalid("include", "must be `contacts`")),
    };
    let page = pagination::request::<Key>(query.limit, query.cursor.as_deref(), ORDER)?;
    let now = Utc::now();
    let (keys, items) = state
        .read(&req, async |conn| {
            let after = page.after.as_ref();
            super::page(
                conn,
                &principal,
                *id,
                with_contacts,
                &types,
                after,
                page.fetch(),
                now,
            )
            .await
        })
        .await?;
    let rows = items.into_iter().zip(keys).collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, ORDER)))
}
