//! What an identity may reach outside the API's route permissions: which SQL it may run (the
//! engine's authorizer enforces it, but only this layer knows identities) and whose open
//! transactions it may use. Shared by the sql, tables and transactions subsystems and the query
//! stream, so none of them imports another.

use std::sync::Arc;

use crate::api::runtime::{Identity, RequestContext};
use crate::api::{ApiError, Permission};
use crate::engine::access::SqlAccess;
use crate::engine::transactions::{Transaction, Transactions};

/// The widest SQL the identity's database permissions allow, if any.
pub fn sql_access(identity: &Identity) -> Option<SqlAccess> {
    if identity.has(Permission::DatabaseAdmin) {
        Some(SqlAccess::Admin)
    } else if identity.has(Permission::DatabaseWrite) {
        Some(SqlAccess::Write)
    } else if identity.has(Permission::DatabaseRead) {
        Some(SqlAccess::Read)
    } else {
        None
    }
}

/// [`sql_access`] of a request's caller; 403 when it may run none.
pub fn request_sql_access(ctx: &RequestContext) -> Result<SqlAccess, ApiError> {
    identity_sql_access(ctx.identity()?)
}

/// [`sql_access`], 403 when the identity may run none.
pub fn identity_sql_access(identity: &Identity) -> Result<SqlAccess, ApiError> {
    sql_access(identity).ok_or_else(|| ApiError::forbidden("permission `database:read` required"))
}

/// The open transaction `id` if the caller may use it: its owner, or a database admin. Anyone
/// else is told it does not exist, as for an unknown id.
pub fn owned_transaction(
    transactions: &Transactions,
    identity: &Identity,
    id: &str,
) -> Result<Arc<Transaction>, ApiError> {
    let not_found = || {
        let reason = transactions
            .ended(id)
            .and_then(|i| i.end_reason)
            .map(|r| format!(": it ended ({r})"))
            .unwrap_or_default();
        ApiError::not_found(format!("no open transaction `{id}`{reason}"))
    };
    let tx = transactions.get(id).ok_or_else(not_found)?;
    if tx.owner_id != identity.user_id && !identity.has(Permission::DatabaseAdmin) {
        return Err(not_found());
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::runtime::Credential;

    fn identity(permissions: &[Permission]) -> Identity {
        Identity {
            user_id: "u1".into(),
            username: "u".into(),
            roles: vec![],
            permissions: permissions.to_vec(),
            credential: Credential::ApiKey {
                key_id: "k".into(),
                expires_at: None,
            },
        }
    }

    #[test]
    fn the_widest_database_permission_decides_and_none_is_forbidden() {
        let cases = [
            (vec![Permission::DatabaseRead], Some(SqlAccess::Read)),
            (
                vec![Permission::DatabaseRead, Permission::DatabaseWrite],
                Some(SqlAccess::Write),
            ),
            (vec![Permission::DatabaseAdmin], Some(SqlAccess::Admin)),
            (vec![Permission::SystemRead], None),
        ];
        for (permissions, expected) in cases {
            assert_eq!(
                sql_access(&identity(&permissions)),
                expected,
                "{permissions:?}"
            );
        }
        let err = identity_sql_access(&identity(&[])).unwrap_err();
        assert_eq!(err.status.as_u16(), 403, "{err:?}");
    }
}
