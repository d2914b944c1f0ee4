//! Answers that no handler gives: unknown routes (`404`), known routes with the wrong method
//! (`405` with `Allow`), and any error response not already problem+json (from actix itself
//! or a middleware), so that nothing ever answers plain text.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::Value;

use super::error::{ApiError, ErrorCode, PROBLEM_JSON, problem_response};

/// What a path template's segment accepts.
#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// A parameter documented as `format: uuid`.
    Uuid,
    /// A parameter documented with an `enum`.
    OneOf(Vec<String>),
    /// Any other parameter.
    Any,
}

impl Segment {
    fn accepts(&self, text: &str) -> bool {
        match self {
            Segment::Literal(lit) => lit == text,
            Segment::Uuid => uuid::Uuid::try_parse(text).is_ok(),
            Segment::OneOf(values) => values.iter().any(|v| v == text),
            Segment::Any => !text.is_empty(),
        }
    }

    /// Whether `text` fits where the segment stands, whatever the parameter's type.
    fn fits(&self, text: &str) -> bool {
        match self {
            Segment::Literal(lit) => lit == text,
            _ => !text.is_empty(),
        }
    }
}

struct Template {
    segments: Vec<Segment>,
    /// The documented methods, upper case.
    methods: Vec<String>,
}

impl Template {
    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

/// Every documented path and its methods, taken from the OpenAPI document (which
/// utoipa-actix-web builds from the registered handlers, so it cannot miss one).
///
/// A concrete path is matched to the templates whose every segment it satisfies, parameter
/// types included (`/v1/imports/{uuid}` is `/v1/imports/{id}`, not `/v1/imports/{resource}`,
/// whose values are an enum), the most literal ones winning as in OpenAPI. Only when no
/// template takes the path as typed is it matched by shape alone: then the methods of each
/// template it could have been meant for are allowed, and their handlers refuse the malformed
/// segment with a `400`.
pub struct RouteTable {
    templates: Vec<(String, Template)>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl RouteTable {
    pub fn from_openapi(spec: &Value) -> Self {
        let templates = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| (path.clone(), template(spec, path, item)))
                    .collect()
            })
            .unwrap_or_default();
        Self { templates }
    }

    /// The table without one path (served elsewhere, so a `404` here).
    pub fn without(mut self, path: &str) -> Self {
        self.templates.retain(|(p, _)| p != path);
        self
    }

    /// The methods documented for the path, sorted; `None` for a path nothing documents.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = path.split('/').collect();
        let shaped: Vec<&Template> = self
            .templates
            .iter()
            .map(|(_, t)| t)
            .filter(|t| {
                t.segments.len() == parts.len()
                    && t.segments.iter().zip(&parts).all(|(s, p)| s.fits(p))
            })
            .collect();
        let typed: Vec<&Template> = shaped
            .iter()
            .copied()
            .filter(|t| t.segments.iter().zip(&parts).all(|(s, p)| s.accepts(p)))
            .collect();
        let chosen = match typed.iter().map(|t| t.literals()).max() {
            Some(most) => typed.into_iter().filter(|t| t.literals() == most).collect(),
            None => shaped,
        };
        let mut allowed: Vec<String> = chosen
            .iter()
            .flat_map(|t| t.methods.iter().cloned())
            .collect();
        if allowed.is_empty() {
            return None;
        }
        allowed.sort();
        allowed.dedup();
        Some(allowed)
    }
}

fn template(spec: &Value, path: &str, item: &Value) -> Template {
    let methods = METHODS
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_uppercase())
        .collect();
    let param = |name: &str| -> Segment {
        let schema = METHODS
            .iter()
            .filter_map(|m| item.get(*m)?.get("parameters")?.as_array())
            .flatten()
            .find(|p| p["in"] == "path" && p["name"] == name)
            .map(|p| resolve(spec, &p["schema"]));
        match schema {
            Some(s) if s["format"] == "uuid" => Segment::Uuid,
            Some(s) if s["enum"].is_array() => Segment::OneOf(
                s["enum"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => Segment::Any,
        }
    };
    let segments = path
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => param(name),
                None if part.contains('{') => Segment::Any,
                None => Segment::Literal(part.to_owned()),
            },
        )
        .collect();
    Template { segments, methods }
}

/// A schema, following one `$ref` into the components.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| spec.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}

/// `405` naming the methods the path offers in `Allow`.
pub fn method_not_allowed(method: &Method, allowed: &[String]) -> HttpResponse {
    let list = allowed.join(", ");
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed here; use {list}"),
    )
    .with_header(
        header::ALLOW,
        HeaderValue::from_str(&list).unwrap_or(HeaderValue::from_static("GET")),
    )
    .error_response()
}

/// Answers a method the spec does not document for the path with `405`, before routing: so
/// the answer never depends on which handler's path parameters would have failed to parse
/// first, and `Allow` names exactly the documented methods. It runs inside CORS, which
/// answers preflights itself; any other `OPTIONS` is a `405` like every undocumented method.
pub async fn methods(
    routes: web::Data<RouteTable>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if let Some(allowed) = routes.allowed(req.path())
        && !allowed.iter().any(|m| m == req.method().as_str())
    {
        let res = method_not_allowed(req.method(), &allowed);
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The app's default service.
pub async fn unmatched(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    match routes.allowed(req.path()) {
        Some(allowed) => method_not_allowed(req.method(), &allowed),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_openapi(&crate::openapi::spec())
    }

    const ID: &str = "0193b0a6-0000-7000-8000-000000000001";

    #[test]
    fn typed_parameters_pick_the_template() {
        let t = table();
        assert_eq!(
            t.allowed(&format!("/v1/imports/{ID}")),
            Some(vec!["GET".into()])
        );
        assert_eq!(
            t.allowed("/v1/imports/customers"),
            Some(vec!["POST".into()])
        );
        // Neither a UUID nor a resource: both were possible, each handler says what is wrong.
        assert_eq!(
            t.allowed("/v1/imports/junk"),
            Some(vec!["GET".into(), "POST".into()])
        );
        // A literal beats a parameter, as in OpenAPI.
        assert_eq!(t.allowed("/v1/customers/batch"), Some(vec!["POST".into()]));
        assert_eq!(
            t.allowed("/v1/customers/junk"),
            Some(vec!["DELETE".into(), "GET".into(), "PATCH".into()])
        );
        assert_eq!(t.allowed("/v1/nothing"), None);
        assert_eq!(t.allowed("/v1/users/"), None);
        assert_eq!(table().without("/metrics").allowed("/metrics"), None);
    }
}
