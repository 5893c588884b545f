//! The TypeScript SDK's generated sources: `sdk/typescript/src/generated/{types,events,client}.ts`.
//! The hand-written rest of the package (transport, errors, WebSocket client) imports them.

use std::collections::HashMap;

use heck::ToLowerCamelCase;
use serde_json::Value;

use super::{Ctx, Lang, ParamCtx, doc_lines, indent_arg, schema_types, upper_camel};
use crate::error::Result;
use crate::ir::Api;

/// Where the files go, relative to `sdk/`.
const DIR: &str = "typescript/src/generated";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "types.ts",
        include_str!("../../../templates/typescript/types.ts.tera"),
    ),
    (
        "events.ts",
        include_str!("../../../templates/typescript/events.ts.tera"),
    ),
    (
        "client.ts",
        include_str!("../../../templates/typescript/client.ts.tera"),
    ),
];

/// Words a parameter may not be called in strict-mode ECMAScript.
const RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "await",
    "arguments",
    "eval",
    // Names the generated methods use themselves.
    "body",
    "query",
    "options",
];

/// `refs` prefixes named types: `""` inside types.ts, `"T."` where types.ts is imported as `T`.
pub struct TypeScript {
    refs: &'static str,
}

impl Lang for TypeScript {
    fn ty(&self, schema: &Value) -> String {
        ts_type(schema, self.refs)
    }

    fn type_name(&self, name: &str) -> String {
        upper_camel(name)
    }

    fn method_name(&self, op_id: &str) -> String {
        ident(&op_id.to_lower_camel_case())
    }

    fn param_name(&self, name: &str) -> String {
        ident(&name.to_lower_camel_case())
    }

    fn path_expr(&self, path: &str, params: &[ParamCtx]) -> String {
        let mut out = path.replace('`', "\\`").replace("${", "\\${");
        for p in params {
            out = out.replace(
                &format!("{{{}}}", p.wire),
                &format!("${{encodeURIComponent(String({}))}}", p.ident),
            );
        }
        format!("`{out}`")
    }
}

fn ident(name: &str) -> String {
    let name = if name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_string()
    };
    if RESERVED.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A property key: bare when it is an identifier, quoted otherwise.
fn key(name: &str) -> String {
    if is_ident(name) {
        name.to_string()
    } else {
        serde_json::to_string(name).unwrap_or_default()
    }
}

fn ts_type(schema: &Value, refs: &str) -> String {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        return format!("{refs}{}", upper_camel(name));
    }
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let mut parts: Vec<String> = values.iter().map(Value::to_string).collect();
        if schema_types(schema).contains(&"null") && !values.contains(&Value::Null) {
            parts.push("null".into());
        }
        return parts.join(" | ");
    }
    let types = schema_types(schema);
    if types.is_empty() {
        return "unknown".into();
    }
    let parts: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => "string".to_string(),
            "integer" | "number" => "number".to_string(),
            "boolean" => "boolean".to_string(),
            "null" => "null".to_string(),
            "array" => {
                let item = schema
                    .get("items")
                    .map(|i| ts_type(i, refs))
                    .unwrap_or("unknown".into());
                format!("Array<{item}>")
            }
            "object" => object_type(schema, refs),
            _ => "unknown".to_string(),
        })
        .collect();
    parts.join(" | ")
}

/// An inline object type: declared properties, or a string-keyed map.
fn object_type(schema: &Value, refs: &str) -> String {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields: Vec<String> = props
            .iter()
            .map(|(n, s)| {
                let opt = if required.contains(&n.as_str()) {
                    ""
                } else {
                    "?"
                };
                format!("{}{opt}: {}", key(n), ts_type(s, refs))
            })
            .collect();
        return format!("{{ {} }}", fields.join("; "));
    }
    let value = match schema.get("additionalProperties") {
        Some(Value::Object(o)) if !o.is_empty() => ts_type(&Value::Object(o.clone()), refs),
        _ => "unknown".into(),
    };
    format!("{{ [key: string]: {value} }}")
}

/// `{{ text | jsdoc(indent=2) }}`: a `/** ... */` block, `*/` defused.
fn jsdoc(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let pad = " ".repeat(indent_arg(args));
    let text = value.as_str().unwrap_or_default().replace("*/", "*\\/");
    let lines = doc_lines(&text);
    if lines.is_empty() {
        return Ok(Value::from(""));
    }
    let mut out = format!("{pad}/**\n");
    for l in lines {
        if l.is_empty() {
            out.push_str(&format!("{pad} *\n"));
        } else {
            out.push_str(&format!("{pad} * {l}\n"));
        }
    }
    out.push_str(&format!("{pad} */\n"));
    Ok(Value::from(out))
}

/// `{{ name | key }}`: a property key, quoted when it is not an identifier.
fn key_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::from(key(value.as_str().unwrap_or_default())))
}

pub fn emit(api: &Api) -> Result<Vec<(String, String)>> {
    let mut ctx: Ctx = super::context(api, &TypeScript { refs: "" });
    // Messages and operations live outside types.ts and reach its types through `T.`.
    let qualified = super::context(api, &TypeScript { refs: "T." });
    ctx.messages = qualified.messages;
    ctx.operations = qualified.operations;
    let files = super::render(TEMPLATES, &ctx, &[("jsdoc", jsdoc), ("key", key_filter)])?;
    Ok(files
        .into_iter()
        .map(|(name, text)| (format!("{DIR}/{name}"), text))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_to_typescript() {
        assert_eq!(
            ts_type(&json!({"type": ["string", "null"]}), ""),
            "string | null"
        );
        assert_eq!(
            ts_type(&json!({"type": "string", "enum": ["A", "B"]}), ""),
            "\"A\" | \"B\""
        );
        assert_eq!(
            ts_type(
                &json!({"type": "array", "items": {"$ref": "io_stats"}}),
                "T."
            ),
            "Array<T.IoStats>"
        );
        assert_eq!(
            ts_type(&json!({"type": "object", "additionalProperties": {}}), ""),
            "{ [key: string]: unknown }"
        );
        assert_eq!(
            ts_type(
                &json!({"type": "object", "properties": {"a-b": {"type": "integer"}}, "required": ["a-b"]}),
                ""
            ),
            "{ \"a-b\": number }"
        );
        assert_eq!(ts_type(&json!({"description": "anything"}), ""), "unknown");
        assert_eq!(TypeScript { refs: "" }.param_name("default"), "default_");
        assert_eq!(TypeScript { refs: "" }.method_name("list_rows"), "listRows");
    }
}
