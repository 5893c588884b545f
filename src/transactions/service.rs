//! `TransactionService`: the `transactions` subsystem's implementation of the generated `TransactionsApi`.

use super::*;

use std::sync::Arc;

use crate::api::runtime::RequestContext;
use crate::api::transactions::{
    AcquireLockPath, CommitTransactionPath, CreateSavepointPath, GetTransactionPath,
    ListTransactionLocksPath, ReleaseLockPath, ReleaseSavepointPath, RollbackToSavepointPath,
    RollbackTransactionPath,
};
use crate::api::types::{
    DeadlockDetection, DeadlockList, LockInfo, LockList, LockRequest, SavepointCreate,
    TransactionBegin, TransactionBeginMode, TransactionInfo, TransactionList, WaitForGraph,
};
use crate::api::{ApiError, Permission, TransactionsApi};
use crate::auth::grants::owned_transaction;
use crate::engine::catalog::{DEFAULT_DATABASE, Engine};
use crate::engine::transactions::{Owner, Transactions, validate_savepoint};

pub struct TransactionService {
    engine: Arc<Engine>,
    transactions: Arc<Transactions>,
}

impl TransactionService {
    pub fn new(engine: Arc<Engine>, transactions: Arc<Transactions>) -> Self {
        TransactionService {
            engine,
            transactions,
        }
    }

    async fn finish(
        &self,
        ctx: &RequestContext,
        id: &str,
        commit: bool,
    ) -> Result<TransactionInfo, ApiError> {
        owned_transaction(&self.transactions, ctx.identity()?, id)?;
        let (transactions, id) = (Arc::clone(&self.transactions), id.to_string());
        let reason = if commit { "commit" } else { "rollback" };
        Ok(
            tokio::task::spawn_blocking(move || transactions.finish(&id, commit, reason))
                .await
                .map_err(ApiError::internal)??,
        )
    }

    async fn savepoint(
        &self,
        ctx: &RequestContext,
        id: &str,
        action: &'static str,
        name: String,
    ) -> Result<TransactionInfo, ApiError> {
        validate_savepoint(&name)?;
        let tx = owned_transaction(&self.transactions, ctx.identity()?, id)?;
        Ok(
            tokio::task::spawn_blocking(move || tx.savepoint(action, &name))
                .await
                .map_err(ApiError::internal)??,
        )
    }
}

impl TransactionsApi for TransactionService {
    async fn begin_transaction(
        &self,
        ctx: RequestContext,
        body: TransactionBegin,
    ) -> Result<TransactionInfo, ApiError> {
        let identity = Arc::clone(ctx.identity()?);
        let db = self
            .engine
            .get(body.database.as_deref().unwrap_or(DEFAULT_DATABASE))?;
        let mode = match body.mode {
            Some(TransactionBeginMode::Immediate) => "immediate",
            Some(TransactionBeginMode::Exclusive) => "exclusive",
            _ => "deferred",
        };
        // IMMEDIATE and EXCLUSIVE take the write lock at BEGIN: meaningless for a read-only
        // transaction, and refused rather than silently downgraded.
        if mode != "deferred" {
            if body.read_only == Some(true) {
                return Err(crate::error::Error::Invalid(format!(
                    "a read-only transaction takes no write lock: mode `{mode}` needs read_only false (or use mode deferred)"
                ))
                .into());
            }
            if !identity.has(Permission::DatabaseWrite) {
                return Err(ApiError::forbidden(format!(
                    "mode `{mode}` takes the write lock, which needs `database:write`; use mode deferred"
                )));
            }
        }
        // A caller who may not write gets a read-only transaction whatever it asked for.
        let read_only = body.read_only.unwrap_or(false) || !identity.has(Permission::DatabaseWrite);
        let transactions = Arc::clone(&self.transactions);
        Ok(tokio::task::spawn_blocking(move || {
            let owner = Owner {
                user_id: &identity.user_id,
                username: &identity.username,
                session_id: &crate::auth::sessions::session_id(&identity.credential),
            };
            transactions.begin(&db, &owner, mode, read_only)
        })
        .await
        .map_err(ApiError::internal)??)
    }

    async fn list_active_transactions(
        &self,
        ctx: RequestContext,
    ) -> Result<TransactionList, ApiError> {
        let identity = ctx.identity()?;
        let transactions: Vec<_> = self
            .transactions
            .list()
            .into_iter()
            .filter(|(owner, _)| {
                owner == &identity.user_id || identity.has(Permission::DatabaseAdmin)
            })
            .map(|(_, info)| info)
            .collect();
        Ok(TransactionList {
            total: transactions.len() as u64,
            transactions,
        })
    }

    async fn get_transaction(
        &self,
        ctx: RequestContext,
        path: GetTransactionPath,
    ) -> Result<TransactionInfo, ApiError> {
        let identity = ctx.identity()?;
        match owned_transaction(&self.transactions, identity, &path.transaction_id) {
            Ok(tx) => Ok(tx.info()),
            Err(e) => match self.transactions.ended(&path.transaction_id) {
                Some(info)
                    if info.owner == identity.username
                        || identity.has(Permission::DatabaseAdmin) =>
                {
                    Ok(info)
                }
                _ => Err(e),
            },
        }
    }

    async fn commit_transaction(
        &self,
        ctx: RequestContext,
        path: CommitTransactionPath,
    ) -> Result<TransactionInfo, ApiError> {
        self.finish(&ctx, &path.transaction_id, true).await
    }

    async fn rollback_transaction(
        &self,
        ctx: RequestContext,
        path: RollbackTransactionPath,
    ) -> Result<TransactionInfo, ApiError> {
        self.finish(&ctx, &path.transaction_id, false).await
    }

    async fn create_savepoint(
        &self,
        ctx: RequestContext,
        path: CreateSavepointPath,
        body: SavepointCreate,
    ) -> Result<TransactionInfo, ApiError> {
        self.savepoint(&ctx, &path.transaction_id, "set", body.name.to_string())
            .await
    }

    async fn release_savepoint(
        &self,
        ctx: RequestContext,
        path: ReleaseSavepointPath,
    ) -> Result<TransactionInfo, ApiError> {
        self.savepoint(
            &ctx,
            &path.transaction_id,
            "release",
            path.savepoint.clone(),
        )
        .await
    }

    async fn rollback_to_savepoint(
        &self,
        ctx: RequestContext,
        path: RollbackToSavepointPath,
    ) -> Result<TransactionInfo, ApiError> {
        self.savepoint(
            &ctx,
            &path.transaction_id,
            "rollback",
            path.savepoint.clone(),
        )
        .await
    }

    async fn acquire_lock(
        &self,
        ctx: RequestContext,
        path: AcquireLockPath,
        body: LockRequest,
    ) -> Result<LockInfo, ApiError> {
        let tx = owned_transaction(&self.transactions, ctx.identity()?, &path.transaction_id)?;
        locks::acquire(&self.transactions, tx, body).await
    }

    async fn list_transaction_locks(
        &self,
        ctx: RequestContext,
        path: ListTransactionLocksPath,
    ) -> Result<LockList, ApiError> {
        owned_transaction(&self.transactions, ctx.identity()?, &path.transaction_id)?;
        Ok(lock_list(
            self.transactions.locks().locks(Some(&path.transaction_id)),
        ))
    }

    async fn list_locks(&self, _ctx: RequestContext) -> Result<LockList, ApiError> {
        Ok(lock_list(self.transactions.locks().locks(None)))
    }

    async fn list_lock_waiters(&self, _ctx: RequestContext) -> Result<LockList, ApiError> {
        Ok(lock_list(self.transactions.locks().waiters()))
    }

    async fn get_lock_graph(&self, _ctx: RequestContext) -> Result<WaitForGraph, ApiError> {
        Ok(self.transactions.locks().graph())
    }

    async fn release_lock(
        &self,
        ctx: RequestContext,
        path: ReleaseLockPath,
    ) -> Result<LockInfo, ApiError> {
        let admin = &ctx.identity()?.username;
        let info = self
            .transactions
            .locks()
            .release(&path.lock_id, &format!("released by admin {admin}"))?;
        tracing::info!(lock_id = %path.lock_id, %admin, transaction_id = %info.transaction_id, "lock released by an admin");
        Ok(info)
    }

    async fn list_deadlocks(&self, _ctx: RequestContext) -> Result<DeadlockList, ApiError> {
        let (deadlocks, detected_total) = self.transactions.locks().history();
        Ok(DeadlockList {
            total: deadlocks.len() as u64,
            deadlocks,
            detected_total,
        })
    }

    async fn detect_deadlocks(&self, _ctx: RequestContext) -> Result<DeadlockDetection, ApiError> {
        let (transactions_checked, edges_checked, deadlocks) = self.transactions.locks().detect();
        locks::roll_back_victims(&self.transactions, &deadlocks).await;
        Ok(DeadlockDetection {
            detected_at: chrono::Utc::now(),
            transactions_checked,
            edges_checked,
            deadlocks,
        })
    }
}

fn lock_list(locks: Vec<LockInfo>) -> LockList {
    LockList {
        total: locks.len() as u64,
        locks,
    }
}

/// Rolls back idle transactions once a second until shutdown.
pub fn spawn_reaper(
    transactions: Arc<Transactions>,
    limit: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let t = Arc::clone(&transactions);
            let _ = tokio::task::spawn_blocking(move || t.reap(limit)).await;
        }
    });
}
