//! What the generated routers call: the permission check, input extraction with the seed's error
//! body for every rejection, and response rendering.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use super::ApiError;
use super::{Access, OperationMeta, Permission};

/// Who is calling and which request this is; handed to every trait method.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub operation: &'static OperationMeta,
    pub principal: Principal,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
}

/// Decides whether a principal may use an operation. Installed as a request extension by the
/// server, so the generated routers stay independent of the policy.
pub trait AccessPolicy: Send + Sync + 'static {
    fn check(&self, principal: &Principal, permission: Permission) -> Result<(), ApiError>;
}

/// The largest request body the routers read, installed as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Runs the operation's permission check. Called by every generated handler before it reads any
/// input or calls hand-written code.
pub async fn authorize(
    parts: &mut Parts,
    operation: &'static OperationMeta,
) -> Result<RequestContext, ApiError> {
    let principal = parts
        .extensions
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous);
    if let Access::Requires(permission) = operation.access {
        let policy = parts
            .extensions
            .get::<Arc<dyn AccessPolicy>>()
            .ok_or_else(|| ApiError::internal("no access policy installed"))?;
        policy.check(&principal, permission)?;
    }
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RequestContext {
        request_id,
        operation,
        principal,
    })
}

pub async fn path<T: DeserializeOwned + Send>(parts: &mut Parts) -> Result<T, ApiError> {
    Path::<T>::from_request_parts(parts, &())
        .await
        .map(|Path(p)| p)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PATH_PARAMETER",
                e.body_text(),
            )
        })
}

pub fn query<T: DeserializeOwned>(parts: &Parts) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_PARAMETER",
                e.body_text(),
            )
        })
}

/// Reads a JSON body within the configured limit: 415 without a JSON content type, 413 over the
/// limit, 400 for malformed JSON, 422 for JSON of the wrong shape.
pub async fn json_body<T: DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, ApiError> {
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "expected a request body with `Content-Type: application/json`",
        ));
    }
    let limit = parts
        .extensions
        .get::<BodyLimit>()
        .map_or(usize::MAX, |l| l.0);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            format!("request body does not match the schema: {e}"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("request body is not valid JSON: {e}"),
        ),
    })
}

pub fn respond<T: Serialize>(status: u16, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, Json(value)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub fn respond_empty(result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `application/json` or any `+json` type; parameters such as `charset` are ignored.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.contains('/') && essence.to_ascii_lowercase().ends_with("+json"))
}
