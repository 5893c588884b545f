//! The `databases` subsystem: the engine's database files.

use std::sync::Arc;

use crate::api::databases::{DeleteDatabasePath, GetDatabasePath, GetDatabasePoolPath};
use crate::api::runtime::RequestContext;
use crate::api::types::{DatabaseCreate, DatabaseInfo, DatabaseList, PoolStats};
use crate::api::{ApiError, DatabasesApi};
use crate::engine::catalog::Engine;

pub struct DatabaseService {
    engine: Arc<Engine>,
}

impl DatabaseService {
    pub fn new(engine: Arc<Engine>) -> Self {
        DatabaseService { engine }
    }
}

impl DatabasesApi for DatabaseService {
    async fn get_database_pool(
        &self,
        _ctx: RequestContext,
        path: GetDatabasePoolPath,
    ) -> Result<PoolStats, ApiError> {
        let db = self.engine.get(&path.name)?;
        let stats = db.pool_stats();
        Ok(PoolStats {
            database: db.name.clone(),
            active: stats.active,
            idle: stats.idle,
            waiting: stats.waiting,
            total: stats.total,
            max_connections: stats.max_connections,
        })
    }

    async fn list_databases(&self, _ctx: RequestContext) -> Result<DatabaseList, ApiError> {
        let mut databases = Vec::new();
        for db in self.engine.list() {
            databases.push(db.info().await?);
        }
        Ok(DatabaseList {
            total: databases.len() as u64,
            databases,
        })
    }

    async fn create_database(
        &self,
        _ctx: RequestContext,
        body: DatabaseCreate,
    ) -> Result<DatabaseInfo, ApiError> {
        let engine = Arc::clone(&self.engine);
        let name = body.name.to_string();
        // File creation and the first connection block; keep them off the runtime.
        let db = tokio::task::spawn_blocking(move || engine.create(&name))
            .await
            .map_err(ApiError::internal)??;
        Ok(db.info().await?)
    }

    async fn get_database(
        &self,
        _ctx: RequestContext,
        path: GetDatabasePath,
    ) -> Result<DatabaseInfo, ApiError> {
        Ok(self.engine.get(&path.name)?.info().await?)
    }

    async fn delete_database(
        &self,
        _ctx: RequestContext,
        path: DeleteDatabasePath,
        query: crate::api::databases::DeleteDatabaseQuery,
    ) -> Result<(), ApiError> {
        Ok(self.engine.delete(&path.name, query.force)?)
    }
}
