//! The API documents: the committed OpenAPI file served byte for byte, and Swagger UI (vendored
//! assets, so it works offline).

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// `generated/openapi.json`, the document `cargo codegen` wrote; the drift test keeps it current.
pub const OPENAPI_JSON: &str = include_str!("../../generated/openapi.json");
pub(super) const OPENAPI_PATH: &str = "/api-docs/openapi.json";

pub(super) fn router() -> Router {
    Router::new()
        .route(
            OPENAPI_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON) }),
        )
        .merge(SwaggerUi::new("/swagger-ui").config(Config::from(OPENAPI_PATH)))
}
