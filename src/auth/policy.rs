//! The RBAC policy the generated routers consult before any hand-written code runs: 401 without
//! valid credentials, 403 (audited) without the operation's permission.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use super::Auth;
use super::audit::AuditRecord;
use crate::api::runtime::{AccessPolicy, ApiError, Principal};
use crate::api::types::AuditOutcome;
use crate::api::{Access, OperationMeta};

pub struct RbacPolicy {
    pub auth: Arc<Auth>,
}

impl AccessPolicy for RbacPolicy {
    fn check<'a>(
        &'a self,
        principal: &'a Principal,
        operation: &'static OperationMeta,
        client_ip: Option<IpAddr>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>> {
        Box::pin(async move {
            let identity = match principal {
                Principal::Anonymous => {
                    return Err(ApiError::unauthorized(
                        "credentials required: `Authorization: Bearer <token>` or `X-API-Key`",
                    ));
                }
                Principal::Rejected(reason) => return Err(ApiError::unauthorized(reason.clone())),
                Principal::User(identity) => identity,
            };
            let Access::Requires(permission) = operation.access else {
                return Ok(());
            };
            if identity.has(permission) {
                return Ok(());
            }
            self.auth
                .audit(
                    AuditRecord::new("access.denied", AuditOutcome::Denied)
                        .actor(identity.username.clone())
                        .target(operation.id)
                        .ip(client_ip)
                        .details(serde_json::json!({
                            "permission": permission.as_str(),
                            "method": operation.method,
                            "path": operation.path,
                        })),
                )
                .await;
            Err(ApiError::forbidden(format!(
                "permission `{}` required",
                permission.as_str()
            )))
        })
    }
}
