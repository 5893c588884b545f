//! Server-side subscription filters: `{"field": value, ...}`, every field must equal. Fields are
//! looked up in the payload, or in the variant's fields for tagged messages; `variant` matches the
//! variant name of an externally tagged message and `event_type` that of an `event_type`-tagged one.

use serde_json::{Map, Value};

/// The fields in the client's order; a boxed slice, not a map: a filter has a field or two and
/// one is kept per subscription.
#[derive(Debug, Clone, Default)]
pub struct Filter(Box<[(String, Value)]>);

impl Filter {
    /// A filter from a client's `filter` value: an object of scalar values, or null/absent.
    pub fn parse(value: Option<&Value>) -> Result<Filter, String> {
        match value {
            None | Some(Value::Null) => Ok(Filter::default()),
            Some(Value::Object(map)) => {
                if let Some((k, _)) = map.iter().find(|(_, v)| v.is_object() || v.is_array()) {
                    return Err(format!(
                        "filter field `{k}` must be a string, number, boolean or null"
                    ));
                }
                Ok(Filter(
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ))
            }
            Some(_) => Err("filter must be an object of field: value".into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.0.iter().cloned().collect::<Map<String, Value>>())
    }

    pub fn matches(&self, data: &Value) -> bool {
        self.0.iter().all(|(field, expected)| {
            let field = field.as_str();
            if let Some(v) = data.get(field) {
                return v == expected;
            }
            // Externally tagged: {"Variant": {...fields}}.
            let single = data.as_object().filter(|o| o.len() == 1);
            match single.and_then(|o| o.iter().next()) {
                Some((variant, _)) if field == "variant" => {
                    expected.as_str() == Some(variant.as_str())
                }
                Some((_, inner)) => inner.get(field) == Some(expected),
                None => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_flat_and_tagged_payloads() {
        let f = Filter::parse(Some(&json!({"table": "users"}))).unwrap();
        assert!(f.matches(&json!({"table": "users", "operation": "INSERT"})));
        assert!(!f.matches(&json!({"table": "orders"})));
        let v = Filter::parse(Some(&json!({"variant": "PoolStats"}))).unwrap();
        assert!(v.matches(&json!({"PoolStats": {"hit_rate": 0.9}})));
        assert!(!v.matches(&json!({"PageMiss": {}})));
        let inner = Filter::parse(Some(&json!({"hit_rate": 0.9}))).unwrap();
        assert!(inner.matches(&json!({"PoolStats": {"hit_rate": 0.9}})));
        let tagged = Filter::parse(Some(&json!({"event_type": "NodeFailed"}))).unwrap();
        assert!(tagged.matches(&json!({"event_type": "NodeFailed", "node_id": "n3"})));
        assert!(Filter::parse(Some(&json!({"a": {"b": 1}}))).is_err());
        assert!(Filter::parse(Some(&json!([1]))).is_err());
        assert!(Filter::parse(None).unwrap().matches(&json!({})));
    }
}
