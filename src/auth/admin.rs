//! The `admin` subsystem: users, roles, the permission catalog and the audit log. Every change is
//! audited with the acting admin.

use std::sync::Arc;

use super::audit::{self, AuditFilter};
use super::{Auth, audit_by, password, store};
use crate::api::admin::{
    AssignUserRolesPath, DeleteRolePath, DeleteUserPath, GetRolePath, GetUserPath,
    ListAuditLogQuery, ListUsersQuery, UpdateRolePath, UpdateUserPath,
};
use crate::api::runtime::RequestContext;
use crate::api::types::{
    AuditList, AuditOutcome, PermissionInfo, PermissionList, Role, RoleAssignment, RoleCreate,
    RoleList, RoleUpdate, User, UserCreate, UserList, UserUpdate,
};
use crate::api::{AdminApi, ApiError, Permission};

pub struct AdminService {
    auth: Arc<Auth>,
}

impl AdminService {
    pub fn new(auth: Arc<Auth>) -> Self {
        AdminService { auth }
    }

    async fn audited(
        &self,
        ctx: &RequestContext,
        action: &'static str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), ApiError> {
        let identity = ctx.identity()?;
        self.auth
            .audit(
                audit_by(identity, action, AuditOutcome::Success)
                    .target(target)
                    .ip(ctx.client_ip)
                    .details(details),
            )
            .await;
        Ok(())
    }
}

impl AdminApi for AdminService {
    async fn list_users(
        &self,
        _ctx: RequestContext,
        query: ListUsersQuery,
    ) -> Result<UserList, ApiError> {
        let (users, total) = self
            .auth
            .db()
            .call(move |c| store::list_users(c, query.limit, query.offset))
            .await?;
        Ok(UserList { users, total })
    }

    async fn create_user(&self, ctx: RequestContext, body: UserCreate) -> Result<User, ApiError> {
        store::validate_username(&body.username)?;
        let hash = password::hash(body.password.to_string()).await?;
        let (username, roles, disabled) = (
            body.username.to_string(),
            body.roles.clone(),
            body.disabled.unwrap_or(false),
        );
        let user = self
            .auth
            .db()
            .call(move |c| store::create_user(c, &username, &hash, &roles, disabled))
            .await?;
        self.audited(
            &ctx,
            "user.create",
            &user.username,
            serde_json::json!({ "roles": user.roles, "disabled": user.disabled }),
        )
        .await?;
        Ok(user)
    }

    async fn get_user(&self, _ctx: RequestContext, path: GetUserPath) -> Result<User, ApiError> {
        Ok(self
            .auth
            .db()
            .call(move |c| store::get_user(c, &path.user_id))
            .await?)
    }

    async fn update_user(
        &self,
        ctx: RequestContext,
        path: UpdateUserPath,
        body: UserUpdate,
    ) -> Result<User, ApiError> {
        let password_hash = match &body.password {
            Some(p) => Some(password::hash(p.to_string()).await?),
            None => None,
        };
        let change = store::UserChange {
            password_hash,
            roles: body.roles.clone(),
            disabled: body.disabled,
        };
        let user = self
            .auth
            .db()
            .call(move |c| store::update_user(c, &path.user_id, &change))
            .await?;
        self.audited(
            &ctx,
            "user.update",
            &user.username,
            serde_json::json!({
                "password_changed": body.password.is_some(),
                "roles": body.roles,
                "disabled": body.disabled,
            }),
        )
        .await?;
        Ok(user)
    }

    async fn delete_user(&self, ctx: RequestContext, path: DeleteUserPath) -> Result<(), ApiError> {
        let username = self
            .auth
            .db()
            .call(move |c| store::delete_user(c, &path.user_id))
            .await?;
        self.audited(&ctx, "user.delete", &username, serde_json::Value::Null)
            .await
    }

    async fn assign_user_roles(
        &self,
        ctx: RequestContext,
        path: AssignUserRolesPath,
        body: RoleAssignment,
    ) -> Result<User, ApiError> {
        let change = store::UserChange {
            password_hash: None,
            roles: Some(body.roles.clone()),
            disabled: None,
        };
        let user = self
            .auth
            .db()
            .call(move |c| store::update_user(c, &path.user_id, &change))
            .await?;
        self.audited(
            &ctx,
            "user.roles",
            &user.username,
            serde_json::json!({ "roles": user.roles }),
        )
        .await?;
        Ok(user)
    }

    async fn list_roles(&self, _ctx: RequestContext) -> Result<RoleList, ApiError> {
        let roles = self.auth.db().call(|c| store::list_roles(c)).await?;
        Ok(RoleList { roles })
    }

    async fn create_role(&self, ctx: RequestContext, body: RoleCreate) -> Result<Role, ApiError> {
        let (name, description, permissions) = (
            body.name.to_string(),
            body.description
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            body.permissions.clone(),
        );
        let role = self
            .auth
            .db()
            .call(move |c| store::create_role(c, &name, &description, &permissions))
            .await?;
        self.audited(
            &ctx,
            "role.create",
            &role.name,
            serde_json::json!({ "permissions": role.permissions }),
        )
        .await?;
        Ok(role)
    }

    async fn get_role(&self, _ctx: RequestContext, path: GetRolePath) -> Result<Role, ApiError> {
        Ok(self
            .auth
            .db()
            .call(move |c| store::get_role(c, &path.role_name))
            .await?)
    }

    async fn update_role(
        &self,
        ctx: RequestContext,
        path: UpdateRolePath,
        body: RoleUpdate,
    ) -> Result<Role, ApiError> {
        let description = body.description.as_ref().map(|d| d.to_string());
        let permissions = body.permissions.clone();
        let role = self
            .auth
            .db()
            .call(move |c| {
                store::update_role(
                    c,
                    &path.role_name,
                    description.as_deref(),
                    permissions.as_deref(),
                )
            })
            .await?;
        self.audited(
            &ctx,
            "role.update",
            &role.name,
            serde_json::json!({ "permissions": role.permissions }),
        )
        .await?;
        Ok(role)
    }

    async fn delete_role(&self, ctx: RequestContext, path: DeleteRolePath) -> Result<(), ApiError> {
        let name = path.role_name.clone();
        self.auth
            .db()
            .call(move |c| store::delete_role(c, &name))
            .await?;
        self.audited(
            &ctx,
            "role.delete",
            &path.role_name,
            serde_json::Value::Null,
        )
        .await
    }

    async fn list_permissions(&self, _ctx: RequestContext) -> Result<PermissionList, ApiError> {
        Ok(PermissionList {
            permissions: Permission::ALL
                .iter()
                .map(|p| PermissionInfo {
                    name: p.as_str().to_string(),
                    description: p.description().to_string(),
                })
                .collect(),
        })
    }

    async fn list_audit_log(
        &self,
        _ctx: RequestContext,
        query: ListAuditLogQuery,
    ) -> Result<AuditList, ApiError> {
        let filter = AuditFilter {
            action: query.action,
            actor: query.actor,
            outcome: query.outcome,
            limit: query.limit,
            offset: query.offset,
        };
        let (entries, total) = self
            .auth
            .db()
            .call(move |c| audit::list(c, &filter))
            .await?;
        Ok(AuditList { entries, total })
    }
}
