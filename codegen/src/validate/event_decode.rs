//! A generated subscription source (`source: {topic, event, fields, filter}`): the returned
//! GraphQL type is checked against the event's own declared type, so the two cannot drift. Every
//! property of the returned type needs a field of the event (same name, or renamed in `fields`)
//! of a compatible type, present whenever the property is required; enums must agree, up to the
//! case of their values (mapped by the generated code). A property `timestamp` the event lacks
//! is the delivery time.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Checker;
use crate::ir::{EventDecode, EventFamily, FilterRule, NamedType};
use crate::model::{FilterSpec, SourceSpec};

/// `None` (after reporting) when the source is hand-written or invalid.
pub(super) fn event_decode(
    c: &mut Checker,
    source: &SourceSpec,
    returns: &str,
    args: &[(String, String)],
    events: &[EventFamily],
    types: &[NamedType],
) -> Option<EventDecode> {
    let Some(message_type) = &source.event else {
        if matches!(source.filter, FilterSpec::Rules(_)) {
            c.err("filter rules (`{eq: field}`, `{in: field}`) need `event`");
        }
        if !source.fields.is_empty() {
            c.err("`fields` needs `event`");
        }
        return None;
    };
    if source.topic.is_none() {
        c.err("`event` needs `topic`: a polled source decodes nothing");
        return None;
    }
    // An unknown topic is reported with the source's other checks.
    let family = events
        .iter()
        .find(|f| Some(&f.family) == source.topic.as_ref())?;
    let Some(message) = family
        .messages
        .iter()
        .find(|m| &m.message_type == message_type)
    else {
        c.err(format!(
            "`{message_type}` is not a message of the `{}` family",
            family.family
        ));
        return None;
    };
    let [variant] = message.variants.as_slice() else {
        c.err(format!(
            "`{message_type}` has variants: only a flat message decodes into one type"
        ));
        return None;
    };
    let event: BTreeMap<&str, (&Value, bool)> = variant
        .fields
        .iter()
        .map(|(name, schema)| {
            let required = variant.required.contains(name);
            (name.as_str(), (schema, required))
        })
        .collect();
    let Some((props, required)) = object_type(returns, types) else {
        c.err(format!(
            "`{returns}` has no properties to decode `{message_type}` into"
        ));
        return None;
    };

    let mut renames = Vec::new();
    for (prop, field) in &source.fields {
        let Some(field) = field.as_str() else {
            c.err(format!("`fields.{prop}` names an event field"));
            continue;
        };
        if !props.contains_key(prop) {
            c.err(format!(
                "`fields.{prop}`: `{returns}` has no property `{prop}`"
            ));
        }
        if !event.contains_key(field) {
            c.err(format!(
                "`fields.{prop}`: `{message_type}` has no field `{field}`"
            ));
        }
        renames.push((field.to_string(), prop.clone()));
    }
    let mut values = Vec::new();
    let mut stamped = false;
    for (prop, schema) in props {
        let field = renames
            .iter()
            .find(|(_, p)| p == prop)
            .map_or(prop.as_str(), |(f, _)| f.as_str());
        let Some((from, present)) = event.get(field) else {
            if prop == "timestamp" {
                stamped = true;
            } else {
                c.err(format!(
                    "`{returns}.{prop}` has no field in `{message_type}` (name one with `fields: {{{prop}: <event field>}}`)"
                ));
            }
            continue;
        };
        if required.contains(&prop.as_str()) && !present {
            c.err(format!(
                "`{returns}.{prop}` is required but `{message_type}.{field}` is optional"
            ));
        }
        match compatible(&shape(schema, types), &shape(from, types)) {
            Ok(mapped) => values.extend(mapped.into_iter().map(|(a, b)| (field.to_string(), a, b))),
            Err(why) => c.err(format!(
                "`{returns}.{prop}` cannot hold `{message_type}.{field}`: {why}"
            )),
        }
    }

    let mut filters = Vec::new();
    if let FilterSpec::Rules(rules) = &source.filter {
        for (arg, rule) in rules {
            if let Some(f) = filter_rule(c, arg, rule, args, &event, types) {
                filters.push(f);
            }
        }
    }
    Some(EventDecode {
        message_type: message_type.clone(),
        renames: renames.into_iter().filter(|(f, p)| f != p).collect(),
        values,
        stamped,
        filters,
    })
}

fn filter_rule(
    c: &mut Checker,
    arg: &str,
    rule: &Value,
    args: &[(String, String)],
    event: &BTreeMap<&str, (&Value, bool)>,
    types: &[NamedType],
) -> Option<FilterRule> {
    let Some((_, arg_type)) = args.iter().find(|(n, _)| n == arg) else {
        c.err(format!("filter `{arg}` is not an argument"));
        return None;
    };
    let rule = rule.as_object().filter(|r| r.len() == 1);
    let Some((op, field)) = rule.and_then(|r| r.iter().next()) else {
        c.err(format!(
            "filter `{arg}` is `{{eq: <event field>}}` or `{{in: <event field>}}`"
        ));
        return None;
    };
    let any_of = match op.as_str() {
        "eq" => false,
        "in" => true,
        other => {
            c.err(format!(
                "filter `{arg}`: unknown match `{other}` (eq or in)"
            ));
            return None;
        }
    };
    let list = arg_type.trim_end_matches('!').starts_with('[');
    if list != any_of {
        c.err(format!(
            "filter `{arg}`: `in` takes a list argument, `eq` a single value (`{arg}` is `{arg_type}`)"
        ));
    }
    let field = field.as_str().unwrap_or_default();
    let Some((schema, _)) = event.get(field) else {
        c.err(format!("filter `{arg}`: the event has no field `{field}`"));
        return None;
    };
    // An enum argument compares its values with the event's as they are spelled.
    let arg_base = arg_type.trim_matches(|ch| matches!(ch, '[' | ']' | '!'));
    if let (Some(wanted), Shape::Str(Some(have))) = (
        types
            .iter()
            .find(|t| t.name == arg_base)
            .and_then(|t| enum_values(&t.schema)),
        shape(schema, types),
    ) && let Some(v) = wanted.iter().find(|v| !have.contains(v))
    {
        c.err(format!(
            "filter `{arg}`: `{arg_base}` value `{v}` is not a value of the event's `{field}`"
        ));
    }
    Some(FilterRule {
        arg: arg.to_string(),
        field: field.to_string(),
        any_of,
    })
}

/// A named type's properties and required names, when it is an object type.
fn object_type<'a>(
    name: &str,
    types: &'a [NamedType],
) -> Option<(&'a Map<String, Value>, Vec<&'a str>)> {
    let t = types.iter().find(|t| t.name == name)?;
    let props = t.schema.get("properties")?.as_object()?;
    let required = t
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some((props, required))
}

/// What a JSON Schema holds, with `$ref`s resolved and `null` ignored (optionality is checked
/// separately).
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// A string, with its enum values when it has some.
    Str(Option<Vec<String>>),
    Int,
    Num,
    Bool,
    Array(Box<Shape>),
    Object,
    /// No type: any JSON.
    Any,
}

fn shape(schema: &Value, types: &[NamedType]) -> Shape {
    shape_at(schema, types, 0)
}

fn shape_at(schema: &Value, types: &[NamedType], depth: usize) -> Shape {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return match types.iter().find(|t| t.name == r) {
            Some(t) if depth < 16 => shape_at(&t.schema, types, depth + 1),
            _ => Shape::Any,
        };
    }
    let ty = match schema.get("type") {
        Some(Value::Array(ts)) => ts.iter().find(|t| *t != "null").cloned(),
        other => other.cloned(),
    };
    match ty.as_ref().and_then(Value::as_str) {
        Some("string") => Shape::Str(enum_values(schema)),
        Some("integer") => Shape::Int,
        Some("number") => Shape::Num,
        Some("boolean") => Shape::Bool,
        Some("array") => Shape::Array(Box::new(
            schema
                .get("items")
                .map_or(Shape::Any, |i| shape_at(i, types, depth + 1)),
        )),
        Some("object") => Shape::Object,
        _ if schema.get("properties").is_some() => Shape::Object,
        _ => Shape::Any,
    }
}

fn enum_values(schema: &Value) -> Option<Vec<String>> {
    schema.get("enum").and_then(Value::as_array).map(|vs| {
        vs.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

/// Whether a `target` property can hold every value of a `source` field; the event values whose
/// spelling differs in case, each with the returned value it maps to.
fn compatible(target: &Shape, source: &Shape) -> Result<Vec<(String, String)>, String> {
    match (target, source) {
        (Shape::Any, _) | (Shape::Str(None), Shape::Str(_)) => Ok(Vec::new()),
        (Shape::Int, Shape::Int)
        | (Shape::Num, Shape::Int | Shape::Num)
        | (Shape::Bool, Shape::Bool)
        | (Shape::Object, Shape::Object) => Ok(Vec::new()),
        (Shape::Str(Some(_)), Shape::Str(None)) => {
            Err("the event's field is free text, the property an enum".into())
        }
        (Shape::Str(Some(to)), Shape::Str(Some(from))) => {
            let mut mapped = Vec::new();
            for v in from {
                if to.contains(v) {
                    continue;
                }
                match to.iter().find(|t| t.eq_ignore_ascii_case(v)) {
                    Some(t) => mapped.push((v.clone(), t.clone())),
                    None => return Err(format!("the event's value `{v}` has no counterpart")),
                }
            }
            Ok(mapped)
        }
        (Shape::Array(t), Shape::Array(s)) => match compatible(t, s)? {
            m if m.is_empty() => Ok(m),
            _ => Err("enum values inside a list differ in case".into()),
        },
        (t, s) => Err(format!("{} vs {}", describe(t), describe(s))),
    }
}

fn describe(s: &Shape) -> &'static str {
    match s {
        Shape::Str(None) => "a string",
        Shape::Str(Some(_)) => "an enum",
        Shape::Int => "an integer",
        Shape::Num => "a number",
        Shape::Bool => "a boolean",
        Shape::Array(_) => "a list",
        Shape::Object => "an object",
        Shape::Any => "untyped JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[&str]) -> Shape {
        Shape::Str(Some(values.iter().map(|v| v.to_string()).collect()))
    }

    #[test]
    fn enums_agree_up_to_case_and_the_differences_are_mapped() {
        assert_eq!(
            compatible(
                &s(&["DEFERRED", "IMMEDIATE"]),
                &s(&["deferred", "IMMEDIATE"])
            ),
            Ok(vec![("deferred".into(), "DEFERRED".into())])
        );
        assert!(compatible(&s(&["A"]), &s(&["A", "B"])).is_err());
        assert!(compatible(&s(&["A"]), &Shape::Str(None)).is_err());
        assert_eq!(compatible(&Shape::Str(None), &s(&["x"])), Ok(vec![]));
    }

    #[test]
    fn numbers_widen_but_nothing_else_does() {
        assert!(compatible(&Shape::Num, &Shape::Int).is_ok());
        assert!(compatible(&Shape::Int, &Shape::Num).is_err());
        assert!(compatible(&Shape::Bool, &Shape::Str(None)).is_err());
        assert!(compatible(&Shape::Object, &Shape::Any).is_err());
        assert!(
            compatible(
                &Shape::Array(Box::new(Shape::Object)),
                &Shape::Array(Box::new(Shape::Object))
            )
            .is_ok()
        );
    }
}
