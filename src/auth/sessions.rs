//! Live sessions in memory: one per login (its token family) and one per API key. Activity is
//! recorded by the authentication middleware and the SQL subsystem; revoked sessions are removed
//! on logout and termination, and found out (and dropped) when listed. Each session starting
//! and ending is a `session_event` on the `sessions` topic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::runtime::{Credential, Identity};
use crate::api::types::{SessionEvent, SessionEventKind, SessionKind};
use crate::events::Bus;
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
    /// Where session events go; set once the bus exists (none in unit use).
    events: OnceLock<Arc<Bus>>,
}

impl SessionRegistry {
    /// Announces sessions starting and ending on `bus` from now on.
    pub fn publish_to(&self, bus: Arc<Bus>) {
        let _ = self.events.set(bus);
    }

    fn announce(&self, session: &Session, event_type: SessionEventKind) {
        let Some(bus) = self.events.get() else {
            return;
        };
        let activity = session.activity();
        let now = Utc::now();
        bus.publish(&SessionEvent {
            event_type,
            session_id: session.id.clone(),
            kind: session.kind,
            user_id: session.user_id.clone(),
            username: session.username.clone(),
            client_address: activity.client.map(|ip| ip.to_string()),
            database: activity.database,
            connection_time: session.connected_at,
            duration_seconds: (now - session.connected_at).num_milliseconds().max(0) as f64
                / 1000.0,
            queries_executed: i64::try_from(session.queries_executed()).unwrap_or(i64::MAX),
            timestamp: now,
        });
    }

    /// Records a successful login: its session starts now (a LOGIN event).
    pub fn login(&self, identity: &Identity, client: Option<IpAddr>) {
        self.enter(identity, client, Utc::now(), SessionEventKind::Login);
    }

    pub fn contains(&self, id: &str) -> bool {
        lock(&self.sessions).contains_key(id)
    }

    /// Records a request of `identity` from `client`; a session not yet known starts at
    /// `connected_at` (the login time, or now for an API key).
    pub fn touch(&self, identity: &Identity, client: Option<IpAddr>, connected_at: DateTime<Utc>) {
        self.enter(identity, client, connected_at, SessionEventKind::Started);
    }

    /// `touch`, announcing a session not yet known as `started`.
    fn enter(
        &self,
        identity: &Identity,
        client: Option<IpAddr>,
        connected_at: DateTime<Utc>,
        started: SessionEventKind,
    ) {
        let id = session_id(&identity.credential);
        let mut created = false;
        let now = Utc::now();
        let mut sessions = lock(&self.sessions);
        let session = sessions.entry(id.clone()).or_insert_with(|| {
            created = true;
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
        let session = Arc::clone(session);
        drop(sessions);
        {
            let mut activity = lock(&session.activity);
            activity.last = now;
            if client.is_some() {
                activity.client = client;
            }
        }
        if created {
            self.announce(&session, started);
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

    /// Ends a session; `why` is announced (LOGOUT, TERMINATED, REVOKED).
    pub fn remove(&self, id: &str, why: SessionEventKind) -> Option<Arc<Session>> {
        let removed = lock(&self.sessions).remove(id);
        if let Some(session) = &removed {
            self.announce(session, why);
        }
        removed
    }

    /// Forgets sessions idle longer than `idle` (a login past its refresh-token lifetime cannot
    /// come back; an API key's comes back at its next use), so memory stays bounded.
    pub fn prune(&self, idle: TimeDelta) {
        let cutoff = Utc::now() - idle;
        let mut expired = Vec::new();
        lock(&self.sessions).retain(|_, s| {
            let keep = lock(&s.activity).last >= cutoff;
            if !keep {
                expired.push(Arc::clone(s));
            }
            keep
        });
        for session in expired {
            self.announce(&session, SessionEventKind::Expired);
        }
    }
}
