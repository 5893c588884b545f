//! `schema.graphql`: the subscription root and the object types it returns. The running
//! async-graphql schema must export the same SDL (checked by a test once subscriptions exist).

use std::collections::BTreeSet;

use heck::ToUpperCamelCase;
use serde_json::Value;

use crate::emit::header;
use crate::ir::{Api, NamedType};

pub fn emit(api: &Api) -> String {
    let mut out = format!("# {}\n", header());
    if api.subscriptions.is_empty() {
        out.push_str("# No subscriptions are declared in schema/subscriptions/ yet.\n");
        return out;
    }
    let mut wanted: Vec<String> = api
        .subscriptions
        .iter()
        .map(|s| s.returns.clone())
        .collect();
    let mut emitted = BTreeSet::new();
    let mut objects = Vec::new();
    while let Some(name) = wanted.pop() {
        if !emitted.insert(name.clone()) {
            continue;
        }
        if let Some(t) = api.types.iter().find(|t| t.name == name) {
            objects.push(object_type(t, &mut wanted));
        } else if name == JSON {
            objects.push(format!("scalar {JSON}\n"));
        }
    }
    objects.sort();
    out.push('\n');
    for o in objects {
        out.push_str(&o);
        out.push('\n');
    }
    out.push_str("type Subscription {\n");
    for s in &api.subscriptions {
        out.push_str(&format!("  \"\"\"{}\"\"\"\n", s.description.trim()));
        let args = if s.args.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = s.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            format!("({})", list.join(", "))
        };
        out.push_str(&format!("  {}{args}: {}!\n", s.name, s.returns));
    }
    out.push_str("}\n\nschema {\n  subscription: Subscription\n}\n");
    out
}

fn object_type(t: &NamedType, wanted: &mut Vec<String>) -> String {
    let mut out = String::new();
    if let Some(d) = t.schema.get("description").and_then(Value::as_str) {
        out.push_str(&format!("\"\"\"{}\"\"\"\n", d.trim()));
    }
    let Some(props) = t
        .schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
    else {
        // Not an object (an object type needs fields): an enum when its values are GraphQL names,
        // a custom scalar otherwise.
        let values: Option<Vec<&str>> = t
            .schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().map(Value::as_str).collect());
        match values.filter(|vs| !vs.is_empty() && vs.iter().all(|v| is_enum_value(v))) {
            Some(vs) => {
                out.push_str(&format!("enum {} {{\n", t.name));
                for v in vs {
                    out.push_str(&format!("  {v}\n"));
                }
                out.push_str("}\n");
            }
            None => out.push_str(&format!("scalar {}\n", t.name)),
        }
        return out;
    };
    out.push_str(&format!("type {} {{\n", t.name));
    let required: Vec<&str> = t
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, schema) in props {
        let ty = gql_type(schema, wanted);
        let bang = if required.contains(&name.as_str()) {
            "!"
        } else {
            ""
        };
        out.push_str(&format!("  {}: {ty}{bang}\n", lower_camel(name)));
    }
    out.push_str("}\n");
    out
}

fn gql_type(schema: &Value, wanted: &mut Vec<String>) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        wanted.push(r.to_string());
        return r.to_string();
    }
    let ty = match schema.get("type") {
        Some(Value::Array(ts)) => ts.iter().find(|t| *t != "null").cloned(),
        other => other.cloned(),
    };
    match ty.as_ref().and_then(Value::as_str) {
        Some("string") => "String".into(),
        Some("integer") => "Int".into(),
        Some("number") => "Float".into(),
        Some("boolean") => "Boolean".into(),
        Some("array") => {
            let inner = schema
                .get("items")
                .map(|i| gql_type(i, wanted))
                .unwrap_or_else(|| "String".into());
            format!("[{inner}!]")
        }
        _ => {
            wanted.push(JSON.into());
            JSON.into()
        }
    }
}

/// The scalar of fields without a GraphQL type (no `type`, or a map).
const JSON: &str = "JSON";

/// A GraphQL enum value: a name that is not `true`, `false` or `null`.
fn is_enum_value(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !["true", "false", "null"].contains(&v)
}

fn lower_camel(s: &str) -> String {
    let camel = s.to_upper_camel_case();
    let mut chars = camel.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => camel,
    }
}
