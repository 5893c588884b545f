//! Open connections and their subscriptions, for limits and the management routes. A connection
//! is registered before the upgrade (so limits answer with HTTP errors) and removed when its
//! `Registration` drops, whether or not the upgrade completed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::{Filter, WireFrame};
use crate::api::TopicMeta;
use crate::sync::{lock, read, write};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Close codes (see docs/websocket.md).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_IDLE: u16 = 4000;
pub const CLOSE_CREDENTIALS_EXPIRED: u16 = 4001;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_BY_ADMIN: u16 = 4009;

/// Requests to a connection's task from elsewhere in the server.
#[derive(Debug)]
pub enum Control {
    Close { code: u16, reason: String },
    Unsubscribe(SubscriptionId),
    Send(WireFrame),
}

/// Requests a connection's task has not taken yet, at most this many.
const CONTROL_QUEUE: usize = 64;

/// A connection's queue of [`Control`] requests. Unlike a channel it allocates nothing until a
/// request arrives: every idle connection has one.
#[derive(Default)]
pub struct ControlQueue {
    queue: Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    requests: VecDeque<Control>,
    /// The connection's task has ended.
    closed: bool,
}

impl ControlQueue {
    /// Queues a request; gives it back if the connection has ended or its queue is full (a
    /// connection that takes no requests is stuck, and its heartbeat ends it).
    pub fn try_send(&self, request: Control) -> Result<(), Control> {
        {
            let mut pending = lock(&self.queue);
            if pending.closed || pending.requests.len() >= CONTROL_QUEUE {
                return Err(request);
            }
            pending.requests.push_back(request);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The next request, in the order they were queued.
    pub async fn recv(&self) -> Control {
        loop {
            // A request queued between the check and the wait leaves a permit: none is missed.
            if let Some(request) = lock(&self.queue).requests.pop_front() {
                return request;
            }
            self.wake.notified().await;
        }
    }

    /// Refuses further requests and forgets the pending ones.
    fn close(&self) {
        let mut pending = lock(&self.queue);
        pending.closed = true;
        pending.requests = VecDeque::new();
    }
}

pub struct ConnectionInfo {
    pub id: String,
    pub user_id: String,
    pub username: String,
    /// The login or API-key session it authenticated with (see /api/v1/sessions).
    pub session_id: String,
    pub endpoint: &'static str,
    pub connected_at: DateTime<Utc>,
    pub client_address: Option<SocketAddr>,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    /// In the order they were made; a handful per connection, so a list beats a map here.
    pub subscriptions: Mutex<Vec<Arc<SubscriptionInfo>>>,
    pub control: ControlQueue,
}

impl ConnectionInfo {
    pub fn subscriptions(&self) -> Vec<Arc<SubscriptionInfo>> {
        lock(&self.subscriptions).clone()
    }

    pub fn subscription_count(&self) -> usize {
        lock(&self.subscriptions).len()
    }

    pub fn subscription(&self, id: SubscriptionId) -> Option<Arc<SubscriptionInfo>> {
        lock(&self.subscriptions)
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }

    pub fn add_subscription(&self, info: Arc<SubscriptionInfo>) {
        let mut subs = lock(&self.subscriptions);
        // Grown one at a time: most connections hold one or two subscriptions.
        subs.reserve_exact(1);
        subs.push(info);
    }

    pub fn remove_subscription(&self, id: SubscriptionId) {
        lock(&self.subscriptions).retain(|s| s.id != id);
    }
}

/// A subscription's id: 48 random bits, shown as `sub-` and 12 hex digits. Kept as a number, as
/// there is one per subscription; its connection is the one whose list holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    pub fn random() -> SubscriptionId {
        SubscriptionId(uuid::Uuid::new_v4().as_u64_pair().0 & 0xffff_ffff_ffff)
    }

    /// The id a client or a route names; `None` if no subscription can have it.
    pub fn parse(text: &str) -> Option<SubscriptionId> {
        let hex = text.strip_prefix("sub-")?;
        if hex.len() != 12 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SubscriptionId)
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sub-{:012x}", self.0)
    }
}

/// Kept to 72 bytes, so that with its reference counts it fits a 96-byte allocation.
pub struct SubscriptionInfo {
    pub id: SubscriptionId,
    pub topic: &'static TopicMeta,
    pub filter: Filter,
    pub created_at: DateTime<Utc>,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    /// The topic sequence this subscription last took (delivered, filtered out or skipped as
    /// lost); with the topic's head it gives the true backlog at any moment, even while the
    /// connection's task waits on a client that stopped reading.
    pub taken: AtomicU64,
}

// One per subscription: a field more moves it to the next allocation size.
const _: () = assert!(std::mem::size_of::<SubscriptionInfo>() <= 72);

#[derive(Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    Server(usize),
    User(usize),
}

#[derive(Default)]
pub struct Registry {
    connections: RwLock<HashMap<String, Arc<ConnectionInfo>>>,
    per_user: Mutex<HashMap<String, usize>>,
    pub total_accepted: AtomicU64,
}

impl Registry {
    /// Registers a connection if the server-wide and per-user limits allow it.
    pub fn register(
        self: &Arc<Self>,
        info: ConnectionInfo,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<Registration, LimitExceeded> {
        let mut conns = write(&self.connections);
        if conns.len() >= max_total {
            return Err(LimitExceeded::Server(max_total));
        }
        let mut per_user = lock(&self.per_user);
        let count = per_user.entry(info.user_id.clone()).or_default();
        if *count >= max_per_user {
            return Err(LimitExceeded::User(max_per_user));
        }
        *count += 1;
        let info = Arc::new(info);
        conns.insert(info.id.clone(), Arc::clone(&info));
        self.total_accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Registration {
            registry: Arc::clone(self),
            info,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<ConnectionInfo>> {
        self.open().get(id).cloned()
    }

    /// Open connections, oldest first.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        let mut all: Vec<_> = self.open().values().cloned().collect();
        all.sort_by(|a, b| (a.connected_at, &a.id).cmp(&(b.connected_at, &b.id)));
        all
    }

    pub fn len(&self) -> usize {
        self.open().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subscription with this id and its connection.
    pub fn subscription(&self, id: &str) -> Option<(Arc<ConnectionInfo>, Arc<SubscriptionInfo>)> {
        let id = SubscriptionId::parse(id)?;
        self.open()
            .values()
            .find_map(|c| c.subscription(id).map(|s| (Arc::clone(c), s)))
    }

    fn open(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ConnectionInfo>>> {
        read(&self.connections)
    }

    fn remove(&self, info: &ConnectionInfo) {
        write(&self.connections).remove(&info.id);
        let mut per_user = lock(&self.per_user);
        if let Some(count) = per_user.get_mut(&info.user_id) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&info.user_id);
            }
        }
    }
}

/// A registered connection; dropping it unregisters.
pub struct Registration {
    registry: Arc<Registry>,
    pub info: Arc<ConnectionInfo>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.info.control.close();
        self.registry.remove(&self.info);
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriptionId;

    #[test]
    fn subscription_ids_read_back_and_refuse_lookalikes() {
        let id = SubscriptionId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(SubscriptionId::parse(&text), Some(id));
        for bad in [
            "",
            "sub-",
            "sub-0123456789ab0",
            "sub-0123456789AB",
            "sub-+123456789ab",
            "conn-0123456789a",
        ] {
            assert_eq!(SubscriptionId::parse(bad), None, "{bad}");
        }
    }
}
