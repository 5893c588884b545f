//! The hand-written source of `schema/subscriptions/sessions.yaml`: sessions, shown as GET
//! /api/v1/sessions shows them (visibility depends on the caller, which YAML filters cannot say).
//! Transaction and connection-pool events are generated sources (their YAML's `source.event`).

use futures_util::stream::StreamExt;

use super::sources::{Events, Sources};
use crate::api::Permission;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::SessionUpdate;

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

impl SessionsFields for Sources {
    fn session_events(
        &self,
        caller: Caller,
        args: SessionEventsArgs,
        events: Events,
    ) -> SourceResult<SessionUpdate> {
        session_events(events, &caller, args)
    }
}
