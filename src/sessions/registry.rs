//! Live sessions in memory: one per login (its token family) and one per API key. Activity is
//! recorded by the authentication middleware and the SQL subsystem; revoked sessions are removed
//! on logout and termination, and found out (and dropped) when listed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::runtime::{Credential, Identity};
use crate::api::types::SessionKind;
use crate::sync::lock;

/// The session id of a credential: `login-<family>` or `apikey-<key id>`.
pub fn session_id(credential: &Credential) -> String {
    match credential {
        Credential::Jwt { family, .. } => format!("login-{family}"),
        Credential::ApiKey { key_id, .. } => format!("apikey-{key_id}"),
    }
}

pub struct Session {
    pub id: String,
    pub kind: SessionKind,
    /// The token family or the API key id.
    pub credential_id: String,
    pub user_id: String,
    pub username: String,
    pub connected_at: DateTime<Utc>,
    activity: Mutex<Activity>,
    queries: AtomicU64,
}

#[derive(Clone)]
pub struct Activity {
    pub last: DateTime<Utc>,
    pub client: Option<IpAddr>,
    pub database: Option<String>,
}

impl Session {
    pub fn activity(&self) -> Activity {
        lock(&self.activity).clone()
    }

    pub fn queries_executed(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl SessionRegistry {
    pub fn contains(&self, id: &str) -> bool {
        lock(&self.sessions).contains_key(id)
    }

    /// Records a request of `identity` from `client`; a session not yet known starts at
    /// `connected_at` (the login time, or now for an API key).
    pub fn touch(&self, identity: &Identity, client: Option<IpAddr>, connected_at: DateTime<Utc>) {
        let id = session_id(&identity.credential);
        let now = Utc::now();
        let mut sessions = lock(&self.sessions);
        let session = sessions.entry(id.clone()).or_insert_with(|| {
            let (kind, credential_id) = match &identity.credential {
                Credential::Jwt { family, .. } => (SessionKind::Login, family.clone()),
                Credential::ApiKey { key_id, .. } => (SessionKind::ApiKey, key_id.clone()),
            };
            Arc::new(Session {
                id,
                kind,
                credential_id,
                user_id: identity.user_id.clone(),
                username: identity.username.clone(),
                connected_at: connected_at.min(now),
                activity: Mutex::new(Activity {
                    last: now,
                    client,
                    database: None,
                }),
                queries: AtomicU64::new(0),
            })
        });
        let mut activity = lock(&session.activity);
        activity.last = now;
        if client.is_some() {
            activity.client = client;
        }
    }

    /// Keeps a login alive while only its refresh token is used.
    pub fn refreshed(&self, family: &str) {
        if let Some(s) = lock(&self.sessions).get(&format!("login-{family}")) {
            lock(&s.activity).last = Utc::now();
        }
    }

    /// Counts a SQL statement of the session on `database`.
    pub fn count_query(&self, id: &str, database: &str) {
        if let Some(s) = lock(&self.sessions).get(id) {
            s.queries.fetch_add(1, Ordering::Relaxed);
            let mut activity = lock(&s.activity);
            activity.last = Utc::now();
            activity.database = Some(database.to_string());
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().cloned().collect()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).remove(id)
    }

    /// Forgets sessions idle longer than `idle` (a login past its refresh-token lifetime cannot
    /// come back; an API key's comes back at its next use), so memory stays bounded.
    pub fn prune(&self, idle: TimeDelta) {
        let cutoff = Utc::now() - idle;
        lock(&self.sessions).retain(|_, s| lock(&s.activity).last >= cutoff);
    }
}
