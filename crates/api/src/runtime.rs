//! What the generated routers call: the permission check, input extraction with the seed's error
//! body for every rejection, and response rendering.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
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
    pub client_ip: Option<IpAddr>,
    /// The socket peer (or the proxy, behind one).
    pub peer: Option<std::net::SocketAddr>,
}

impl RequestContext {
    /// The authenticated caller; the generated check guarantees one on protected operations.
    pub fn identity(&self) -> Result<&Arc<Identity>, ApiError> {
        match &self.principal {
            Principal::User(identity) => Ok(identity),
            _ => Err(ApiError::unauthorized("credentials required")),
        }
    }
}

/// The caller as authentication left it, installed as a request extension.
#[derive(Debug, Clone, Default)]
pub enum Principal {
    /// No credentials were presented.
    #[default]
    Anonymous,
    /// Credentials were presented and refused; the reason is safe to show.
    Rejected(String),
    User(Arc<Identity>),
}

/// An authenticated user with the permissions of its current roles.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub permissions: Vec<Permission>,
    pub credential: Credential,
}

impl Identity {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token of the login `family`, valid until `expires_at` (Unix seconds) and
    /// accepted until `accepted_until` (`expires_at` plus the clock-skew leeway).
    Jwt {
        family: String,
        expires_at: i64,
        accepted_until: i64,
    },
    /// An API key, valid until `expires_at` if it has one.
    ApiKey {
        key_id: String,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// The client address: the socket peer, or `X-Forwarded-For` from a trusted proxy. Installed as a
/// request extension by the authentication middleware.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Decides whether a principal may use a protected operation (and records refusals). Installed as
/// a request extension, so the generated routers stay independent of the policy.
pub trait AccessPolicy: Send + Sync + 'static {
    fn check<'a>(
        &'a self,
        principal: &'a Principal,
        operation: &'static OperationMeta,
        client_ip: Option<IpAddr>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;
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
        .unwrap_or_default();
    let client_ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
    if operation.access != Access::Public {
        let policy = parts
            .extensions
            .get::<Arc<dyn AccessPolicy>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no access policy installed"))?;
        policy.check(&principal, operation, client_ip).await?;
    }
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    Ok(RequestContext {
        request_id,
        operation,
        principal,
        client_ip,
        peer,
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

pub use crate::upgrade::WebSocketUpgrade;

/// What a WebSocket endpoint's query asked for, read and checked by the generated router
/// (`interval` and `filters` in `schema/websockets.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// Time between messages; `None` sends each event as it comes.
    pub interval: Option<std::time::Duration>,
    /// (key, value): only events whose `data` has `key` equal to `value`.
    pub filters: Vec<(&'static str, String)>,
}

/// The WebSocket upgrade of a request: 426 with the error body for a plain HTTP request.
pub async fn websocket_upgrade(parts: &mut Parts) -> Result<WebSocketUpgrade, ApiError> {
    WebSocketUpgrade::from_parts(parts).map_err(upgrade_required)
}

/// 426 for a request to a WebSocket endpoint that is not a complete upgrade; `why` says what is
/// missing.
pub fn upgrade_required(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "WEBSOCKET_UPGRADE_REQUIRED",
        format!("this endpoint speaks WebSocket: {why}"),
    )
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

/// A `text/*` body with its declared media type (the Prometheus exposition, for one).
pub fn respond_text(
    status: u16,
    media_type: &'static str,
    result: Result<String, ApiError>,
) -> Response {
    match result {
        Ok(text) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (
                status,
                [(axum::http::header::CONTENT_TYPE, media_type)],
                text,
            )
                .into_response()
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
