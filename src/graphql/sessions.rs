//! Sources of the subscriptions over transactions (`transactions` topic), sessions (`sessions`)
//! and connection pools (`connection_pool`): each a bus event re-shaped into its GraphQL type.

use futures_util::stream::StreamExt;
use serde_json::Value;

use super::sources::{Events, Sources, now};
use crate::api::Permission;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::{
    ConnectionPoolUpdate, SessionUpdate, TransactionEventKind, TransactionIsolation,
    TransactionUpdate,
};

/// A `transaction_event` as the GraphQL type; `None` for a payload of another shape.
fn transaction(data: &Value) -> Option<TransactionUpdate> {
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    let event_type = match s("event_type")? {
        "BEGIN" => TransactionEventKind::Begin,
        "COMMIT" => TransactionEventKind::Commit,
        _ => TransactionEventKind::Rollback,
    };
    let isolation_level = match s("mode")? {
        "immediate" => TransactionIsolation::Immediate,
        "exclusive" => TransactionIsolation::Exclusive,
        _ => TransactionIsolation::Deferred,
    };
    Some(TransactionUpdate {
        event_type,
        transaction_id: s("transaction_id")?.to_string(),
        session_id: s("session_id").map(str::to_string),
        username: s("username")?.to_string(),
        isolation_level,
        duration_ms: data.get("duration_ms")?.as_f64()?,
        modified_rows: data.get("modified_rows")?.as_i64()?,
        timestamp: now(),
    })
}

pub(super) fn transaction_events(
    events: Events,
    args: TransactionEventsArgs,
) -> SourceResult<TransactionUpdate> {
    let session = args.session_filter;
    Ok(events
        .filter_map(move |e| {
            let t = (e.message_type == "transaction_event")
                .then(|| transaction(&e.data))
                .flatten()
                .filter(|t| {
                    session
                        .as_ref()
                        .is_none_or(|f| t.session_id.as_ref() == Some(f))
                });
            async move { t.map(Ok) }
        })
        .boxed())
}

/// Sessions as GET /api/v1/sessions shows them: the caller's own, everyone's for database:admin.
pub(super) fn session_events(
    events: Events,
    caller: &Caller,
    args: SessionEventsArgs,
) -> SourceResult<SessionUpdate> {
    let everyone = caller.has(Permission::DatabaseAdmin);
    let me = caller.identity.user_id.clone();
    let user = args.user_filter;
    Ok(events
        .filter_map(move |e| {
            let update = (e.message_type == "session_event")
                .then(|| serde_json::from_value::<SessionUpdate>(e.data.clone()).ok())
                .flatten()
                .filter(|u| {
                    (everyone || u.user_id == me)
                        && user.as_ref().is_none_or(|name| *name == u.username)
                });
            async move { update.map(Ok) }
        })
        .boxed())
}

pub(super) fn connection_pool_events(
    events: Events,
    args: ConnectionPoolEventsArgs,
) -> SourceResult<ConnectionPoolUpdate> {
    let pool = args.pool_id;
    Ok(events
        .filter_map(move |e| {
            let mut data = e.data.clone();
            let update = (e.message_type == "connection_pool_event")
                .then(|| {
                    let object = data.as_object_mut()?;
                    // One pool per database: the pool's id is the database's name.
                    let database = object.remove("database")?;
                    object.insert("pool_id".into(), database);
                    serde_json::from_value::<ConnectionPoolUpdate>(data).ok()
                })
                .flatten()
                .filter(|u| pool.as_ref().is_none_or(|p| *p == u.pool_id));
            async move { update.map(Ok) }
        })
        .boxed())
}

impl SessionsFields for Sources {
    fn transaction_events(
        &self,
        _caller: Caller,
        args: TransactionEventsArgs,
        events: Events,
    ) -> SourceResult<TransactionUpdate> {
        transaction_events(events, args)
    }

    fn session_events(
        &self,
        caller: Caller,
        args: SessionEventsArgs,
        events: Events,
    ) -> SourceResult<SessionUpdate> {
        session_events(events, &caller, args)
    }

    fn connection_pool_events(
        &self,
        _caller: Caller,
        args: ConnectionPoolEventsArgs,
        events: Events,
    ) -> SourceResult<ConnectionPoolUpdate> {
        connection_pool_events(events, args)
    }
}
