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
use crate::api::runtime::{ApiError, RequestContext};
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

pub(super) async fn tables(
    s: &Sources,
    rest: RequestContext,
    args: TablesArgs,
) -> Result<TableList> {
    let path = ListTablesPath {
        name: args.database,
    };
    path.validate()?;
    s.backends.tables.list_tables(rest, path).await
}

pub(super) async fn table(s: &Sources, rest: RequestContext, args: TableArgs) -> Result<TableInfo> {
    let path = GetTablePath {
        name: args.database,
        table: args.name,
    };
    path.validate()?;
    s.backends.tables.get_table(rest, path).await
}

pub(super) async fn rows(s: &Sources, rest: RequestContext, args: RowsArgs) -> Result<RowPage> {
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
    s.backends.tables.list_rows(rest, path, query).await
}

pub(super) async fn row(s: &Sources, rest: RequestContext, args: RowArgs) -> Result<RowWritten> {
    let path = GetRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    s.backends.tables.get_row(rest, path).await
}

pub(super) async fn query_sql(
    s: &Sources,
    rest: RequestContext,
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
    s.backends.sql.query_sql(rest, body).await
}

pub(super) async fn server_status(s: &Sources, rest: RequestContext) -> Result<RuntimeStats> {
    s.backends.system.get_runtime_stats(rest).await
}

pub(super) async fn transactions(s: &Sources, rest: RequestContext) -> Result<TransactionList> {
    s.backends.transactions.list_active_transactions(rest).await
}

pub(super) async fn sessions(s: &Sources, rest: RequestContext) -> Result<SessionList> {
    s.backends.sessions.list_sessions(rest).await
}

pub(super) async fn users(s: &Sources, rest: RequestContext, args: UsersArgs) -> Result<UserList> {
    let query: ListUsersQuery = build(
        "users arguments",
        json!({ "limit": args.limit, "offset": args.offset }),
    )?;
    query.validate()?;
    s.backends.admin.list_users(rest, query).await
}

pub(super) async fn roles(s: &Sources, rest: RequestContext) -> Result<RoleList> {
    s.backends.admin.list_roles(rest).await
}

pub(super) async fn create_database(
    s: &Sources,
    rest: RequestContext,
    args: CreateDatabaseArgs,
) -> Result<DatabaseInfo> {
    s.backends.databases.create_database(rest, args.input).await
}

pub(super) async fn drop_database(
    s: &Sources,
    rest: RequestContext,
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
        .delete_database(rest, path, query)
        .await?;
    Ok(true)
}

pub(super) async fn create_table(
    s: &Sources,
    rest: RequestContext,
    args: CreateTableArgs,
) -> Result<TableInfo> {
    let path = CreateTablePath {
        name: args.database,
    };
    path.validate()?;
    s.backends.tables.create_table(rest, path, args.input).await
}

pub(super) async fn drop_table(
    s: &Sources,
    rest: RequestContext,
    args: DropTableArgs,
) -> Result<bool> {
    let path = DropTablePath {
        name: args.database,
        table: args.name,
    };
    path.validate()?;
    s.backends.tables.drop_table(rest, path).await?;
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
    rest: RequestContext,
    args: InsertRowArgs,
) -> Result<RowWritten> {
    let path = InsertRowPath {
        name: args.database,
        table: args.table,
    };
    path.validate()?;
    let body = row_values(args.values)?;
    s.backends.tables.insert_row(rest, path, body).await
}

pub(super) async fn update_row(
    s: &Sources,
    rest: RequestContext,
    args: UpdateRowArgs,
) -> Result<RowWritten> {
    let path = UpdateRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    let body = row_values(args.values)?;
    s.backends.tables.update_row(rest, path, body).await
}

pub(super) async fn delete_row(
    s: &Sources,
    rest: RequestContext,
    args: DeleteRowArgs,
) -> Result<bool> {
    let path = DeleteRowPath {
        name: args.database,
        table: args.table,
        row_id: args.row_id,
    };
    path.validate()?;
    s.backends.tables.delete_row(rest, path).await?;
    Ok(true)
}

pub(super) async fn execute_sql(
    s: &Sources,
    rest: RequestContext,
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
    s.backends.sql.execute_sql(rest, body).await
}

pub(super) async fn begin_transaction(
    s: &Sources,
    rest: RequestContext,
    args: BeginTransactionArgs,
) -> Result<TransactionInfo> {
    let body = match args.input {
        Some(input) => input,
        None => build::<TransactionBegin>("transaction", json!({}))?,
    };
    s.backends.transactions.begin_transaction(rest, body).await
}

pub(super) async fn commit_transaction(
    s: &Sources,
    rest: RequestContext,
    args: CommitTransactionArgs,
) -> Result<TransactionInfo> {
    let path = CommitTransactionPath {
        transaction_id: args.transaction_id,
    };
    path.validate()?;
    s.backends.transactions.commit_transaction(rest, path).await
}

pub(super) async fn rollback_transaction(
    s: &Sources,
    rest: RequestContext,
    args: RollbackTransactionArgs,
) -> Result<TransactionInfo> {
    let path = RollbackTransactionPath {
        transaction_id: args.transaction_id,
    };
    path.validate()?;
    s.backends
        .transactions
        .rollback_transaction(rest, path)
        .await
}

pub(super) async fn create_user(
    s: &Sources,
    rest: RequestContext,
    args: CreateUserArgs,
) -> Result<User> {
    s.backends.admin.create_user(rest, args.input).await
}

pub(super) async fn delete_user(
    s: &Sources,
    rest: RequestContext,
    args: DeleteUserArgs,
) -> Result<bool> {
    let path = DeleteUserPath {
        user_id: args.user_id,
    };
    path.validate()?;
    s.backends.admin.delete_user(rest, path).await?;
    Ok(true)
}

impl CoreFields for Sources {
    async fn tables(
        &self,
        _caller: Caller,
        args: TablesArgs,
        rest: RequestContext,
    ) -> Result<TableList> {
        tables(self, rest, args).await
    }

    async fn table(
        &self,
        _caller: Caller,
        args: TableArgs,
        rest: RequestContext,
    ) -> Result<TableInfo> {
        table(self, rest, args).await
    }

    async fn rows(&self, _caller: Caller, args: RowsArgs, rest: RequestContext) -> Result<RowPage> {
        rows(self, rest, args).await
    }

    async fn row(
        &self,
        _caller: Caller,
        args: RowArgs,
        rest: RequestContext,
    ) -> Result<RowWritten> {
        row(self, rest, args).await
    }

    async fn query_sql(
        &self,
        _caller: Caller,
        args: QuerySqlArgs,
        rest: RequestContext,
    ) -> Result<SqlResult> {
        query_sql(self, rest, args).await
    }

    async fn server_status(
        &self,
        _caller: Caller,
        _args: ServerStatusArgs,
        rest: RequestContext,
    ) -> Result<RuntimeStats> {
        server_status(self, rest).await
    }

    async fn transactions(
        &self,
        _caller: Caller,
        _args: TransactionsArgs,
        rest: RequestContext,
    ) -> Result<TransactionList> {
        transactions(self, rest).await
    }

    async fn sessions(
        &self,
        _caller: Caller,
        _args: SessionsArgs,
        rest: RequestContext,
    ) -> Result<SessionList> {
        sessions(self, rest).await
    }

    async fn users(
        &self,
        _caller: Caller,
        args: UsersArgs,
        rest: RequestContext,
    ) -> Result<UserList> {
        users(self, rest, args).await
    }

    async fn roles(
        &self,
        _caller: Caller,
        _args: RolesArgs,
        rest: RequestContext,
    ) -> Result<RoleList> {
        roles(self, rest).await
    }

    async fn create_database(
        &self,
        _caller: Caller,
        args: CreateDatabaseArgs,
        rest: RequestContext,
    ) -> Result<DatabaseInfo> {
        create_database(self, rest, args).await
    }

    async fn drop_database(
        &self,
        _caller: Caller,
        args: DropDatabaseArgs,
        rest: RequestContext,
    ) -> Result<bool> {
        drop_database(self, rest, args).await
    }

    async fn create_table(
        &self,
        _caller: Caller,
        args: CreateTableArgs,
        rest: RequestContext,
    ) -> Result<TableInfo> {
        create_table(self, rest, args).await
    }

    async fn drop_table(
        &self,
        _caller: Caller,
        args: DropTableArgs,
        rest: RequestContext,
    ) -> Result<bool> {
        drop_table(self, rest, args).await
    }

    async fn insert_row(
        &self,
        _caller: Caller,
        args: InsertRowArgs,
        rest: RequestContext,
    ) -> Result<RowWritten> {
        insert_row(self, rest, args).await
    }

    async fn update_row(
        &self,
        _caller: Caller,
        args: UpdateRowArgs,
        rest: RequestContext,
    ) -> Result<RowWritten> {
        update_row(self, rest, args).await
    }

    async fn delete_row(
        &self,
        _caller: Caller,
        args: DeleteRowArgs,
        rest: RequestContext,
    ) -> Result<bool> {
        delete_row(self, rest, args).await
    }

    async fn execute_sql(
        &self,
        _caller: Caller,
        args: ExecuteSqlArgs,
        rest: RequestContext,
    ) -> Result<SqlExecuted> {
        execute_sql(self, rest, args).await
    }

    async fn begin_transaction(
        &self,
        _caller: Caller,
        args: BeginTransactionArgs,
        rest: RequestContext,
    ) -> Result<TransactionInfo> {
        begin_transaction(self, rest, args).await
    }

    async fn commit_transaction(
        &self,
        _caller: Caller,
        args: CommitTransactionArgs,
        rest: RequestContext,
    ) -> Result<TransactionInfo> {
        commit_transaction(self, rest, args).await
    }

    async fn rollback_transaction(
        &self,
        _caller: Caller,
        args: RollbackTransactionArgs,
        rest: RequestContext,
    ) -> Result<TransactionInfo> {
        rollback_transaction(self, rest, args).await
    }

    async fn create_user(
        &self,
        _caller: Caller,
        args: CreateUserArgs,
        rest: RequestContext,
    ) -> Result<User> {
        create_user(self, rest, args).await
    }

    async fn delete_user(
        &self,
        _caller: Caller,
        args: DeleteUserArgs,
        rest: RequestContext,
    ) -> Result<bool> {
        delete_user(self, rest, args).await
    }
}
