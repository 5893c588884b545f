//! The Python SDK's generated sources: `sdk/python/rustydb_client/_generated/{models,events,client}.py`.
//! The hand-written rest of the package (transport, errors, WebSocket client) imports them.

use std::collections::HashMap;

use heck::ToSnakeCase;
use serde_json::Value;

use super::{Ctx, Lang, ParamCtx, doc_lines, indent_arg, schema_types, upper_camel};
use crate::error::Result;
use crate::ir::Api;

/// Where the files go, relative to `sdk/`.
const DIR: &str = "python/rustydb_client/_generated";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../templates/python/__init__.py.tera"),
    ),
    (
        "models.py",
        include_str!("../../../templates/python/models.py.tera"),
    ),
    (
        "events.py",
        include_str!("../../../templates/python/events.py.tera"),
    ),
    (
        "client.py",
        include_str!("../../../templates/python/client.py.tera"),
    ),
];

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Parameter names the generated methods use themselves.
const TAKEN: &[&str] = &["self", "body", "m", "result"];

/// `refs` prefixes named types: `""` inside models.py, `"m."` where models is imported as `m`.
pub struct Python {
    refs: &'static str,
}

impl Lang for Python {
    fn ty(&self, schema: &Value) -> String {
        py_type(schema, self.refs)
    }

    fn type_name(&self, name: &str) -> String {
        upper_camel(name)
    }

    fn method_name(&self, op_id: &str) -> String {
        ident(&op_id.to_snake_case())
    }

    fn param_name(&self, name: &str) -> String {
        ident(&name.to_snake_case())
    }

    fn path_expr(&self, path: &str, params: &[ParamCtx]) -> String {
        let mut out = path
            .replace('{', "{{")
            .replace('}', "}}")
            .replace('"', "\\\"");
        for p in params {
            out = out.replace(
                &format!("{{{{{}}}}}", p.wire),
                &format!("{{_segment({})}}", p.ident),
            );
        }
        format!("f\"{out}\"")
    }

    fn plain_key(&self, key: &str) -> bool {
        is_ident(key) && !KEYWORDS.contains(&key)
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn ident(name: &str) -> String {
    let name = if name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_string()
    };
    if KEYWORDS.contains(&name.as_str()) || TAKEN.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

fn py_type(schema: &Value, refs: &str) -> String {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        return format!("{refs}{}", upper_camel(name));
    }
    if let Some(c) = schema.get("const") {
        return format!("_t.Literal[{c}]");
    }
    let types = schema_types(schema);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let literals: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(Value::to_string)
            .collect();
        let mut out = format!("_t.Literal[{}]", literals.join(", "));
        if types.contains(&"null") || values.contains(&Value::Null) {
            out.push_str(" | None");
        }
        return out;
    }
    if types.is_empty() {
        return "_t.Any".into();
    }
    let parts: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => "str".to_string(),
            "integer" => "int".to_string(),
            "number" => "float".to_string(),
            "boolean" => "bool".to_string(),
            "null" => "None".to_string(),
            "array" => {
                let item = schema
                    .get("items")
                    .map(|i| py_type(i, refs))
                    .unwrap_or("_t.Any".into());
                format!("list[{item}]")
            }
            "object" => match schema.get("additionalProperties") {
                Some(Value::Object(o)) if !o.is_empty() && schema.get("properties").is_none() => {
                    format!("dict[str, {}]", py_type(&Value::Object(o.clone()), refs))
                }
                _ => "dict[str, _t.Any]".to_string(),
            },
            _ => "_t.Any".to_string(),
        })
        .collect();
    parts.join(" | ")
}

/// `{{ text | pydoc(indent=4) }}`: a docstring, quotes and backslashes defused.
fn pydoc(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let pad = " ".repeat(indent_arg(args));
    let text = value
        .as_str()
        .unwrap_or_default()
        .replace('\\', "\\\\")
        .replace("\"\"\"", "\\\"\\\"\\\"");
    let lines = doc_lines(&text);
    let mut out = String::new();
    match lines.as_slice() {
        [] => {}
        [one] => out.push_str(&format!("{pad}\"\"\"{one}\"\"\"\n")),
        [first, rest @ ..] => {
            out.push_str(&format!("{pad}\"\"\"{first}\n"));
            for l in rest {
                if l.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("{pad}{l}\n"));
                }
            }
            out.push_str(&format!("{pad}\"\"\"\n"));
        }
    }
    Ok(Value::from(out))
}

/// `{{ ty | pystr }}`: a type as a string literal (the functional TypedDict form).
fn pystr(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::from(
        serde_json::to_string(value.as_str().unwrap_or_default()).unwrap_or_default(),
    ))
}

pub fn emit(api: &Api) -> Result<Vec<(String, String)>> {
    let mut ctx: Ctx = super::context(api, &Python { refs: "" });
    // Messages and operations live outside models.py and reach its types through `m.`.
    let qualified = super::context(api, &Python { refs: "m." });
    ctx.messages = qualified.messages;
    ctx.operations = qualified.operations;
    let files = super::render(TEMPLATES, &ctx, &[("pydoc", pydoc), ("pystr", pystr)])?;
    Ok(files
        .into_iter()
        .map(|(name, text)| (format!("{DIR}/{name}"), tidy(&text)))
        .collect())
}

/// At most two blank lines in a row and none at the end, as PEP 8 has it; the templates stay
/// readable instead of fighting tera's whitespace control.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 2 {
                continue;
            }
            out.push('\n');
        } else {
            blank = 0;
            out.push_str(line);
            out.push('\n');
        }
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_to_python() {
        assert_eq!(
            py_type(&json!({"type": ["string", "null"]}), ""),
            "str | None"
        );
        assert_eq!(
            py_type(&json!({"type": "string", "enum": ["A", "B"]}), ""),
            "_t.Literal[\"A\", \"B\"]"
        );
        assert_eq!(
            py_type(
                &json!({"type": "array", "items": {"$ref": "io_stats"}}),
                "m."
            ),
            "list[m.IoStats]"
        );
        assert_eq!(
            py_type(
                &json!({"type": "object", "additionalProperties": {"type": "integer"}}),
                ""
            ),
            "dict[str, int]"
        );
        assert_eq!(py_type(&json!({"description": "anything"}), ""), "_t.Any");
        let py = Python { refs: "" };
        assert_eq!(py.param_name("from"), "from_");
        assert!(!py.plain_key("from"));
        assert!(!py.plain_key("page-size"));
        assert!(py.plain_key("match"));
    }
}
