//! The `auth` subsystem: login, refresh, logout, validate and the caller's API keys.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;

use super::audit::AuditRecord;
use super::jwt::TokenKind;
use super::store::{self, RefreshUse};
use super::{Auth, api_keys, audit_by, password};
use crate::api::auth::{GetApiKeyPath, RevokeApiKeyPath};
use crate::api::runtime::{Credential, RequestContext};
use crate::api::types::{
    ApiKeyCreate, ApiKeyCreated, ApiKeyInfo, ApiKeyList, AuditOutcome, AuthMethod, LoginRequest,
    RefreshRequest, TokenInfo, TokenPair, TokenPairTokenType,
};
use crate::api::{ApiError, AuthApi};
use crate::error::Error;

const BAD_LOGIN: &str = "invalid username or password";

pub struct AuthService {
    auth: Arc<Auth>,
}

impl AuthService {
    pub fn new(auth: Arc<Auth>) -> Self {
        AuthService { auth }
    }

    /// A new access and refresh token of `family`; the refresh token is recorded as unused.
    async fn issue_pair(
        &self,
        user_id: &str,
        username: &str,
        roles: &[String],
        family: &str,
    ) -> Result<TokenPair, ApiError> {
        let tokens = &self.auth.tokens;
        let (access, _) = tokens.issue(user_id, username, roles, family, TokenKind::Access)?;
        let (refresh, claims) =
            tokens.issue(user_id, username, roles, family, TokenKind::Refresh)?;
        let (jti, fam, exp) = (claims.jti, claims.fam, claims.exp);
        self.auth
            .db()
            .call(move |c| store::insert_refresh(c, &jti, &fam, exp))
            .await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: tokens.access_ttl_secs,
            refresh_expires_in: tokens.refresh_ttl_secs,
            token_type: TokenPairTokenType::Bearer,
        })
    }

    async fn login_failed(&self, username: &str, ip: Option<IpAddr>, reason: &str) -> ApiError {
        self.auth
            .audit(
                AuditRecord::new("auth.login", AuditOutcome::Failure)
                    .actor(username)
                    .ip(ip)
                    .details(serde_json::json!({ "reason": reason })),
            )
            .await;
        ApiError::unauthorized(BAD_LOGIN)
    }
}

impl AuthApi for AuthService {
    async fn login(&self, ctx: RequestContext, body: LoginRequest) -> Result<TokenPair, ApiError> {
        let ip = ctx.client_ip;
        let username = body.username.to_string();
        let verdict = self
            .auth
            .login_limiter
            .check(&ip.unwrap_or(IpAddr::from([0, 0, 0, 0])));
        if let Some(wait) = verdict.retry_after_secs {
            self.auth
                .audit(
                    AuditRecord::new("auth.login", AuditOutcome::Denied)
                        .actor(username)
                        .ip(ip)
                        .details(serde_json::json!({ "reason": "rate limited" })),
                )
                .await;
            return Err(ApiError::rate_limited(wait));
        }
        let lookup = username.clone();
        let found = self
            .auth
            .db()
            .call(move |c| store::find_login(c, &lookup))
            .await?;
        let password = body.password.to_string();
        let Some((user_id, hash, disabled)) = found else {
            // Same cost as a real check, so timing does not reveal which names exist.
            password::verify(password, self.auth.decoy_hash.clone()).await?;
            return Err(self.login_failed(&username, ip, "unknown user").await);
        };
        if !password::verify(password, hash).await? {
            return Err(self.login_failed(&username, ip, "wrong password").await);
        }
        if disabled {
            return Err(self.login_failed(&username, ip, "user disabled").await);
        }
        let family = uuid::Uuid::new_v4().simple().to_string();
        let (uid, fam) = (user_id.clone(), family.clone());
        let access = self
            .auth
            .db()
            .call(move |c| {
                store::create_family(c, &fam, &uid)?;
                store::user_access(c, &uid)
            })
            .await?
            .ok_or_else(|| ApiError::unauthorized(BAD_LOGIN))?;
        let pair = self
            .issue_pair(&user_id, &access.username, &access.roles, &family)
            .await?;
        // The session exists from the login, before the first request with its token.
        let identity = crate::api::runtime::Identity {
            user_id: user_id.clone(),
            username: access.username.clone(),
            roles: access.roles.clone(),
            permissions: Vec::new(),
            credential: Credential::Jwt {
                family: family.clone(),
                expires_at: 0,
                accepted_until: 0,
            },
        };
        self.auth.sessions.login(&identity, ip);
        self.auth
            .audit(
                AuditRecord::new("auth.login", AuditOutcome::Success)
                    .actor(access.username)
                    .ip(ip),
            )
            .await;
        Ok(pair)
    }

    async fn refresh_token(
        &self,
        ctx: RequestContext,
        body: RefreshRequest,
    ) -> Result<TokenPair, ApiError> {
        let claims = self
            .auth
            .tokens
            .verify(&body.refresh_token, TokenKind::Refresh)
            .map_err(ApiError::unauthorized)?;
        let (jti, fam, uid) = (claims.jti.clone(), claims.fam.clone(), claims.sub.clone());
        let (used, access) = self
            .auth
            .db()
            .call(move |c| {
                let used = store::use_refresh(c, &jti, &fam)?;
                if let RefreshUse::Reused = used {
                    store::revoke_family(c, &fam, "refresh token reused")?;
                }
                let live = store::family_live(c, &fam, &uid)?;
                let access = if live {
                    store::user_access(c, &uid)?
                } else {
                    None
                };
                Ok((used, access))
            })
            .await?;
        let record = |outcome, reason: &str| {
            AuditRecord::new("auth.refresh", outcome)
                .actor(claims.username.clone())
                .ip(ctx.client_ip)
                .details(serde_json::json!({ "reason": reason, "family": claims.fam }))
        };
        match used {
            RefreshUse::Reused => {
                self.auth.sessions.remove(
                    &format!("login-{}", claims.fam),
                    crate::api::types::SessionEventKind::Revoked,
                );
                let mut entry = record(AuditOutcome::Denied, "refresh token reused");
                entry.action = "auth.refresh_reuse";
                self.auth.audit(entry).await;
                return Err(ApiError::unauthorized(
                    "refresh token already used; every token of this session is revoked",
                ));
            }
            RefreshUse::Unknown => {
                self.auth
                    .audit(record(AuditOutcome::Failure, "unknown refresh token"))
                    .await;
                return Err(ApiError::unauthorized("unknown refresh token"));
            }
            RefreshUse::Fresh => {}
        }
        let Some(access) = access.filter(|a| !a.disabled) else {
            self.auth
                .audit(record(AuditOutcome::Failure, "session revoked"))
                .await;
            return Err(ApiError::unauthorized("session has been revoked"));
        };
        let pair = self
            .issue_pair(&claims.sub, &access.username, &access.roles, &claims.fam)
            .await?;
        self.auth.sessions.refreshed(&claims.fam);
        self.auth
            .audit(record(AuditOutcome::Success, "rotated"))
            .await;
        Ok(pair)
    }

    async fn logout(&self, ctx: RequestContext) -> Result<(), ApiError> {
        let identity = ctx.identity()?;
        let Credential::Jwt { family, .. } = &identity.credential else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "NOT_A_SESSION",
                "API keys have no session; revoke the key with DELETE /api/v1/auth/api-keys/{key_id}",
            ));
        };
        let fam = family.clone();
        self.auth
            .db()
            .call(move |c| store::revoke_family(c, &fam, "logout"))
            .await?;
        self.auth.sessions.remove(
            &crate::auth::sessions::session_id(&identity.credential),
            crate::api::types::SessionEventKind::Logout,
        );
        self.auth
            .audit(audit_by(identity, "auth.logout", AuditOutcome::Success).ip(ctx.client_ip))
            .await;
        Ok(())
    }

    async fn validate_token(&self, ctx: RequestContext) -> Result<TokenInfo, ApiError> {
        let identity = ctx.identity()?;
        let (auth_method, expires_at) = match &identity.credential {
            Credential::Jwt { expires_at, .. } => (
                AuthMethod::Jwt,
                chrono::DateTime::from_timestamp(*expires_at, 0),
            ),
            Credential::ApiKey { expires_at, .. } => (AuthMethod::ApiKey, *expires_at),
        };
        Ok(TokenInfo {
            valid: true,
            user_id: identity.user_id.clone(),
            username: identity.username.clone(),
            roles: identity.roles.clone(),
            permissions: identity
                .permissions
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            auth_method,
            expires_at,
        })
    }

    async fn create_api_key(
        &self,
        ctx: RequestContext,
        body: ApiKeyCreate,
    ) -> Result<ApiKeyCreated, ApiError> {
        let identity = ctx.identity()?;
        let expires_at = match body.expires_in_days {
            None => None,
            Some(days @ 1..=3650) => Some(chrono::Utc::now() + chrono::TimeDelta::days(days)),
            Some(_) => {
                return Err(Error::Invalid("expires_in_days must be 1 to 3650".into()).into());
            }
        };
        let minted = api_keys::mint()?;
        let (user_id, name, prefix, hash) = (
            identity.user_id.clone(),
            body.name.to_string(),
            minted.prefix.clone(),
            minted.hash.clone(),
        );
        let info = self
            .auth
            .db()
            .call(move |c| {
                store::insert_key(
                    c,
                    &store::NewKey {
                        user_id: &user_id,
                        name: &name,
                        prefix: &prefix,
                        hash: &hash,
                        expires_at,
                    },
                )
            })
            .await?;
        self.auth
            .audit(
                audit_by(identity, "api_key.create", AuditOutcome::Success)
                    .target(info.id.clone())
                    .ip(ctx.client_ip),
            )
            .await;
        Ok(ApiKeyCreated {
            id: info.id,
            name: info.name,
            api_key: minted.key,
            created_at: info.created_at,
            expires_at: info.expires_at,
        })
    }

    async fn list_api_keys(&self, ctx: RequestContext) -> Result<ApiKeyList, ApiError> {
        let user_id = ctx.identity()?.user_id.clone();
        let keys = self
            .auth
            .db()
            .call(move |c| store::list_keys(c, &user_id))
            .await?;
        Ok(ApiKeyList {
            total: keys.len() as i64,
            keys,
        })
    }

    async fn get_api_key(
        &self,
        ctx: RequestContext,
        path: GetApiKeyPath,
    ) -> Result<ApiKeyInfo, ApiError> {
        let user_id = ctx.identity()?.user_id.clone();
        Ok(self
            .auth
            .db()
            .call(move |c| store::get_key(c, &user_id, &path.key_id))
            .await?)
    }

    async fn revoke_api_key(
        &self,
        ctx: RequestContext,
        path: RevokeApiKeyPath,
    ) -> Result<(), ApiError> {
        let identity = ctx.identity()?;
        let (user_id, key_id) = (identity.user_id.clone(), path.key_id.clone());
        self.auth
            .db()
            .call(move |c| store::revoke_key(c, &user_id, &key_id))
            .await?;
        self.auth.sessions.remove(
            &format!("apikey-{}", path.key_id),
            crate::api::types::SessionEventKind::Revoked,
        );
        self.auth
            .audit(
                audit_by(identity, "api_key.revoke", AuditOutcome::Success)
                    .target(path.key_id)
                    .ip(ctx.client_ip),
            )
            .await;
        Ok(())
    }
}
