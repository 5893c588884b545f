//! The server-wide queries of `schema/subscriptions/queries.yaml`, answered by the REST services.

use super::sources::Sources;
use crate::api::graphql::*;
use crate::api::graphql_runtime::Caller;
use crate::api::runtime::ApiError;
use crate::api::types::{DatabaseList, ServerInfo};
use crate::api::{DatabasesApi, SystemApi};

impl QueriesFields for Sources {
    async fn server_info(
        &self,
        caller: Caller,
        _args: ServerInfoArgs,
    ) -> Result<ServerInfo, ApiError> {
        let ctx = self.context(&caller, "get_server_info")?;
        self.backends.system.get_server_info(ctx).await
    }

    async fn databases(
        &self,
        caller: Caller,
        _args: DatabasesArgs,
    ) -> Result<DatabaseList, ApiError> {
        let ctx = self.context(&caller, "list_databases")?;
        self.backends.databases.list_databases(ctx).await
    }
}
