//! Lock routes of the transactions subsystem: taking a lock waits asynchronously on the lock
//! manager (`engine::locks`), and a deadlock victim's transaction is rolled back here.

use std::sync::Arc;
use std::time::Duration;

use crate::api::ApiError;
use crate::api::types::{Deadlock, LockInfo, LockRequest};
use crate::engine::locks::{Acquired, LockManager, Outcome, Target};
use crate::engine::transactions::{Transaction, Transactions};
use crate::error::Error;

/// Wait used when a request gives no `timeout_ms`.
const DEFAULT_WAIT: Duration = Duration::from_millis(5000);
/// The longest wait, as declared in the schema (typify does not check integer bounds).
const MAX_WAIT_MS: u64 = 60_000;

/// What a lock request names: a named resource or a table row, never both.
fn target(body: &LockRequest) -> Result<Target, Error> {
    match (&body.resource, &body.table, &body.row_id) {
        (Some(name), None, None) => Ok(Target::named(name)),
        (None, Some(table), Some(row)) => Ok(Target::row(table, row)),
        (Some(_), _, _) => Err(Error::Invalid(
            "give either `resource` or `table` with `row_id`, not both".into(),
        )),
        (None, Some(_), None) | (None, None, Some(_)) => Err(Error::Invalid(
            "a row lock needs both `table` and `row_id`".into(),
        )),
        (None, None, None) => Err(Error::Invalid(
            "give `resource` (a named lock) or `table` with `row_id` (a row lock)".into(),
        )),
    }
}

fn deadlock_error(deadlock: Deadlock) -> Error {
    Error::Deadlock {
        message: format!(
            "deadlock {}: transaction `{}` was chosen as the victim (the youngest of the cycle {}) and rolled back; retry it in a new transaction",
            deadlock.deadlock_id,
            deadlock.victim_transaction,
            deadlock.transactions.join(" -> "),
        ),
        deadlock: Box::new(deadlock),
    }
}

/// Rolls back the victims of resolved deadlocks; one that already ended is left alone.
pub(super) async fn roll_back_victims(transactions: &Arc<Transactions>, deadlocks: &[Deadlock]) {
    for d in deadlocks {
        let (t, id) = (Arc::clone(transactions), d.victim_transaction.clone());
        let reason = format!("deadlock victim ({})", d.deadlock_id);
        let _ = tokio::task::spawn_blocking(move || t.finish(&id, false, &reason)).await;
    }
}

/// Withdraws a waiting request whose caller went away (the request timed out at the server or
/// the client disconnected), so it is not granted to nobody.
struct WaitGuard<'a> {
    locks: &'a LockManager,
    lock_id: String,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.locks.cancel_wait(
                &self.lock_id,
                "the request ended before the lock was granted",
            );
        }
    }
}

/// Takes the lock `body` asks for in `tx`, waiting up to its timeout.
pub(super) async fn acquire(
    transactions: &Arc<Transactions>,
    tx: Arc<Transaction>,
    body: LockRequest,
) -> Result<LockInfo, ApiError> {
    let target = target(&body)?;
    if body.timeout_ms.is_some_and(|ms| ms > MAX_WAIT_MS) {
        return Err(Error::Invalid(format!("`timeout_ms` is at most {MAX_WAIT_MS}")).into());
    }
    let wait = body.timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis);
    let locks = Arc::clone(transactions.locks());
    tx.touch();
    let meta = tx.lock_meta();
    let acquired = locks.acquire(&meta, target.clone(), body.mode, !wait.is_zero())?;
    let (lock_id, mut rx, blocked_by) = match acquired {
        Acquired::Granted(info) => return Ok(info),
        Acquired::Victim(deadlock) => {
            roll_back_victims(transactions, std::slice::from_ref(&deadlock)).await;
            return Err(deadlock_error(*deadlock).into());
        }
        Acquired::Waiting {
            lock_id,
            rx,
            blocked_by,
            resolved,
        } => {
            roll_back_victims(transactions, &resolved).await;
            (lock_id, rx, blocked_by)
        }
    };
    let mut guard = WaitGuard {
        locks: &locks,
        lock_id: lock_id.clone(),
        armed: true,
    };
    let outcome = match tokio::time::timeout(wait, &mut rx).await {
        Ok(outcome) => outcome.ok(),
        Err(_elapsed) => {
            if locks.cancel_wait(&lock_id, "timeout") {
                guard.armed = false;
                return Err(Error::LockTimeout(format!(
                    "lock on `{}` not granted within {} ms (waiting for {})",
                    target.resource,
                    wait.as_millis(),
                    blocked_by.join(", ")
                ))
                .into());
            }
            // Served between the timer and the withdrawal: the outcome is already there.
            rx.try_recv().ok()
        }
    };
    guard.armed = false;
    tx.touch();
    match outcome {
        Some(Outcome::Granted(info)) => Ok(*info),
        Some(Outcome::Deadlock(deadlock)) => Err(deadlock_error(*deadlock).into()),
        None => Err(
            Error::Conflict("the transaction ended while its lock request waited".into()).into(),
        ),
    }
}
