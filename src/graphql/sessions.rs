//! The hand-written source of `schema/subscriptions/sessions.yaml`: sessions, shown as GET
//! /api/v1/sessions shows them (visibility depends on the caller, which YAML filters cannot say).
//! Transaction and connection-pool events are generated sources (their YAML's `source.event`).

use futures_util::stream::{BoxStream, StreamExt};

use super::sources::Sources;
use crate::api::Permission;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::runtime::ApiError;
use crate::api::types::{SessionEvent, SessionUpdate};

/// Sessions as GET /api/v1/sessions shows them: the caller's own, everyone's for database:admin.
/// The events arrive decoded (`receives: session_event`); a broken one reaches the subscriber as
/// its error.
pub(super) fn session_events(
    events: BoxStream<'static, Result<SessionEvent, ApiError>>,
    caller: &Caller,
    args: SessionEventsArgs,
) -> SourceResult<SessionUpdate> {
    let everyone = caller.has(Permission::DatabaseAdmin);
    let me = caller.identity.user_id.clone();
    let user = args.user_filter;
    Ok(events
        .filter_map(move |event| {
            let item = match event.map(update) {
                Ok(u) => ((everyone || u.user_id == me)
                    && user.as_ref().is_none_or(|name| *name == u.username))
                .then_some(Ok(u)),
                Err(e) => Some(Err(e)),
            };
            async move { item }
        })
        .boxed())
}

/// The GraphQL shape of a session event, field by field: a change to either type is a compile
/// error here.
fn update(e: SessionEvent) -> SessionUpdate {
    SessionUpdate {
        client_address: e.client_address,
        connection_time: e.connection_time,
        database: e.database,
        duration_seconds: e.duration_seconds,
        event_type: e.event_type,
        queries_executed: e.queries_executed,
        session_id: e.session_id,
        timestamp: e.timestamp,
        user_id: e.user_id,
        username: e.username,
    }
}

impl SessionsFields for Sources {
    fn session_events(
        &self,
        caller: Caller,
        args: SessionEventsArgs,
        events: BoxStream<'static, Result<SessionEvent, ApiError>>,
    ) -> SourceResult<SessionUpdate> {
        session_events(events, &caller, args)
    }
}
