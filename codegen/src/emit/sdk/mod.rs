//! Client SDK sources (TypeScript, Python) rendered with tera from one language-neutral context
//! built from the IR. Each language supplies a [`Lang`]: how a JSON Schema becomes a type and how
//! a schema name becomes an identifier. The templates live in `codegen/templates/` and are
//! embedded, so the generator needs no files at run time.

pub mod python;
pub mod typescript;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::emit::header;
use crate::error::{CodegenError, Result};
use crate::ir::{Access, Api, Encoding, Param, ParamType, Variant};
use crate::naming;

/// What a target language decides; everything else is shared.
pub trait Lang {
    /// The type expression for a JSON Schema (`$ref: Name` short references).
    fn ty(&self, schema: &Value) -> String;
    /// A named type's identifier.
    fn type_name(&self, name: &str) -> String;
    /// An operation's method name.
    fn method_name(&self, op_id: &str) -> String;
    /// A parameter's identifier.
    fn param_name(&self, name: &str) -> String;
    /// The expression building an operation path, `{param}` segments URL-encoded.
    fn path_expr(&self, path: &str, params: &[ParamCtx]) -> String;
    /// Whether a property key can be written as a plain field name (Python's class-syntax
    /// TypedDict cannot hold keywords or non-identifiers).
    fn plain_key(&self, _key: &str) -> bool {
        true
    }
    /// A string literal.
    fn string_lit(&self, s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
pub struct Ctx {
    pub header: String,
    pub title: String,
    pub version: String,
    pub types: Vec<TypeCtx>,
    pub operations: Vec<OpCtx>,
    pub messages: Vec<MsgCtx>,
    pub topics: Vec<TopicCtx>,
    pub websockets: Vec<WsCtx>,
}

#[derive(Debug, Serialize)]
pub struct TypeCtx {
    pub name: String,
    pub wire_name: String,
    pub description: Option<String>,
    /// An object with declared properties; otherwise `alias` holds the type expression.
    pub fields: Option<Vec<FieldCtx>>,
    pub alias: Option<String>,
    /// Every field key is a plain field name in the language.
    pub plain_keys: bool,
}

#[derive(Debug, Serialize)]
pub struct FieldCtx {
    /// The name on the wire.
    pub key: String,
    /// The key as the language writes it (quoted when not an identifier).
    pub key_lit: String,
    pub ty: String,
    pub required: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamCtx {
    pub wire: String,
    pub wire_lit: String,
    pub ident: String,
    pub ty: String,
    pub required: bool,
    pub description: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OpCtx {
    pub id: String,
    pub method_name: String,
    pub http_method: String,
    pub path: String,
    pub path_expr: String,
    pub summary: String,
    pub description: Option<String>,
    pub permission: String,
    /// Sends credentials (every operation that is not public).
    pub auth: bool,
    pub path_params: Vec<ParamCtx>,
    pub query: Vec<ParamCtx>,
    pub query_required: bool,
    pub body_ty: Option<String>,
    pub response_ty: Option<String>,
    /// The body is text (`GET /metrics`), handed back as a string.
    pub response_text: bool,
    pub status: u16,
    pub errors: Vec<u16>,
}

#[derive(Debug, Serialize)]
pub struct MsgCtx {
    pub message_type: String,
    pub message_type_lit: String,
    /// The message's type (`TableModifiedMessage`).
    pub type_name: String,
    /// The type of its `data` (`TableModifiedData`).
    pub data_name: String,
    pub description: Option<String>,
    pub family: String,
    /// `None` for protocol messages, which have no topic or sequence.
    pub topic: Option<String>,
    pub encoding: &'static str,
    pub variants: Vec<VariantCtx>,
}

#[derive(Debug, Serialize)]
pub struct VariantCtx {
    pub name: String,
    pub name_lit: String,
    /// The variant's own type; for a flat message, the data type.
    pub type_name: String,
    pub fields: Vec<FieldCtx>,
    pub plain_keys: bool,
}

#[derive(Debug, Serialize)]
pub struct TopicCtx {
    pub name: String,
    pub name_lit: String,
    pub permission: String,
    pub message_types: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct WsCtx {
    pub id: String,
    pub path: String,
    pub summary: String,
    pub permission: String,
    pub topics: Vec<String>,
}

pub fn context(api: &Api, lang: &dyn Lang) -> Ctx {
    let types = api
        .types
        .iter()
        .map(|t| {
            let description = t
                .schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            let has_props = t.schema.get("properties").is_some_and(Value::is_object);
            let fields = has_props.then(|| object_fields(&t.schema, lang));
            TypeCtx {
                plain_keys: fields.iter().flatten().all(|f| lang.plain_key(&f.key)),
                name: lang.type_name(&t.name),
                wire_name: t.name.clone(),
                description,
                fields,
                alias: (!has_props).then(|| lang.ty(&t.schema)),
            }
        })
        .collect();

    let mut operations: Vec<OpCtx> = api
        .subsystems
        .iter()
        .flat_map(|s| s.operations.iter())
        .map(|op| {
            let mut path_params: Vec<ParamCtx> =
                op.path_params.iter().map(|p| param(p, lang)).collect();
            let mut query: Vec<ParamCtx> = op.query.iter().map(|p| param(p, lang)).collect();
            unique_idents(&mut path_params, &mut query);
            OpCtx {
                id: op.id.clone(),
                method_name: lang.method_name(&op.id),
                http_method: op.method.as_str().to_string(),
                path: op.path.clone(),
                path_expr: lang.path_expr(&op.path, &path_params),
                summary: op.summary.clone(),
                description: op.description.clone(),
                permission: op.access.label().to_string(),
                auth: op.access != Access::Public,
                query_required: query.iter().any(|q| q.required),
                path_params,
                query,
                body_ty: op.body.as_ref().map(|b| lang.type_name(&b.type_name)),
                response_ty: op.response.type_name.as_ref().map(|t| lang.type_name(t)),
                response_text: op.response.text.is_some(),
                status: op.response.status,
                errors: op.errors.clone(),
            }
        })
        .collect();
    // By path then method, like the OpenAPI document, so a reader finds a route quickly.
    operations.sort_by(|a, b| (&a.path, &a.http_method).cmp(&(&b.path, &b.http_method)));

    let mut messages = Vec::new();
    let mut topics = Vec::new();
    for family in &api.events {
        for m in &family.messages {
            let base = lang.type_name(&m.message_type);
            let data_name = format!("{base}Data");
            let variants = match m.encoding {
                Encoding::Flat => vec![variant(&m.variants[0], data_name.clone(), lang)],
                _ => m
                    .variants
                    .iter()
                    .map(|v| variant(v, format!("{base}{}", lang.type_name(&v.name)), lang))
                    .collect(),
            };
            messages.push(MsgCtx {
                message_type: m.message_type.clone(),
                message_type_lit: lang.string_lit(&m.message_type),
                type_name: format!("{base}Message"),
                data_name,
                description: m.description.clone(),
                family: family.family.clone(),
                topic: (!family.protocol).then(|| family.family.clone()),
                encoding: match m.encoding {
                    Encoding::Flat => "flat",
                    Encoding::ExternallyTagged => "externally_tagged",
                    Encoding::EventTypeTagged => "event_type_tagged",
                },
                variants,
            });
        }
        if !family.protocol {
            topics.push(TopicCtx {
                name: family.family.clone(),
                name_lit: lang.string_lit(&family.family),
                permission: family.access.label().to_string(),
                message_types: family
                    .messages
                    .iter()
                    .map(|m| m.message_type.clone())
                    .collect(),
            });
        }
    }

    let websockets = api
        .websockets
        .iter()
        .map(|w| WsCtx {
            id: w.id.clone(),
            path: w.path.clone(),
            summary: w.summary.clone(),
            permission: w.access.label().to_string(),
            topics: w.topics.clone(),
        })
        .collect();

    Ctx {
        header: header(),
        title: api.title.clone(),
        version: api.version.clone(),
        types,
        operations,
        messages,
        topics,
        websockets,
    }
}

fn variant(v: &Variant, type_name: String, lang: &dyn Lang) -> VariantCtx {
    let fields: Vec<FieldCtx> = v
        .fields
        .iter()
        .map(|(name, schema)| field(name, schema, v.required.contains(name), lang))
        .collect();
    VariantCtx {
        name: v.name.clone(),
        name_lit: lang.string_lit(&v.name),
        type_name,
        plain_keys: fields.iter().all(|f| lang.plain_key(&f.key)) && lang.plain_key("event_type"),
        fields,
    }
}

/// The declared properties of an object schema, in declared order.
pub fn object_fields(schema: &Value, lang: &dyn Lang) -> Vec<FieldCtx> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| field(name, s, required.contains(&name.as_str()), lang))
                .collect()
        })
        .unwrap_or_default()
}

fn field(name: &str, schema: &Value, required: bool, lang: &dyn Lang) -> FieldCtx {
    FieldCtx {
        key: name.to_string(),
        key_lit: lang.string_lit(name),
        ty: lang.ty(schema),
        required,
        description: schema
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn param(p: &Param, lang: &dyn Lang) -> ParamCtx {
    let mut schema = serde_json::Map::new();
    let ty = match p.ty {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
    };
    schema.insert("type".into(), Value::from(ty));
    if let Some(values) = &p.enum_values {
        schema.insert("enum".into(), Value::from(values.clone()));
    }
    ParamCtx {
        wire: p.name.clone(),
        wire_lit: lang.string_lit(&p.name),
        ident: lang.param_name(&p.name),
        ty: lang.ty(&Value::Object(schema)),
        required: p.required,
        description: p.description.clone(),
    }
}

/// Two parameters whose names escape to one identifier (`self` and `Self`) get `_2`, `_3`...
fn unique_idents(path: &mut [ParamCtx], query: &mut [ParamCtx]) {
    let mut seen = std::collections::BTreeSet::new();
    for p in path.iter_mut().chain(query.iter_mut()) {
        let mut ident = p.ident.clone();
        let mut n = 2;
        while !seen.insert(ident.clone()) {
            ident = format!("{}_{n}", p.ident);
            n += 1;
        }
        p.ident = ident;
    }
}

/// The `type` keyword as a list (`type: [string, "null"]` or `type: string`); empty when absent.
pub fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The type name shared by both languages: UpperCamelCase, without Rust's raw prefix.
pub fn upper_camel(name: &str) -> String {
    naming::bare(&naming::camel_ident(name)).to_string()
}

/// A tera filter: the value and the named arguments.
pub type Filter = fn(&Value, &HashMap<String, Value>) -> tera::Result<Value>;

/// Renders templates (name, source) with the context; returns each output by template name.
pub fn render(
    templates: &[(&'static str, &'static str)],
    ctx: &Ctx,
    filters: &[(&'static str, Filter)],
) -> Result<Vec<(&'static str, String)>> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.add_raw_templates(templates.to_vec())
        .map_err(|e| CodegenError::Template(render_error(&e)))?;
    for (name, f) in filters {
        tera.register_filter(name, *f);
    }
    let context =
        tera::Context::from_serialize(ctx).map_err(|e| CodegenError::Template(render_error(&e)))?;
    templates
        .iter()
        .map(|(name, _)| {
            tera.render(name, &context)
                .map(|text| (*name, text))
                .map_err(|e| CodegenError::Template(format!("{name}: {}", render_error(&e))))
        })
        .collect()
}

/// tera nests the useful message in the error's sources.
fn render_error(e: &tera::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// A doc comment's lines, for templates that prefix each line themselves.
pub fn doc_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim_end().to_string()).collect()
}

/// Filter argument `indent` (spaces), 0 when absent.
pub fn indent_arg(args: &HashMap<String, Value>) -> usize {
    args.get("indent")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}
