use actix_web::{HttpRequest, HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::EventType;
use super::json::{EventPage, EventsQuery};
use super::store::{self, Position};
use crate::auth::{Principal, Scope};
use crate::http::error::ApiError;
use crate::http::pagination;
use crate::http::query::{Query, comma_list, invalid};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_events);
}

const ORDER: &str = "feed";

/// A type named in a filter, checked against the list of types.
pub(crate) struct TypeName(pub String);

impl std::str::FromStr for TypeName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::named(s)
            .map(|_| Self(s.to_owned()))
            .map_err(|e| format!("has {e}"))
    }
}

/// Read the event feed.
///
/// Every change integrations hear about, in the order the changes committed, for those that
/// poll rather than receive webhooks. Start without a cursor (from the oldest event kept) or
/// with `after` (the id of the last event you processed); then pass `next_cursor` each time.
/// The feed never skips an event: one whose transaction is still running is served once it
/// committed, after the events before it. A short page means you are up to date: poll again
/// later with the same `next_cursor`.
///
/// Types: `customer.created`, `customer.updated`, `customer.deleted`, `customer.restored`,
/// `customer.erased`, `customer.lifecycle_changed`, `customer.merged`, `customer.unmerged`,
/// `interaction.created`,
/// `interaction.updated`, `complaint.status_changed`, `purchase.created`,
/// `purchase.refunded`, `loyalty.points_changed`, `loyalty.tier_changed`,
/// `survey.response_created`, `import.completed`,
/// `opportunity.created|updated|deleted`, `contact.linked|updated|unlinked`. Needs
/// `events:read`.
#[utoipa::path(
    tag = "Events",
    params(EventsQuery),
    security(("bearer" = ["events:read"])),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Unknown type, bad cursor, or `after` and `cursor` together", body = crate::http::error::Problem),
        (status = 404, description = "`after` names no event (it may have been pruned)", body = crate::http::error::Problem),
    )
)]
#[get("/events")]
async fn list_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<EventsQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::EventsRead)?;
    let filter = query.into_inner();
    let types: Vec<TypeName> = comma_list("type", filter.type_.as_deref())?;
    let types: Vec<String> = types.into_iter().map(|t| t.0).collect();
    let page = pagination::request::<Position>(filter.limit, filter.cursor.as_deref(), ORDER)?;
    if filter.after.is_some() && page.after.is_some() {
        return Err(invalid("after", "cannot be combined with `cursor`"));
    }
    let (start, mut rows) = state
        .read(&req, async |conn| {
            let start = match (filter.after, page.after) {
                (Some(id), _) => store::position_of(conn, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("event"))?,
                (None, Some(position)) => position,
                (None, None) => (0, 0),
            };
            Ok((start, store::feed(conn, start, &types, page.fetch()).await?))
        })
        .await?;
    let has_more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let last = rows.last().map_or(start, |(_, position)| *position);
    Ok(HttpResponse::Ok().json(EventPage {
        data: rows.into_iter().map(|(event, _)| event).collect(),
        next_cursor: pagination::encode(&last, ORDER),
        has_more,
    }))
}
