//! Server-side subscription filters: `{"field": value, ...}`, every field must equal. Fields are
//! looked up in the payload, or in the variant's fields for tagged messages; `variant` matches the
//! variant name of an externally tagged message and `event_type` that of an `event_type`-tagged one.

use serde_json::{Map, Number, Value};

/// The fields in the client's order; a boxed slice, not a map: a filter has a field or two and
/// one is kept per subscription.
#[derive(Debug, Clone, Default)]
pub struct Filter(Box<[(Box<str>, Scalar)]>);

/// A field's expected value. Filters hold scalars only, so they are not kept as `Value`s, which
/// are 72 bytes each with `preserve_order` (one filter per subscription).
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    String(Box<str>),
}

impl Scalar {
    fn from_value(value: &Value) -> Option<Scalar> {
        Some(match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(n.clone()),
            Value::String(s) => Scalar::String(s.as_str().into()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// Equal as JSON values are (a number compares with its representation, as `Value` does).
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Null, Value::Null) => true,
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::Number(a), Value::Number(b)) => a == b,
            (Scalar::String(a), Value::String(b)) => **a == **b,
            _ => false,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::String(s) => Value::String(s.to_string()),
        }
    }
}

impl Filter {
    /// A filter from a client's `filter` value: an object of scalar values, or null/absent.
    pub fn parse(value: Option<&Value>) -> Result<Filter, String> {
        match value {
            None | Some(Value::Null) => Ok(Filter::default()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match Scalar::from_value(v) {
                    Some(s) => Ok((k.as_str().into(), s)),
                    None => Err(format!(
                        "filter field `{k}` must be a string, number, boolean or null"
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Filter),
            Some(_) => Err("filter must be an object of field: value".into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_value()))
                .collect::<Map<String, Value>>(),
        )
    }

    pub fn matches(&self, data: &Value) -> bool {
        self.0.iter().all(|(field, expected)| {
            let field = &**field;
            if let Some(v) = data.get(field) {
                return expected.equals(v);
            }
            // Externally tagged: {"Variant": {...fields}}.
            let single = data.as_object().filter(|o| o.len() == 1);
            match single.and_then(|o| o.iter().next()) {
                Some((variant, _)) if field == "variant" => {
                    matches!(expected, Scalar::String(s) if **s == **variant)
                }
                Some((_, inner)) => inner.get(field).is_some_and(|v| expected.equals(v)),
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
        // Scalars of every kind; a value of another kind never matches.
        let all = json!({"s": "x", "n": 2, "f": 1.5, "b": true, "z": null});
        let f = Filter::parse(Some(&all)).unwrap();
        assert!(f.matches(&all));
        assert_eq!(f.as_value(), all);
        for (field, other) in [
            ("s", json!(2)),
            ("n", json!("2")),
            ("b", json!(1)),
            ("z", json!(false)),
        ] {
            let mut data = all.clone();
            data[field] = other;
            assert!(!f.matches(&data), "{field}");
        }
        assert!(
            Filter::parse(Some(&json!({"variant": 1})))
                .unwrap()
                .matches(&json!({"variant": 1}))
        );
        assert!(
            !Filter::parse(Some(&json!({"variant": 1})))
                .unwrap()
                .matches(&json!({"PoolStats": {}}))
        );
    }
}
