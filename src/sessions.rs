//! The `sessions` subsystem: live logins and API keys with their activity, and terminating one
//! (credential revoked, statements interrupted, transactions rolled back, WebSockets closed).

use std::sync::Arc;

use crate::api::runtime::{Identity, RequestContext};
use crate::api::sessions::{GetSessionPath, TerminateSessionPath};
use crate::api::types::{
    AuditOutcome, SessionEventKind, SessionInfo, SessionKind, SessionList, SessionTerminated,
};
use crate::api::{ApiError, Permission, SessionsApi};
use crate::auth::Auth;
use crate::auth::audit::AuditRecord;
use crate::engine::queries::QueryMonitor;
use crate::engine::transactions::Transactions;
use crate::events::connections::{CLOSE_BY_ADMIN, Control, Registry};

use crate::auth::sessions::{Session, SessionRegistry};

pub struct SessionService {
    auth: Arc<Auth>,
    queries: Arc<QueryMonitor>,
    transactions: Arc<Transactions>,
    connections: Arc<Registry>,
}

impl SessionService {
    pub fn new(
        auth: Arc<Auth>,
        queries: Arc<QueryMonitor>,
        transactions: Arc<Transactions>,
        connections: Arc<Registry>,
    ) -> Self {
        SessionService {
            auth,
            queries,
            transactions,
            connections,
        }
    }

    fn registry(&self) -> &SessionRegistry {
        &self.auth.sessions
    }

    /// The sessions the caller may see whose credential is still live; the dead ones (revoked
    /// by a password change, a disabled user, an expired key...) are dropped from the registry.
    async fn visible(&self, identity: &Identity) -> Result<Vec<Arc<Session>>, ApiError> {
        let all = identity.has(Permission::DatabaseAdmin);
        let candidates: Vec<Arc<Session>> = self
            .registry()
            .list()
            .into_iter()
            .filter(|s| all || s.user_id == identity.user_id)
            .collect();
        let checks: Vec<(SessionKind, String, String)> = candidates
            .iter()
            .map(|s| (s.kind, s.credential_id.clone(), s.user_id.clone()))
            .collect();
        let live = self
            .auth
            .credentials_live(checks)
            .await
            .map_err(ApiError::internal)?;
        let mut sessions = Vec::new();
        for (session, live) in candidates.into_iter().zip(live) {
            if live {
                sessions.push(session);
            } else {
                self.registry()
                    .remove(&session.id, SessionEventKind::Revoked);
            }
        }
        Ok(sessions)
    }

    async fn find(&self, ctx: &RequestContext, id: &str) -> Result<Arc<Session>, ApiError> {
        self.visible(ctx.identity()?)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))
    }

    fn view(&self, session: &Session) -> SessionInfo {
        let activity = session.activity();
        let mut websocket_connections: Vec<String> = self
            .connections
            .list()
            .into_iter()
            .filter(|c| c.session_id == session.id)
            .map(|c| c.id.clone())
            .collect();
        websocket_connections.sort();
        let mut open_transactions = self.transactions.of_session(&session.id);
        open_transactions.sort();
        SessionInfo {
            session_id: session.id.clone(),
            kind: session.kind,
            user_id: session.user_id.clone(),
            username: session.username.clone(),
            client_address: activity.client.map(|ip| ip.to_string()),
            connected_at: session.connected_at,
            last_activity_at: activity.last,
            queries_executed: session.queries_executed(),
            database: activity.database,
            open_transactions,
            websocket_connections,
            running_queries: self
                .queries
                .running
                .list()
                .iter()
                .filter(|q| q.session_id == session.id)
                .map(|q| q.id.clone())
                .collect(),
        }
    }
}

impl SessionsApi for SessionService {
    async fn list_sessions(&self, ctx: RequestContext) -> Result<SessionList, ApiError> {
        let mut sessions: Vec<SessionInfo> = self
            .visible(ctx.identity()?)
            .await?
            .iter()
            .map(|s| self.view(s))
            .collect();
        sessions.sort_by(|a, b| {
            (b.last_activity_at, &a.session_id).cmp(&(a.last_activity_at, &b.session_id))
        });
        Ok(SessionList {
            total: sessions.len() as u64,
            sessions,
        })
    }

    async fn get_session(
        &self,
        ctx: RequestContext,
        path: GetSessionPath,
    ) -> Result<SessionInfo, ApiError> {
        let session = self.find(&ctx, &path.session_id).await?;
        Ok(self.view(&session))
    }

    async fn terminate_session(
        &self,
        ctx: RequestContext,
        path: TerminateSessionPath,
    ) -> Result<SessionTerminated, ApiError> {
        let session = self.find(&ctx, &path.session_id).await?;
        let identity = ctx.identity()?;
        let reason = format!("session terminated by {}", identity.username);
        // The credential first: from here on no new request of the session is accepted.
        self.auth
            .revoke_session_credential(&session, &reason)
            .await?;
        self.registry()
            .remove(&session.id, SessionEventKind::Terminated);
        let queries_cancelled = self.queries.running.cancel_session(&session.id) as u64;
        // Interrupted statements release their transaction's connection, so the rollbacks
        // below do not wait for them to finish on their own.
        let ids = self.transactions.of_session(&session.id);
        let transactions = Arc::clone(&self.transactions);
        let rolled_back = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .filter(|id| transactions.finish(id, false, "session terminated").is_ok())
                .collect::<Vec<_>>()
        })
        .await
        .map_err(ApiError::internal)?;
        let mut closed = Vec::new();
        for connection in self.connections.list() {
            if connection.session_id == session.id {
                // A full control queue means the task is stuck; revalidation ends it too.
                let _ = connection.control.try_send(Control::Close {
                    code: CLOSE_BY_ADMIN,
                    reason: "session terminated".into(),
                });
                closed.push(connection.id.clone());
            }
        }
        self.auth
            .audit(
                AuditRecord::new("session.terminate", AuditOutcome::Success)
                    .actor(identity.username.clone())
                    .target(session.id.clone())
                    .ip(ctx.client_ip)
                    .details(serde_json::json!({
                        "user": session.username,
                        "queries_cancelled": queries_cancelled,
                        "transactions_rolled_back": rolled_back,
                        "websocket_connections_closed": closed,
                    })),
            )
            .await;
        Ok(SessionTerminated {
            session_id: session.id.clone(),
            credential_revoked: session.kind,
            queries_cancelled,
            transactions_rolled_back: rolled_back,
            websocket_connections_closed: closed,
        })
    }
}
