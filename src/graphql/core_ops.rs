//! Queries and mutations over the core (`schema/subscriptions/core.yaml`): each builds the REST
//! operation's path, query and body from its arguments, checks them with the same generated
//! `validate()`, and calls the REST service's own trait method, so the SQL, the authorizer and
//! the error codes are those of the REST route. The field's permission (the REST route's) is
//! checked by the generated resolver before any of this runs.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::sources::Sources;
use crate::api::admin::{DeleteUserPath, ListUsersQuery};
use crate::api::databases::{DeleteDatabasePath, DeleteDatabaseQuery};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, invalid_argument};
use crate::api::runtime::ApiError;
use crate::api::tables::{
    CreateTablePath, DeleteRowPath, DropTablePath, GetRowPath, GetTablePath, InsertRowPath,
    ListRowsPath, ListRowsQuery, ListTablesPath, UpdateRowPath,
};
use crate::api::transactions::{CommitTransactionPath, RollbackTransactionPath};
use crate::api::types::{
    DatabaseInfo, RoleList, RowPage, RowValues, RowWritten, RuntimeStats, SessionList, SqlExecuted,
    SqlQuery, SqlResult, TableInfo, TableList, TransactionBegin, TransactionInfo, TransactionList,
    User, UserList,
};
use crate::api::{
    AdminApi, DatabasesApi, SessionsApi, SqlApi, SystemApi, TablesApi, TransactionsApi,
};

type Result<T> = std::result::Result<T, ApiError>;

/// A REST query or body built from JSON, so serde applies its defaults and the shared types'
/// constraints exactly as for an HTTP request. Arguments left out (null) are left out of it.
fn build<T: DeserializeOwned>(what: &str, mut value: Value) -> Result<T> {
    if let Value::Object(fields) = &mut value {
        fields.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(value).map_err(|e| invalid_argument(format!("invalid {what}: {e}")))
}

pub(super) async fn tables(s: &Sources, caller: Caller, args: TablesArgs) -> Result<TableList> {
    let path = ListTablesPath {
        name: args.database,
    };
    path.validate()?;
    s.backends
        .tables
        .list_tables(s.context(&caller, "list_tables")?, path)
        .await
}

pub(super) async fn table(s: &Sources, caller: Caller, args: TableArgs) -> Result<TableInfo> {
    let path = GetTablePath {
        name: args.database,
        table: args.name,
    };
    path.validate()?;
    s.backends
        .tables
        .get_table(s.context(&caller, "get_table")?, path)
        .await
}

pub(super) async fn rows(s: &Sources, caller: Caller, args: RowsArgs) -> Result<RowPage> {
    let path = ListRowsPath {
        name: args.database,
        table: args.table,
    };
    // `where` becomes the REST `filter` text, so the REST filter parser reads it.
    let filter = args
        .r#where
        .map(|conditions| serde_json::to_string(&conditions))
        .transpose()
        .map_err(ApiError::internal)?;
    let query: ListRowsQuery = build(
        "rows arguments",
        json!({
            "filter": filter,
            "order_by": args.order_by,
            "limit": args.limit,
            "offset": args.offset,
        }),
    )?;
    path.validate()?;
    query.validate()?;
    s.backends
        .tables
        .list_rows(s.context(&caller, "list_rows")?, path, query)
        .await
}

pub(super) async fn row(s: &Sources, caller: Caller, args: RowArgs) -> Result<RowWritten> {
    let path = GetRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    s.backends
        .tables
        .get_row(s.context(&caller, "get_row")?, path)
        .await
}

pub(super) async fn query_sql(
    s: &Sources,
    caller: Caller,
    args: QuerySqlArgs,
) -> Result<SqlResult> {
    let body: SqlQuery = build(
        "SQL query",
        json!({
            "sql": args.sql,
            "params": args.params,
            "database": args.database,
            "transaction_id": args.transaction_id,
            "timeout": args.timeout,
            "max_rows": args.max_rows,
        }),
    )?;
    s.backends
        .sql
        .query_sql(s.context(&caller, "query_sql")?, body)
        .await
}

pub(super) async fn server_status(s: &Sources, caller: Caller) -> Result<RuntimeStats> {
    s.backends
        .system
        .get_runtime_stats(s.context(&caller, "get_runtime_stats")?)
        .await
}

pub(super) async fn transactions(s: &Sources, caller: Caller) -> Result<TransactionList> {
    s.backends
        .transactions
        .list_active_transactions(s.context(&caller, "list_active_transactions")?)
        .await
}

pub(super) async fn sessions(s: &Sources, caller: Caller) -> Result<SessionList> {
    s.backends
        .sessions
        .list_sessions(s.context(&caller, "list_sessions")?)
        .await
}

pub(super) async fn users(s: &Sources, caller: Caller, args: UsersArgs) -> Result<UserList> {
    let query: ListUsersQuery = build(
        "users arguments",
        json!({ "limit": args.limit, "offset": args.offset }),
    )?;
    query.validate()?;
    s.backends
        .admin
        .list_users(s.context(&caller, "list_users")?, query)
        .await
}

pub(super) async fn roles(s: &Sources, caller: Caller) -> Result<RoleList> {
    s.backends
        .admin
        .list_roles(s.context(&caller, "list_roles")?)
        .await
}

pub(super) async fn create_database(
    s: &Sources,
    caller: Caller,
    args: CreateDatabaseArgs,
) -> Result<DatabaseInfo> {
    s.backends
        .databases
        .create_database(s.context(&caller, "create_database")?, args.input)
        .await
}

pub(super) async fn drop_database(
    s: &Sources,
    caller: Caller,
    args: DropDatabaseArgs,
) -> Result<bool> {
    let path = DeleteDatabasePath { name: args.name };
    let query = DeleteDatabaseQuery {
        force: args.force.unwrap_or(false),
    };
    path.validate()?;
    query.validate()?;
    s.backends
        .databases
        .delete_database(s.context(&caller, "delete_database")?, path, query)
        .await?;
    Ok(true)
}

pub(super) async fn create_table(
    s: &Sources,
    caller: Caller,
    args: CreateTableArgs,
) -> Result<TableInfo> {
    let path = CreateTablePath {
        name: args.database,
    };
    path.validate()?;
    s.backends
        .tables
        .create_table(s.context(&caller, "create_table")?, path, args.input)
        .await
}

pub(super) async fn drop_table(s: &Sources, caller: Caller, args: DropTableArgs) -> Result<bool> {
    let path = DropTablePath {
        name: args.database,
        table: args.name,
    };
    path.validate()?;
    s.backends
        .tables
        .drop_table(s.context(&caller, "drop_table")?, path)
        .await?;
    Ok(true)
}

/// The REST body of a row write: `values` must be an object of column -> value.
fn row_values(values: Value) -> Result<RowValues> {
    build(
        "values (an object of column -> value)",
        json!({ "values": values }),
    )
}

pub(super) async fn insert_row(
    s: &Sources,
    caller: Caller,
    args: InsertRowArgs,
) -> Result<RowWritten> {
    let path = InsertRowPath {
        name: args.database,
        table: args.table,
    };
    path.validate()?;
    let body = row_values(args.values)?;
    s.backends
        .tables
        .insert_row(s.context(&caller, "insert_row")?, path, body)
        .await
}

pub(super) async fn update_row(
    s: &Sources,
    caller: Caller,
    args: UpdateRowArgs,
) -> Result<RowWritten> {
    let path = UpdateRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    let body = row_values(args.values)?;
    s.backends
        .tables
        .update_row(s.context(&caller, "update_row")?, path, body)
        .await
}

pub(super) async fn delete_row(s: &Sources, caller: Caller, args: DeleteRowArgs) -> Result<bool> {
    let path = DeleteRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    s.backends
        .tables
        .delete_row(s.context(&caller, "delete_row")?, path)
        .await?;
    Ok(true)
}

pub(super) async fn execute_sql(
    s: &Sources,
    caller: Caller,
    args: ExecuteSqlArgs,
) -> Result<SqlExecuted> {
    let body: SqlQuery = build(
        "SQL statement",
        json!({
            "sql": args.sql,
            "params": args.params,
            "database": args.database,
            "transaction_id": args.transaction_id,
            "timeout": args.timeout,
        }),
    )?;
    s.backends
        .sql
        .execute_sql(s.context(&caller, "execute_sql")?, body)
        .await
}

pub(super) async fn begin_transaction(
    s: &Sources,
    caller: Caller,
    args: BeginTransactionArgs,
) -> Result<TransactionInfo> {
    let body = match args.input {
        Some(input) => input,
        None => build::<TransactionBegin>("transaction", json!({}))?,
    };
    s.backends
        .transactions
        .begin_transaction(s.context(&caller, "begin_transaction")?, body)
        .await
}

pub(super) async fn commit_transaction(
    s: &Sources,
    caller: Caller,
    args: CommitTransactionArgs,
) -> Result<TransactionInfo> {
    let path = CommitTransactionPath {
        transaction_id: args.transaction_id,
    };
    path.validate()?;
    s.backends
        .transactions
        .commit_transaction(s.context(&caller, "commit_transaction")?, path)
        .await
}

pub(super) async fn rollback_transaction(
    s: &Sources,
    caller: Caller,
    args: RollbackTransactionArgs,
) -> Result<TransactionInfo> {
    let path = RollbackTransactionPath {
        transaction_id: args.transaction_id,
    };
    path.validate()?;
    s.backends
        .transactions
        .rollback_transaction(s.context(&caller, "rollback_transaction")?, path)
        .await
}

pub(super) async fn create_user(s: &Sources, caller: Caller, args: CreateUserArgs) -> Result<User> {
    s.backends
        .admin
        .create_user(s.context(&caller, "create_user")?, args.input)
        .await
}

pub(super) async fn delete_user(s: &Sources, caller: Caller, args: DeleteUserArgs) -> Result<bool> {
    let path = DeleteUserPath {
        user_id: args.user_id,
    };
    path.validate()?;
    s.backends
        .admin
        .delete_user(s.context(&caller, "delete_user")?, path)
        .await?;
    Ok(true)
}

impl CoreFields for Sources {
    async fn tables(&self, caller: Caller, args: TablesArgs) -> Result<TableList> {
        tables(self, caller, args).await
    }

    async fn table(&self, caller: Caller, args: TableArgs) -> Result<TableInfo> {
        table(self, caller, args).await
    }

    async fn rows(&self, caller: Caller, args: RowsArgs) -> Result<RowPage> {
        rows(self, caller, args).await
    }

    async fn row(&self, caller: Caller, args: RowArgs) -> Result<RowWritten> {
        row(self, caller, args).await
    }

    async fn query_sql(&self, caller: Caller, args: QuerySqlArgs) -> Result<SqlResult> {
        query_sql(self, caller, args).await
    }

    async fn server_status(&self, caller: Caller, _args: ServerStatusArgs) -> Result<RuntimeStats> {
        server_status(self, caller).await
    }

    async fn transactions(
        &self,
        caller: Caller,
        _args: TransactionsArgs,
    ) -> Result<TransactionList> {
        transactions(self, caller).await
    }

    async fn sessions(&self, caller: Caller, _args: SessionsArgs) -> Result<SessionList> {
        sessions(self, caller).await
    }

    async fn users(&self, caller: Caller, args: UsersArgs) -> Result<UserList> {
        users(self, caller, args).await
    }

    async fn roles(&self, caller: Caller, _args: RolesArgs) -> Result<RoleList> {
        roles(self, caller).await
    }

    async fn create_database(
        &self,
        caller: Caller,
        args: CreateDatabaseArgs,
    ) -> Result<DatabaseInfo> {
        create_database(self, caller, args).await
    }

    async fn drop_database(&self, caller: Caller, args: DropDatabaseArgs) -> Result<bool> {
        drop_database(self, caller, args).await
    }

    async fn create_table(&self, caller: Caller, args: CreateTableArgs) -> Result<TableInfo> {
        create_table(self, caller, args).await
    }

    async fn drop_table(&self, caller: Caller, args: DropTableArgs) -> Result<bool> {
        drop_table(self, caller, args).await
    }

    async fn insert_row(&self, caller: Caller, args: InsertRowArgs) -> Result<RowWritten> {
        insert_row(self, caller, args).await
    }

    async fn update_row(&self, caller: Caller, args: UpdateRowArgs) -> Result<RowWritten> {
        update_row(self, caller, args).await
    }

    async fn delete_row(&self, caller: Caller, args: DeleteRowArgs) -> Result<bool> {
        delete_row(self, caller, args).await
    }

    async fn execute_sql(&self, caller: Caller, args: ExecuteSqlArgs) -> Result<SqlExecuted> {
        execute_sql(self, caller, args).await
    }

    async fn begin_transaction(
        &self,
        caller: Caller,
        args: BeginTransactionArgs,
    ) -> Result<TransactionInfo> {
        begin_transaction(self, caller, args).await
    }

    async fn commit_transaction(
        &self,
        caller: Caller,
        args: CommitTransactionArgs,
    ) -> Result<TransactionInfo> {
        commit_transaction(self, caller, args).await
    }

    async fn rollback_transaction(
        &self,
        caller: Caller,
        args: RollbackTransactionArgs,
    ) -> Result<TransactionInfo> {
        rollback_transaction(self, caller, args).await
    }

    async fn create_user(&self, caller: Caller, args: CreateUserArgs) -> Result<User> {
        create_user(self, caller, args).await
    }

    async fn delete_user(&self, caller: Caller, args: DeleteUserArgs) -> Result<bool> {
        delete_user(self, caller, args).await
    }
}
