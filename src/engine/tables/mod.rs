//! Tables and rows without SQL from the client: identifiers are checked against the table's
//! real columns and quoted, values are always bound.

mod indexes;
mod keys;
mod rows;
mod schema;
mod table;

pub use indexes::{analyze, create_index, drop_index, indexes};
pub use keys::{encode_key, split_key};
pub use rows::{KeyedRow, Page, delete, get, insert, rows, update};
pub use schema::{Alter, alter, create, drop, info, list};
pub use table::{Table, describe, quote};
