//! The server-wide queries of `schema/subscriptions/queries.yaml`, answered by the REST services.

use super::sources::Sources;
use crate::api::graphql::*;
use crate::api::graphql_runtime::Caller;
use crate::api::runtime::{ApiError, RequestContext};
use crate::api::types::{DatabaseList, ServerInfo};
use crate::api::{DatabasesApi, SystemApi};

impl QueriesFields for Sources {
    async fn server_info(
        &self,
        _caller: Caller,
        _args: ServerInfoArgs,
        rest: RequestContext,
    ) -> Result<ServerInfo, ApiError> {
        self.backends.system.get_server_info(rest).await
    }

    async fn databases(
        &self,
        _caller: Caller,
        _args: DatabasesArgs,
        rest: RequestContext,
    ) -> Result<DatabaseList, ApiError> {
        self.backends.databases.list_databases(rest).await
    }
}
