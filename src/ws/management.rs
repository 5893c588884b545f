//! The `ws_connections` subsystem: status, connections and subscriptions, disconnect, broadcast.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{WsHub, protocol};
use crate::api::runtime::RequestContext;
use crate::api::types::{
    Broadcast, BroadcastRequest, BroadcastResult, WsConnection, WsConnectionList, WsDisconnected,
    WsStatus, WsStatusStatus, WsSubscription, WsSubscriptionList,
};
use crate::api::ws_connections::{
    DeleteWsSubscriptionPath, DisconnectWsConnectionPath, GetWsConnectionPath,
    GetWsSubscriptionPath, ListWsSubscriptionsQuery,
};
use crate::api::{ApiError, WsConnectionsApi};
use crate::events::Bus;
use crate::events::connections::{CLOSE_BY_ADMIN, ConnectionInfo, Control, SubscriptionInfo};

pub struct WebSocketManagement {
    hub: Arc<WsHub>,
}

impl WebSocketManagement {
    pub fn new(hub: Arc<WsHub>) -> Self {
        WebSocketManagement { hub }
    }

    fn subscription(
        &self,
        id: &str,
    ) -> Result<(Arc<ConnectionInfo>, Arc<SubscriptionInfo>), ApiError> {
        self.hub
            .registry
            .subscription(id)
            .ok_or_else(|| ApiError::not_found(format!("no subscription `{id}`")))
    }

    fn connection(&self, id: &str) -> Result<Arc<ConnectionInfo>, ApiError> {
        self.hub
            .registry
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("no WebSocket connection `{id}`")))
    }
}

fn connection_view(c: &ConnectionInfo) -> WsConnection {
    WsConnection {
        connection_id: c.id.clone(),
        user_id: c.user_id.clone(),
        username: c.username.clone(),
        endpoint: c.endpoint.to_string(),
        connected_at: c.connected_at,
        subscriptions: c.subscription_count() as u64,
        messages_sent: c.messages_sent.load(Ordering::Relaxed),
        messages_received: c.messages_received.load(Ordering::Relaxed),
        client_address: c.client_address.map(|a| a.to_string()),
    }
}

/// How far a subscription is behind its topic now, from the topic's head and what it last took:
/// a task that waits on a client that stopped reading updates nothing, yet its backlog grows,
/// and the events overwritten meanwhile are already lost though not yet counted.
struct Backlog {
    /// Events published since the last one it took.
    lag: u64,
    /// Events the topic still holds for it: its ring, or for a durable topic its change log
    /// (0 for a topic the bus does not hold).
    capacity: u64,
}

impl Backlog {
    fn of(bus: &Bus, s: &SubscriptionInfo) -> Backlog {
        let taken = s.taken.load(Ordering::Relaxed);
        let (head, capacity) = bus
            .topic(s.topic.name)
            .map_or((taken, 0), |t| (t.head(), t.retained()));
        Backlog {
            lag: head.saturating_sub(taken),
            capacity,
        }
    }

    /// The part of the lag still in the ring.
    fn queued(&self) -> u64 {
        self.lag.min(self.capacity)
    }

    /// Overwritten before the subscription took them, not yet reported to its client.
    fn lost(&self) -> u64 {
        self.lag.saturating_sub(self.capacity)
    }

    /// Its queue is full: its client is losing events.
    fn full(&self) -> bool {
        self.capacity > 0 && self.lag >= self.capacity
    }
}

fn subscription_view(bus: &Bus, c: &ConnectionInfo, s: &SubscriptionInfo) -> WsSubscription {
    let backlog = Backlog::of(bus, s);
    WsSubscription {
        subscription_id: s.id.to_string(),
        connection_id: c.id.clone(),
        topic: s.topic.name.to_string(),
        filter: s.filter.as_value(),
        created_at: s.created_at,
        delivered: s.delivered.load(Ordering::Relaxed),
        dropped: s.dropped.load(Ordering::Relaxed) + backlog.lost(),
        queue_depth: backlog.queued(),
        lag: backlog.lag,
    }
}

impl WebSocketManagement {
    /// `draining` once shutdown began; `degraded` at 90 % of the connection limit or while a
    /// subscription's queue is full (its client is losing events); otherwise `healthy`.
    fn status(&self, connections: &[Arc<ConnectionInfo>]) -> (WsStatusStatus, Vec<String>) {
        if *self.hub.shutdown.borrow() {
            return (
                WsStatusStatus::Draining,
                vec!["the server is shutting down".into()],
            );
        }
        let mut reasons = Vec::new();
        let max = self.hub.config.max_connections;
        if connections.len() * 10 >= max * 9 {
            reasons.push(format!("{} of {max} connections in use", connections.len()));
        }
        let full = connections
            .iter()
            .flat_map(|c| c.subscriptions())
            .filter(|s| Backlog::of(&self.hub.bus, s).full())
            .count();
        if full > 0 {
            reasons.push(format!(
                "{full} subscription(s) with a full queue (their clients are losing events)"
            ));
        }
        let status = if reasons.is_empty() {
            WsStatusStatus::Healthy
        } else {
            WsStatusStatus::Degraded
        };
        (status, reasons)
    }
}

impl WsConnectionsApi for WebSocketManagement {
    async fn get_ws_status(&self, _ctx: RequestContext) -> Result<WsStatus, ApiError> {
        let connections = self.hub.registry.list();
        let (status, reasons) = self.status(&connections);
        Ok(WsStatus {
            status,
            reasons,
            total_connections: self.hub.registry.total_accepted.load(Ordering::Relaxed),
            active_connections: connections.len() as u64,
            total_subscriptions: connections
                .iter()
                .map(|c| c.subscription_count() as u64)
                .sum(),
            uptime_seconds: self.hub.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            timestamp: chrono::Utc::now().timestamp(),
        })
    }

    async fn list_ws_connections(
        &self,
        _ctx: RequestContext,
    ) -> Result<WsConnectionList, ApiError> {
        let connections: Vec<_> = self
            .hub
            .registry
            .list()
            .iter()
            .map(|c| connection_view(c))
            .collect();
        Ok(WsConnectionList {
            total: connections.len() as u64,
            connections,
        })
    }

    async fn get_ws_connection(
        &self,
        _ctx: RequestContext,
        path: GetWsConnectionPath,
    ) -> Result<WsConnection, ApiError> {
        let connection = self.connection(&path.connection_id)?;
        Ok(connection_view(&connection))
    }

    async fn disconnect_ws_connection(
        &self,
        ctx: RequestContext,
        path: DisconnectWsConnectionPath,
    ) -> Result<WsDisconnected, ApiError> {
        let connection = self.connection(&path.connection_id)?;
        let by = ctx.identity()?.username.clone();
        // A full control queue means the task is stuck; dropping the sender ends it too.
        let _ = connection.control.try_send(Control::Close {
            code: CLOSE_BY_ADMIN,
            reason: format!("closed by administrator {by}"),
        });
        Ok(WsDisconnected {
            message: "Connection disconnected successfully".into(),
            connection_id: connection.id.clone(),
        })
    }

    async fn list_ws_subscriptions(
        &self,
        _ctx: RequestContext,
        query: ListWsSubscriptionsQuery,
    ) -> Result<WsSubscriptionList, ApiError> {
        let subscriptions: Vec<_> = self
            .hub
            .registry
            .list()
            .iter()
            .flat_map(|c| c.subscriptions().into_iter().map(move |s| (c, s)))
            .filter(|(_, s)| query.topic.as_deref().is_none_or(|t| t == s.topic.name))
            .map(|(c, s)| subscription_view(&self.hub.bus, c, &s))
            .collect();
        Ok(WsSubscriptionList {
            total: subscriptions.len() as u64,
            subscriptions,
        })
    }

    async fn get_ws_subscription(
        &self,
        _ctx: RequestContext,
        path: GetWsSubscriptionPath,
    ) -> Result<WsSubscription, ApiError> {
        let (connection, sub) = self.subscription(&path.subscription_id)?;
        Ok(subscription_view(&self.hub.bus, &connection, &sub))
    }

    async fn delete_ws_subscription(
        &self,
        _ctx: RequestContext,
        path: DeleteWsSubscriptionPath,
    ) -> Result<(), ApiError> {
        let (connection, sub) = self.subscription(&path.subscription_id)?;
        connection
            .control
            .try_send(Control::Unsubscribe(sub.id))
            .map_err(|_| ApiError::not_found("the connection has closed"))?;
        Ok(())
    }

    async fn broadcast_ws_message(
        &self,
        ctx: RequestContext,
        body: BroadcastRequest,
    ) -> Result<BroadcastResult, ApiError> {
        let from = ctx.identity()?.username.clone();
        let topic = match body.topic.as_deref() {
            Some(t) => Some(
                self.hub
                    .bus
                    .resolve(t)
                    .ok_or_else(|| ApiError::not_found(format!("no topic `{t}`")))?
                    .name(),
            ),
            None => None,
        };
        let frame = protocol::frame(
            "broadcast",
            &Broadcast {
                message: body.message.to_string(),
                from,
                topic: topic.map(str::to_string),
            },
        );
        let mut delivered_to = 0;
        for connection in self.hub.registry.list() {
            let addressed =
                topic.is_none_or(|t| connection.subscriptions().iter().any(|s| s.topic.name == t));
            if addressed
                && connection
                    .control
                    .try_send(Control::Send(frame.clone()))
                    .is_ok()
            {
                delivered_to += 1;
            }
        }
        Ok(BroadcastResult { delivered_to })
    }
}
