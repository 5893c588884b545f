//! The `databases` subsystem: the engine's database files.

use std::sync::Arc;

use crate::api::databases::{DeleteDatabasePath, GetDatabasePath, GetDatabasePoolPath};
use crate::api::runtime::RequestContext;
use crate::api::types::{ConnectionPoolStats, DatabaseCreate, DatabaseInfo, DatabaseList};
use crate::api::{ApiError, DatabasesApi};
use crate::engine::catalog::Engine;
use crate::engine::tablespaces::Tablespaces;

pub struct DatabaseService {
    engine: Arc<Engine>,
    tablespaces: Arc<Tablespaces>,
}

impl DatabaseService {
    pub fn new(engine: Arc<Engine>, tablespaces: Arc<Tablespaces>) -> Self {
        DatabaseService {
            engine,
            tablespaces,
        }
    }
}

impl DatabasesApi for DatabaseService {
    async fn get_database_pool(
        &self,
        _ctx: RequestContext,
        path: GetDatabasePoolPath,
    ) -> Result<ConnectionPoolStats, ApiError> {
        let db = self.engine.get(&path.name)?;
        let stats = db.pool_stats();
        Ok(ConnectionPoolStats {
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
        // Held so the tablespace cannot be deleted while the file is being put in it.
        let _guard = self.tablespaces.guard.lock().await;
        let tablespace = match &body.tablespace {
            Some(name) => self.tablespaces.get(&self.engine, name).await?,
            None => Tablespaces::default_record(&self.engine),
        };
        let engine = Arc::clone(&self.engine);
        let name = body.name.to_string();
        // File creation and the first connection block; keep them off the runtime.
        let db = tokio::task::spawn_blocking(move || {
            engine.create_in(&name, &tablespace.name, &tablespace.path)
        })
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
