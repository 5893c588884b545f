//! The REST services behind the GraphQL fields that mirror a REST operation (`rest:` in
//! `schema/subscriptions/`). Their resolvers are generated whole: the arguments feed the
//! operation's path, query and body as the YAML binds them, and the operation's own trait method
//! runs, so the SQL, the authorizer and the error codes are the route's.

use super::sources::Sources;
use crate::api::graphql::RestServices;
use crate::auth::AdminService;
use crate::databases::DatabaseService;
use crate::sessions::SessionService;
use crate::sql::SqlService;
use crate::system::SystemService;
use crate::tables::TableService;
use crate::transactions::TransactionService;

impl RestServices for Sources {
    type Admin = AdminService;
    type Databases = DatabaseService;
    type Sessions = SessionService;
    type Sql = SqlService;
    type System = SystemService;
    type Tables = TableService;
    type Transactions = TransactionService;

    fn admin_api(&self) -> &AdminService {
        &self.backends.admin
    }
    fn databases_api(&self) -> &DatabaseService {
        &self.backends.databases
    }
    fn sessions_api(&self) -> &SessionService {
        &self.backends.sessions
    }
    fn sql_api(&self) -> &SqlService {
        &self.backends.sql
    }
    fn system_api(&self) -> &SystemService {
        &self.backends.system
    }
    fn tables_api(&self) -> &TableService {
        &self.backends.tables
    }
    fn transactions_api(&self) -> &TransactionService {
        &self.backends.transactions
    }
}
