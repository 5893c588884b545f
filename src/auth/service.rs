//! `Auth`: credentials, tokens, API keys, sessions and the access policy behind the generated auth routes.

use super::*;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;

use super::config::SecurityConfig;
use crate::api::runtime::{Credential, Identity, Principal};
use crate::api::types::AuditOutcome;
use crate::engine::SystemDb;
use crate::error::{Error, Result};
use audit::AuditRecord;
use jwt::{TokenIssuer, TokenKind};
use ratelimit::{Caller, Limiter};

/// Fills an array from the OS random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Config(format!("no OS randomness available: {e}")))?;
    Ok(bytes)
}

/// The authentication state shared by the middleware, the policy and the auth/admin services.
pub struct Auth {
    db: SystemDb,
    pub(super) tokens: TokenIssuer,
    pub(super) login_limiter: Limiter<IpAddr>,
    request_limiter: Limiter<Caller>,
    trusted_proxies: Vec<IpAddr>,
    /// Verified against when a login names an unknown user, so both cost the same.
    pub(super) decoy_hash: String,
    /// Live logins and API keys, with their activity.
    pub sessions: Arc<sessions::SessionRegistry>,
}

impl Auth {
    /// Loads or creates the signing key, brings the built-in roles up to date, and on an empty
    /// user table creates `admin` (password from the configuration, or generated and printed
    /// once on stdout; never logged). A generated signing key is kept in `data_dir`.
    pub async fn start(
        security: &SecurityConfig,
        data_dir: &Path,
        db: SystemDb,
    ) -> Result<Arc<Auth>> {
        let tokens = TokenIssuer::new(security, data_dir)?;
        let decoy_hash = password::hash(hex::encode(random_bytes::<16>()?)).await?;
        let admin_password = security.admin_password.clone();
        db.call(move |conn| {
            store::sync_builtin_roles(conn)?;
            if store::count_users(conn)? == 0 {
                let (password, generated) = match admin_password {
                    Some(p) => (p.expose().to_string(), false),
                    None => (hex::encode(random_bytes::<12>()?), true),
                };
                let hash = password::hash_blocking(&password)?;
                store::create_user(conn, "admin", &hash, &["admin".to_string()], false)?;
                if generated {
                    println!(
                        "rustydb: created user `admin` with password `{password}` (shown once; \
                             set RUSTYDB_ADMIN_PASSWORD before the first start to choose it)"
                    );
                }
            }
            Ok(())
        })
        .await?;
        Ok(Arc::new(Auth {
            db,
            tokens,
            login_limiter: Limiter::per_minute(security.login_attempts_per_minute),
            request_limiter: Limiter::per_minute(security.requests_per_minute),
            trusted_proxies: security.trusted_proxies.clone(),
            decoy_hash,
            sessions: Arc::default(),
        }))
    }

    /// The client address: the socket peer, unless the peer is a trusted proxy, in which case the
    /// nearest untrusted address of `X-Forwarded-For`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .copied()
            .or(Some(peer))
    }

    /// Resolves the request's credentials, first found wins: `Authorization: Bearer <jwt>`,
    /// `X-API-Key`, then (browsers cannot set headers on a WebSocket) the subprotocols
    /// `rustydb.bearer.<jwt>` or `rustydb.apikey.<key>`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Principal {
        let verdict = if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
            match token {
                Some(token) => self.identity_from_token(token.trim()).await,
                None => Err("Authorization must be `Bearer <token>`".into()),
            }
        } else if let Some(value) = headers.get("x-api-key") {
            match value.to_str() {
                Ok(key) => self.identity_from_key(key.trim()).await,
                Err(_) => Err("invalid API key".into()),
            }
        } else {
            let offered: Vec<&str> = headers
                .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            let find = |prefix: &str| offered.iter().find_map(|p| p.strip_prefix(prefix));
            if let Some(token) = find("rustydb.bearer.") {
                self.identity_from_token(token).await
            } else if let Some(key) = find("rustydb.apikey.") {
                self.identity_from_key(key).await
            } else {
                return Principal::Anonymous;
            }
        };
        match verdict {
            Ok(identity) => Principal::User(Arc::new(identity)),
            Err(reason) => Principal::Rejected(reason),
        }
    }

    /// Verifies an access token string (also used by WebSocket and GraphQL connection auth).
    pub async fn identity_from_token(&self, token: &str) -> std::result::Result<Identity, String> {
        let claims = self.tokens.verify(token, TokenKind::Access)?;
        let (family, user_id) = (claims.fam.clone(), claims.sub.clone());
        let access = self
            .db
            .call(move |c| {
                if !store::family_live(c, &family, &user_id)? {
                    return Ok(None);
                }
                store::user_access(c, &user_id)
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token check failed");
                "token could not be checked".to_string()
            })?;
        let access = live_user(access, "token has been revoked")?;
        Ok(Identity {
            user_id: claims.sub,
            username: access.username,
            roles: access.roles,
            permissions: access.permissions,
            credential: Credential::Jwt {
                family: claims.fam,
                expires_at: claims.exp,
                accepted_until: claims.exp.saturating_add(self.tokens.leeway_secs() as i64),
            },
        })
    }

    async fn identity_from_key(&self, key: &str) -> std::result::Result<Identity, String> {
        const INVALID: &str = "invalid API key";
        if !api_keys::well_formed(key) {
            return Err(INVALID.into());
        }
        let digest = api_keys::digest(key);
        let found = self
            .db
            .call(move |c| {
                let Some(stored) = store::find_key(c, &digest)? else {
                    return Ok(None);
                };
                if !api_keys::same(&stored.hash, &digest) {
                    return Ok(None);
                }
                // Record use at most once a minute: a write per request would serialize reads.
                let stale = stored
                    .last_used_at
                    .is_none_or(|t| chrono::Utc::now() - t > chrono::TimeDelta::minutes(1));
                if stale && !stored.revoked {
                    store::touch_key(c, &stored.id)?;
                }
                let access = store::user_access(c, &stored.user_id)?;
                Ok(Some((stored, access)))
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "API key check failed");
                "API key could not be checked".to_string()
            })?;
        let Some((stored, access)) = found else {
            return Err(INVALID.into());
        };
        if stored.revoked {
            return Err("API key has been revoked".into());
        }
        if stored.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return Err("API key has expired".into());
        }
        let access = live_user(access, INVALID)?;
        Ok(Identity {
            user_id: stored.user_id,
            username: access.username,
            roles: access.roles,
            permissions: access.permissions,
            credential: Credential::ApiKey {
                key_id: stored.id,
                expires_at: stored.expires_at,
            },
        })
    }

    /// Checks that long-lived credentials (a WebSocket's) are still good: the login not revoked
    /// or the key not revoked or expired, the user still enabled. Returns the identity with the
    /// permissions of the user's current roles.
    pub async fn revalidate(&self, identity: &Identity) -> std::result::Result<Identity, String> {
        let (user_id, credential) = (identity.user_id.clone(), identity.credential.clone());
        let access = self
            .db
            .call(move |c| {
                let live = match &credential {
                    Credential::Jwt { family, .. } => store::family_live(c, family, &user_id)?,
                    Credential::ApiKey { key_id, .. } => {
                        store::key_live(c, key_id)?.unwrap_or(false)
                    }
                };
                if !live {
                    return Ok(None);
                }
                store::user_access(c, &user_id)
            })
            .await
            .map_err(|e| format!("credentials could not be checked: {e}"))?;
        let access = live_user(access, "credentials have been revoked")?;
        Ok(Identity {
            user_id: identity.user_id.clone(),
            username: access.username,
            roles: access.roles,
            permissions: access.permissions,
            credential: identity.credential.clone(),
        })
    }

    /// Checks the per-user (or per-IP for anonymous callers) request limit.
    pub fn check_request_rate(
        &self,
        principal: &Principal,
        ip: Option<IpAddr>,
    ) -> ratelimit::Verdict {
        let caller = match principal {
            Principal::User(identity) => Caller::User(identity.user_id.clone()),
            _ => Caller::Anonymous(ip.unwrap_or(IpAddr::from([0, 0, 0, 0]))),
        };
        self.request_limiter.check(&caller)
    }

    /// Drops limiter state of idle callers, and sessions idle past the refresh-token lifetime;
    /// run periodically.
    pub fn prune_limiters(&self) {
        self.login_limiter.prune();
        self.request_limiter.prune();
        self.sessions
            .prune(chrono::TimeDelta::seconds(self.tokens.refresh_ttl_secs));
    }

    /// For each (kind, credential id, user id): whether the login family or API key still works.
    pub async fn credentials_live(
        &self,
        sessions: Vec<(crate::api::types::SessionKind, String, String)>,
    ) -> Result<Vec<bool>> {
        use crate::api::types::SessionKind;
        self.db
            .call(move |c| {
                sessions
                    .iter()
                    .map(|(kind, id, user_id)| match kind {
                        SessionKind::Login => store::family_live(c, id, user_id),
                        SessionKind::ApiKey => Ok(store::key_live(c, id)?.unwrap_or(false)),
                    })
                    .collect()
            })
            .await
    }

    /// Revokes what a session authenticates with: its login family or its API key.
    pub async fn revoke_session_credential(
        &self,
        session: &sessions::Session,
        reason: &str,
    ) -> Result<()> {
        let (kind, id, user_id, reason) = (
            session.kind,
            session.credential_id.clone(),
            session.user_id.clone(),
            reason.to_string(),
        );
        self.db
            .call(move |c| match kind {
                crate::api::types::SessionKind::Login => store::revoke_family(c, &id, &reason),
                crate::api::types::SessionKind::ApiKey => store::revoke_key(c, &user_id, &id),
            })
            .await
    }

    /// Records a request of an authenticated caller in its session. A login first seen since
    /// the server started gets its login time from `system.db`.
    pub async fn record_activity(&self, identity: &Identity, client: Option<IpAddr>) {
        let id = sessions::session_id(&identity.credential);
        let mut connected_at = chrono::Utc::now();
        if !self.sessions.contains(&id)
            && let Credential::Jwt { family, .. } = &identity.credential
        {
            let family = family.clone();
            if let Ok(Some(at)) = self
                .db
                .call(move |c| store::family_created_at(c, &family))
                .await
            {
                connected_at = at;
            }
        }
        self.sessions.touch(identity, client, connected_at);
    }

    pub async fn audit(&self, entry: AuditRecord) {
        audit::record(&self.db, entry).await;
    }

    pub(crate) fn db(&self) -> &SystemDb {
        &self.db
    }
}

fn live_user(
    access: Option<store::UserAccess>,
    gone: &str,
) -> std::result::Result<store::UserAccess, String> {
    match access {
        None => Err(gone.to_string()),
        Some(a) if a.disabled => Err("user is disabled".to_string()),
        Some(a) => Ok(a),
    }
}

/// An audit record about the caller.
pub(crate) fn audit_by(
    identity: &Identity,
    action: &'static str,
    outcome: AuditOutcome,
) -> AuditRecord {
    AuditRecord::new(action, outcome).actor(identity.username.clone())
}

/// The last moment (Unix seconds) the server accepts this credential: a JWT's `exp` plus the
/// validation leeway, an API key's expiry. Open connections end then, not at `exp`, so a token
/// the upgrade accepted is never refused by the connection it opened a second later.
pub fn accepted_until(credential: &Credential) -> Option<i64> {
    match credential {
        Credential::Jwt { accepted_until, .. } => Some(*accepted_until),
        Credential::ApiKey { expires_at, .. } => expires_at.as_ref().map(|t| t.timestamp()),
    }
}
