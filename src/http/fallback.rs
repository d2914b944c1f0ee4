//! Answers that no handler gives: unknown routes (`404`), known routes with the wrong method
//! (`405` with `Allow`), and any error response not already problem+json (from actix itself
//! or a middleware), so that nothing ever answers plain text.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError, web};

use super::error::{ApiError, ErrorCode, PROBLEM_JSON, problem_response};

/// Every route and its methods, taken from the OpenAPI document (which utoipa-actix-web
/// builds from the registered handlers, so it cannot miss one).
pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<String>)>,
}

impl RouteTable {
    pub fn from_openapi(spec: &serde_json::Value) -> Self {
        let methods = [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ];
        let routes = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let allowed = methods
                            .iter()
                            .filter(|m| item.get(**m).is_some())
                            .map(|m| m.to_uppercase())
                            .collect();
                        (ResourceDef::new(path.as_str()), allowed)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { routes }
    }

    fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let mut allowed: Vec<String> = self
            .routes
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        if allowed.is_empty() {
            return None;
        }
        allowed.sort();
        allowed.dedup();
        Some(allowed)
    }
}

/// The app's default service.
pub async fn unmatched(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    match routes.allowed(req.path()) {
        Some(allowed) => {
            let list = allowed.join(", ");
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here; use {list}", req.method()),
            )
            .with_header(
                header::ALLOW,
                HeaderValue::from_str(&list).unwrap_or(HeaderValue::from_static("GET")),
            )
            .error_response()
        }
        None => {
            ApiError::new(ErrorCode::NotFound, format!("no route {}", req.path())).error_response()
        }
    }
}

fn is_problem(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// Turns any error response that is not problem+json into one, keeping its status.
pub async fn problems_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // (The request must not be cloned before routing: the router needs it unshared.)
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(err) if err.as_error::<ApiError>().is_some() => return Err(err),
        Err(err) => {
            let status = err.as_response_error().status_code();
            return Err(ApiError::bare(ErrorCode::for_status(status)).into());
        }
    };
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&res) {
        return Ok(res.map_into_left_body());
    }
    let kept: Vec<_> = [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE]
        .into_iter()
        .filter_map(|name| {
            let value = res.headers().get(&name)?.clone();
            Some((name, value))
        })
        .collect();
    let mut problem = ApiError::bare(ErrorCode::for_status(status)).problem();
    problem.status = status.as_u16();
    let replaced = problem_response(status, &problem, &kept);
    Ok(res.into_response(replaced).map_into_right_body())
}
