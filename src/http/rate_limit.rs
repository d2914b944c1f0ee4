//! Request limits per caller (user, API client or service token): a token bucket of `q`
//! requests refilled evenly over `w`, so a caller may burst up to `q` and then goes on at
//! `q` per `w`. Past it, `429 rate_limited` with `Retry-After`.
//!
//! Every response to an authenticated caller carries `RateLimit-Policy` and `RateLimit` in
//! the syntax of draft-ietf-httpapi-ratelimit-headers-10: `"default";q=600;w=60` and
//! `"default";r=599;t=1`, where `r` is what is left now and `t` the seconds until the bucket
//! is full again. Unauthenticated requests are not counted (sign-in has its own throttle).
//!
//! Counted per instance by default: behind a load balancer of `n` instances a caller may
//! send up to `n` times its limit. With `RAPPORT_RATE_LIMIT_SHARED=true` the instances agree
//! through PostgreSQL on one count per caller (`shared_limits`), still without a round trip
//! per request.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use super::caller::Caller;
use super::error::{ApiError, ErrorCode};
pub use crate::domain::RateLimit;
use crate::state::AppState;

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Counts the request against its caller's limit and says so in the response headers.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let pass = |req, next: Next<_>| async move {
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    };
    // Unauthenticated requests are not counted; their handlers answer them.
    let Some(caller) = Caller::of(&req) else {
        return pass(req, next).await;
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return pass(req, next).await;
    };
    let (policy, limit) = match caller.rate_limit {
        Some(own) => ("client", own),
        None => ("default", state.settings.rate_limit),
    };
    let RateLimit::Every { quota, window } = limit else {
        return pass(req, next).await;
    };
    let verdict = state
        .rate_limits
        .check(&caller.key, quota, window, Instant::now());
    let policy_value = format!("\"{policy}\";q={quota};w={}", window.as_secs());
    let current = format!("\"{policy}\";r={};t={}", verdict.remaining, verdict.reset);
    let mut res = if verdict.allowed {
        pass(req, next).await?
    } else {
        let err = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "you have sent more than {quota} requests in {}; send the next in {} seconds",
                crate::domain::show_duration(window),
                verdict.retry_after
            ),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(verdict.retry_after));
        req.into_response(err.error_response())
    };
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy_value) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&current) {
        headers.insert(RATELIMIT, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(RateLimit::parse("off"), Some(RateLimit::Off));
        assert_eq!(RateLimit::parse("0"), Some(RateLimit::Off));
        assert_eq!(
            RateLimit::parse("600/60s"),
            Some(RateLimit::Every {
                quota: 600,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            RateLimit::parse("5/10"),
            Some(RateLimit::Every {
                quota: 5,
                window: Duration::from_secs(10)
            })
        );
        for bad in [
            "",
            "600",
            "0/60s",
            "600/0s",
            "600/500ms",
            "x/60s",
            "600/2d",
            "5/1500ms",
        ] {
            assert_eq!(RateLimit::parse(bad), None, "{bad}");
        }
        assert_eq!(RateLimit::parse("600/1m").unwrap().to_string(), "600/1m");
    }
}
