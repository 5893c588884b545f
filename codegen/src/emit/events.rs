//! `events.schema.json`: a draft-07 schema of every WebSocket message, envelope included, with the
//! `data` shape each encoding puts on the wire.

use serde_json::{Map, Value, json};

use crate::emit::header;
use crate::ir::{Api, Encoding, Variant};

pub fn emit(api: &Api) -> String {
    let mut defs = Map::new();
    let mut one_of = Vec::new();
    for family in &api.events {
        for m in &family.messages {
            let data = match m.encoding {
                Encoding::Flat => variant_object(&m.variants[0], None),
                Encoding::ExternallyTagged => json!({
                    "oneOf": m.variants.iter().map(|v| json!({
                        "type": "object",
                        "required": [v.name],
                        "additionalProperties": false,
                        "properties": { v.name.clone(): variant_object(v, None) }
                    })).collect::<Vec<_>>()
                }),
                Encoding::EventTypeTagged => json!({
                    "oneOf": m.variants.iter().map(|v| variant_object(v, Some(&v.name))).collect::<Vec<_>>()
                }),
            };
            let mut def = Map::new();
            if let Some(d) = &m.description {
                def.insert("description".into(), json!(d));
            }
            def.insert("x-family".into(), json!(family.family));
            def.insert("x-permission".into(), json!(family.access.label()));
            def.insert("type".into(), json!("object"));
            def.insert(
                "required".into(),
                json!(["message_type", "data", "timestamp"]),
            );
            def.insert(
                "properties".into(),
                json!({
                    "message_type": {"const": m.message_type},
                    "data": data,
                    "timestamp": {"type": "integer", "description": "Unix seconds"},
                    "topic": {"type": "string", "description": "The event family (bus topic)"},
                    "sequence": {"type": "integer", "description": "Per-topic sequence number, from 1"}
                }),
            );
            one_of.push(json!({"$ref": format!("#/definitions/{}", m.message_type)}));
            defs.insert(m.message_type.clone(), Value::Object(def));
        }
    }
    // Named types the messages reference, transitively; REST-only types stay out.
    let mut wanted: Vec<String> = Vec::new();
    for family in &api.events {
        for m in &family.messages {
            for v in &m.variants {
                for (_, schema) in &v.fields {
                    collect_refs(schema, &mut wanted);
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = wanted.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(t) = api.types.iter().find(|t| t.name == name) {
            collect_refs(&t.schema, &mut wanted);
        }
    }
    for t in api.types.iter().filter(|t| seen.contains(&t.name)) {
        defs.insert(t.name.clone(), draft07(&t.schema));
    }
    let mut doc = Map::new();
    doc.insert("$comment".into(), json!(header()));
    doc.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    doc.insert(
        "title".into(),
        json!(format!("{} event messages", api.title)),
    );
    if !one_of.is_empty() {
        doc.insert("oneOf".into(), Value::Array(one_of));
    }
    doc.insert("definitions".into(), Value::Object(defs));
    let mut text = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
    text.push('\n');
    text
}

fn variant_object(v: &Variant, tag: Option<&str>) -> Value {
    let mut props = Map::new();
    let mut required: Vec<Value> = Vec::new();
    if let Some(tag) = tag {
        props.insert("event_type".into(), json!({"const": tag}));
        required.push(json!("event_type"));
    }
    for (name, schema) in &v.fields {
        props.insert(name.clone(), draft07(schema));
    }
    required.extend(v.required.iter().map(|r| json!(r)));
    json!({"type": "object", "required": required, "properties": props})
}

/// Short `$ref: Name` -> `#/definitions/Name`; `example` is OpenAPI's, not draft-07's.
pub fn draft07(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                match k.as_str() {
                    "$ref" => {
                        let name = v.as_str().unwrap_or_default();
                        out.insert(k.clone(), json!(format!("#/definitions/{name}")));
                    }
                    "example" => {}
                    "properties" => {
                        let props = v
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), draft07(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" => {
                        out.insert(k.clone(), draft07(v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    let Value::Object(obj) = schema else { return };
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("$ref", Value::String(name)) => out.push(name.clone()),
            ("properties", Value::Object(props)) => {
                props.values().for_each(|p| collect_refs(p, out))
            }
            ("items" | "additionalProperties", v) => collect_refs(v, out),
            _ => {}
        }
    }
}
