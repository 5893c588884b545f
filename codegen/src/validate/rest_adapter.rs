//! The adapter of a GraphQL query or mutation that mirrors a REST operation (`rest:`): which
//! argument feeds which path parameter, query parameter or body property, checked against the
//! operation, so the field can neither leave out what the route requires nor pass what it does
//! not take, and its result is the route's. The generated resolver then calls the operation's
//! trait method itself: no hand-written glue per field.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToSnakeCase;
use serde_json::Value;

use super::Checker;
use crate::ir::{Binding, BodyFrom, NamedType, Operation, Param, ParamType, RestAdapter};
use crate::model::{BindSpec, Encode};

/// `None` after reporting when the field and the operation do not fit.
pub(super) fn rest_adapter(
    c: &mut Checker,
    subsystem: &str,
    op: &Operation,
    args: &[(String, String)],
    bind: &BTreeMap<String, BindSpec>,
    returns: &str,
    types: &[NamedType],
) -> Option<RestAdapter> {
    let before = c.diags.len();
    for name in bind.keys() {
        if !args.iter().any(|(a, _)| a == name) {
            c.err(format!("`bind` names no argument: `{name}`"));
        }
    }
    let body_schema = op.body.as_ref().map(|b| {
        let schema = types
            .iter()
            .find(|t| t.name == b.type_name)
            .map(|t| &t.schema);
        (b.type_name.as_str(), schema)
    });
    let mut path = Vec::new();
    let mut query = Vec::new();
    let mut whole: Option<(String, bool)> = None;
    let mut fields = Vec::new();
    let mut fed = BTreeSet::new();
    for (arg, ty) in args {
        let (key, json_text) = match bind.get(arg) {
            Some(BindSpec::To(to)) => (to.clone(), false),
            Some(BindSpec::Encoded { to, encode }) => (to.clone(), *encode == Encode::Json),
            None => (arg.to_snake_case(), false),
        };
        let non_null = ty.ends_with('!');
        let base = ty.trim_end_matches('!');
        if !fed.insert(key.clone()) {
            c.err(format!(
                "two arguments feed `{key}` of operation `{}`",
                op.id
            ));
            continue;
        }
        let binding = Binding {
            arg: arg.clone(),
            key: key.clone(),
            json_text,
        };
        if let Some(p) = op.path_params.iter().find(|p| p.name == key) {
            check_param(c, arg, ty, json_text, p, "path parameter");
            path.push(binding);
        } else if let Some(p) = op.query.iter().find(|p| p.name == key) {
            check_param(c, arg, ty, json_text, p, "query parameter");
            query.push(binding);
        } else if body_schema.is_some_and(|(t, _)| t == base) {
            if json_text {
                c.err(format!("argument `{arg}` is the body; it is not encoded"));
            }
            whole = Some((arg.clone(), !non_null));
        } else if let Some(prop) = body_schema
            .and_then(|(_, s)| s)
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(&key))
        {
            check_property(c, arg, ty, json_text, prop);
            fields.push(binding);
        } else {
            c.err(format!(
                "argument `{arg}` feeds no path parameter, query parameter or body property \
                 `{key}` of operation `{}`",
                op.id
            ));
        }
    }

    // What the operation needs and no argument gives.
    let nullable_args: BTreeSet<&str> = args
        .iter()
        .filter(|(_, t)| !t.ends_with('!'))
        .map(|(a, _)| a.as_str())
        .collect();
    let needed = |c: &mut Checker, p: &Param, bound: &[Binding], what: &str| {
        let required = p.required && p.default.is_none();
        match bound.iter().find(|b| b.key == p.name) {
            None if required => c.err(format!(
                "operation `{}` requires {what} `{}`; no argument feeds it (see `bind`)",
                op.id, p.name
            )),
            Some(b) if required && nullable_args.contains(b.arg.as_str()) => c.err(format!(
                "argument `{}` feeds the required {what} `{}`; make it non-null",
                b.arg, p.name
            )),
            _ => {}
        }
    };
    for p in &op.path_params {
        needed(c, p, &path, "path parameter");
    }
    for p in &op.query {
        needed(c, p, &query, "query parameter");
    }
    let body = match (body_schema, whole) {
        (None, _) => None,
        (Some((name, _)), Some((arg, nullable))) => {
            if !fields.is_empty() {
                c.err("an argument is the whole body; no other may feed one of its properties");
            }
            if nullable {
                required_properties(c, op, body_schema, &[], &nullable_args);
            }
            Some((name.to_string(), BodyFrom::Whole { arg, nullable }))
        }
        (Some((name, _)), None) => {
            required_properties(c, op, body_schema, &fields, &nullable_args);
            Some((name.to_string(), BodyFrom::Fields(fields)))
        }
    };

    // An unknown returned type is reported with the field.
    let known =
        types.iter().any(|t| t.name == returns) || super::GRAPHQL_SCALARS.contains(&returns);
    let empty_response = match (&op.response.type_name, &op.response.text) {
        _ if !known => false,
        (Some(t), _) if t == returns => false,
        (None, None) if returns == "Boolean" => true,
        (Some(t), _) => {
            c.err(format!(
                "returns `{returns}`, but operation `{}` answers `{t}`",
                op.id
            ));
            false
        }
        (None, Some(_)) => {
            c.err(format!(
                "operation `{}` answers text; a GraphQL field cannot mirror it",
                op.id
            ));
            false
        }
        (None, None) => {
            c.err(format!(
                "operation `{}` answers no content: the field returns `Boolean`",
                op.id
            ));
            false
        }
    };
    (c.diags.len() == before).then(|| RestAdapter {
        subsystem: subsystem.to_string(),
        operation: op.id.clone(),
        path: (!op.path_params.is_empty()).then_some(path),
        query: (!op.query.is_empty()).then_some(query),
        body,
        empty_response,
    })
}

/// Every required property of the body is fed by a non-null argument.
fn required_properties(
    c: &mut Checker,
    op: &Operation,
    body: Option<(&str, Option<&Value>)>,
    fields: &[Binding],
    nullable_args: &BTreeSet<&str>,
) {
    let Some((name, Some(schema))) = body else {
        return;
    };
    let required = schema.get("required").and_then(Value::as_array);
    for key in required.into_iter().flatten().filter_map(Value::as_str) {
        match fields.iter().find(|b| b.key == key) {
            None => c.err(format!(
                "the body `{name}` of operation `{}` requires `{key}`; no argument feeds it",
                op.id
            )),
            Some(b) if nullable_args.contains(b.arg.as_str()) => c.err(format!(
                "argument `{}` feeds the required `{key}` of `{name}`; make it non-null",
                b.arg
            )),
            Some(_) => {}
        }
    }
}

fn check_param(c: &mut Checker, arg: &str, ty: &str, json_text: bool, p: &Param, what: &str) {
    let base = ty.trim_end_matches('!');
    if json_text {
        if p.ty != ParamType::String {
            c.err(format!(
                "argument `{arg}` is encoded as JSON text; {what} `{}` is not a string",
                p.name
            ));
        }
        return;
    }
    let fits = match p.ty {
        ParamType::String => matches!(base, "String" | "ID"),
        ParamType::Integer => base == "Int",
        ParamType::Number => matches!(base, "Float" | "Int"),
        ParamType::Boolean => base == "Boolean",
    };
    if !fits {
        c.err(format!(
            "argument `{arg}: {ty}` does not fit {what} `{}` ({:?})",
            p.name, p.ty
        ));
    }
}

/// A body property's JSON Schema against the argument's GraphQL type; `JSON` takes anything.
fn check_property(c: &mut Checker, arg: &str, ty: &str, json_text: bool, prop: &Value) {
    let base = ty.trim_end_matches('!');
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let reference = prop.get("$ref").and_then(Value::as_str);
    let fits = if json_text {
        types.contains(&"string")
    } else if base == "JSON" || (types.is_empty() && reference.is_none()) {
        true
    } else if let Some(r) = reference {
        base == r
    } else if base.starts_with('[') {
        types.contains(&"array")
    } else {
        types.iter().any(|t| match *t {
            "string" => matches!(base, "String" | "ID"),
            "integer" => base == "Int",
            "number" => matches!(base, "Float" | "Int"),
            "boolean" => base == "Boolean",
            _ => false,
        })
    };
    if !fits {
        c.err(format!(
            "argument `{arg}: {ty}` does not fit the body property of type {types:?}"
        ));
    }
}
