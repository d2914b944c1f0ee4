//! Gives successful writes their `Rapport-Consistency-Token` while read replicas are
//! configured (see [`super::consistency`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{Error, web};

use super::consistency::CONSISTENCY_TOKEN;
use crate::db::replicas::current_position;
use crate::state::AppState;

/// Adds the token to successful writes while replicas are configured. The position is read
/// after the handler's transaction committed, so it is at or past that commit.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let write = !req.method().is_safe();
    let mut res = next.call(req).await?;
    let Some(state) = state.filter(|s| write && s.replicas.is_some()) else {
        return Ok(res);
    };
    if !res.status().is_success() {
        return Ok(res);
    }
    let position = match state.pool.get().await {
        Ok(mut conn) => current_position(&mut conn).await,
        Err(e) => Err(e.to_string()),
    };
    match position {
        Ok(Some(lsn)) => {
            if let Ok(value) = HeaderValue::from_str(&lsn.to_string()) {
                res.headers_mut().insert(CONSISTENCY_TOKEN, value);
            }
        }
        // The write stands; without a token the client's next read may go to the primary
        // or a replica within the lag limit.
        Ok(None) | Err(_) => tracing::warn!(
            "no consistency token for a write: the primary's WAL position could not be read"
        ),
    }
    Ok(res)
}
