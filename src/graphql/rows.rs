//! Row helpers of the table-data subscriptions: the GraphQL row shape, changed columns, and the
//! `whereClause` test applied to a change event's row.

use serde_json::{Map, Value};

use crate::api::types::{FilterOperator, RowData, WhereClause};

/// A row as `RowData`: its key and its columns as JSON text.
pub(super) fn row_data(id: &str, row: &Map<String, Value>) -> RowData {
    RowData {
        id: id.to_string(),
        data: Value::Object(row.clone()).to_string(),
    }
}

/// Columns whose value differs between the old and the new row, in the new row's column order.
pub(super) fn changed_columns(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
    changed
}

/// Whether a row satisfies the clause. Numbers compare as numbers when both sides are numbers
/// (the clause's value is text, as SQLite's column affinity treats it for the REST filters);
/// otherwise values compare as text. A missing or NULL column matches nothing.
pub(super) fn matches(clause: &WhereClause, row: &Map<String, Value>) -> bool {
    let Some(actual) = row.get(&clause.field).filter(|v| !v.is_null()) else {
        return false;
    };
    if clause.operator == FilterOperator::Like {
        return like(&clause.value, &text(actual));
    }
    let ordering = match (actual.as_f64(), clause.value.trim().parse::<f64>()) {
        (Some(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(text(actual).as_str().cmp(clause.value.as_str())),
    };
    let Some(ord) = ordering else {
        return false;
    };
    use std::cmp::Ordering::*;
    match clause.operator {
        FilterOperator::Eq => ord == Equal,
        FilterOperator::Ne => ord != Equal,
        FilterOperator::Lt => ord == Less,
        FilterOperator::Le => ord != Greater,
        FilterOperator::Gt => ord == Greater,
        FilterOperator::Ge => ord != Less,
        FilterOperator::Like => false,
    }
}

/// The REST row filter (`[{"column", "op", "value"}]`) equivalent to a clause.
pub(super) fn rest_filter(clause: &WhereClause) -> String {
    let op = match clause.operator {
        FilterOperator::Eq => "eq",
        FilterOperator::Ne => "ne",
        FilterOperator::Lt => "lt",
        FilterOperator::Le => "le",
        FilterOperator::Gt => "gt",
        FilterOperator::Ge => "ge",
        FilterOperator::Like => "like",
    };
    serde_json::json!([{ "column": clause.field, "op": op, "value": clause.value }]).to_string()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SQLite's LIKE: `%` any run, `_` one character, ASCII letters case-insensitive.
fn like(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((c, rest)) => match s.split_first() {
                Some((d, srest)) if *c == '_' || c.eq_ignore_ascii_case(d) => go(rest, srest),
                _ => false,
            },
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(op: FilterOperator, value: &str) -> WhereClause {
        WhereClause {
            field: "n".into(),
            operator: op,
            value: value.into(),
        }
    }

    #[test]
    fn numbers_compare_as_numbers_and_text_as_text() {
        let row = serde_json::json!({"n": 9}).as_object().cloned().unwrap();
        assert!(matches(&clause(FilterOperator::Lt, "10"), &row));
        assert!(!matches(&clause(FilterOperator::Gt, "10"), &row));
        let row = serde_json::json!({"n": "pending"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(matches(&clause(FilterOperator::Eq, "pending"), &row));
        assert!(!matches(&clause(FilterOperator::Eq, "shipped"), &row));
        assert!(matches(&clause(FilterOperator::Like, "PEN%"), &row));
        assert!(!matches(&clause(FilterOperator::Like, "p_n"), &row));
    }
}
