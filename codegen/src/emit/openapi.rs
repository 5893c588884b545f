//! OpenAPI 3.0.3, written directly from the IR: the seed promises 3.0 and progenitor reads only
//! 3.0.x, so there is no 3.1 intermediate to down-convert (see docs/decisions/0001-openapi-pipeline.md).

use serde_json::{Map, Value, json};

use crate::emit::header;
use crate::ir::{Access, Api, Operation, Param, ParamType};
use crate::model::SecurityScheme;

/// The type every error response carries; `validate` makes sure it exists.
pub const ERROR_BODY: &str = "ErrorBody";

pub fn emit(api: &Api) -> String {
    let mut doc = Map::new();
    doc.insert("x-generated".into(), Value::String(header()));
    doc.insert("openapi".into(), json!("3.0.3"));
    let mut info = Map::new();
    info.insert("title".into(), json!(api.title));
    info.insert("version".into(), json!(api.version));
    if let Some(d) = &api.description {
        info.insert("description".into(), json!(d));
    }
    doc.insert("info".into(), Value::Object(info));
    doc.insert(
        "tags".into(),
        Value::Array(
            api.subsystems
                .iter()
                .map(|s| json!({"name": s.name, "description": s.description}))
                .collect(),
        ),
    );

    let mut paths = Map::new();
    for sub in &api.subsystems {
        for op in &sub.operations {
            let item = paths
                .entry(op.path.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(item) = item {
                item.insert(op.method.lower().into(), operation(api, &sub.name, op));
            }
        }
    }
    doc.insert("paths".into(), Value::Object(paths));

    let mut schemas = Map::new();
    for t in &api.types {
        schemas.insert(t.name.clone(), to_openapi_schema(&t.schema));
    }
    let mut responses = Map::new();
    for status in all_error_statuses(api) {
        responses.insert(
            error_response_name(status),
            json!({
                "description": reason(status),
                "content": {"application/json": {"schema": schema_ref(ERROR_BODY)}}
            }),
        );
    }
    let mut security = Map::new();
    for (name, scheme) in &api.security_schemes {
        security.insert(
            name.clone(),
            match scheme {
                SecurityScheme::Bearer {
                    description,
                    bearer_format,
                } => {
                    let mut m = Map::new();
                    m.insert("type".into(), json!("http"));
                    m.insert("scheme".into(), json!("bearer"));
                    if let Some(f) = bearer_format {
                        m.insert("bearerFormat".into(), json!(f));
                    }
                    m.insert("description".into(), json!(description));
                    Value::Object(m)
                }
                SecurityScheme::ApiKey {
                    description,
                    header,
                } => json!({"type": "apiKey", "in": "header", "name": header, "description": description}),
            },
        );
    }
    doc.insert(
        "components".into(),
        json!({"schemas": schemas, "responses": responses, "securitySchemes": security}),
    );
    let mut text = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
    text.push('\n');
    text
}

fn operation(api: &Api, tag: &str, op: &Operation) -> Value {
    let mut o = Map::new();
    o.insert("operationId".into(), json!(op.id));
    o.insert("tags".into(), json!([tag]));
    o.insert("summary".into(), json!(op.summary));
    if let Some(d) = &op.description {
        o.insert("description".into(), json!(d));
    }
    let params: Vec<Value> = op
        .path_params
        .iter()
        .map(|p| parameter(p, "path"))
        .chain(op.query.iter().map(|p| parameter(p, "query")))
        .collect();
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(b) = &op.body {
        let mut media = Map::new();
        media.insert("schema".into(), schema_ref(&b.type_name));
        if let Some(ex) = &op.request_example {
            media.insert("example".into(), ex.clone());
        }
        let mut body = Map::new();
        if let Some(d) = &b.description {
            body.insert("description".into(), json!(d));
        }
        body.insert("required".into(), json!(true));
        body.insert("content".into(), json!({"application/json": media}));
        o.insert("requestBody".into(), Value::Object(body));
    }
    let mut responses = Map::new();
    let mut ok = Map::new();
    ok.insert("description".into(), json!(op.response.description));
    if let Some(t) = &op.response.type_name {
        let mut media = Map::new();
        media.insert("schema".into(), schema_ref(t));
        if let Some(ex) = &op.response_example {
            media.insert("example".into(), ex.clone());
        }
        ok.insert("content".into(), json!({"application/json": media}));
    }
    if let Some(mt) = &op.response.text {
        ok.insert(
            "content".into(),
            json!({ mt.as_str(): {"schema": {"type": "string"}} }),
        );
    }
    responses.insert(op.response.status.to_string(), Value::Object(ok));
    for status in &op.errors {
        responses.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/{}", error_response_name(*status))}),
        );
    }
    o.insert("responses".into(), Value::Object(responses));
    let security: Vec<Value> = match &op.access {
        Access::Public => Vec::new(),
        Access::Authenticated | Access::Requires(_) => api
            .security_schemes
            .iter()
            .map(|(name, _)| json!({ name.clone(): [] }))
            .collect(),
    };
    o.insert("security".into(), Value::Array(security));
    o.insert("x-permission".into(), json!(op.access.label()));
    Value::Object(o)
}

fn parameter(p: &Param, location: &str) -> Value {
    let mut schema = Map::new();
    schema.insert(
        "type".into(),
        json!(match p.ty {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }),
    );
    if let Some(f) = &p.format {
        schema.insert("format".into(), json!(f));
    } else if p.ty == ParamType::Integer {
        schema.insert("format".into(), json!("int64"));
    }
    if let Some(e) = &p.enum_values {
        schema.insert("enum".into(), json!(e));
    }
    if let Some(m) = p.minimum {
        schema.insert("minimum".into(), json!(m));
    }
    if let Some(m) = p.maximum {
        schema.insert("maximum".into(), json!(m));
    }
    if let Some(d) = &p.default {
        schema.insert("default".into(), d.clone());
    }
    let mut out = Map::new();
    out.insert("name".into(), json!(p.name));
    out.insert("in".into(), json!(location));
    if let Some(d) = &p.description {
        out.insert("description".into(), json!(d));
    }
    out.insert("required".into(), json!(p.required));
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Draft-07 subset -> OpenAPI 3.0 schema object: `$ref: Name` becomes a component reference,
/// `type: [T, "null"]` becomes `type: T, nullable: true`.
pub fn to_openapi_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(name) = obj.get("$ref").and_then(Value::as_str) {
        return match obj.get("description") {
            Some(d) => json!({"description": d, "allOf": [schema_ref(name)]}),
            None => schema_ref(name),
        };
    }
    let mut out = Map::new();
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("type", Value::Array(ts)) => {
                if let Some(t) = ts.iter().find(|t| *t != "null") {
                    out.insert("type".into(), t.clone());
                }
                out.insert("nullable".into(), json!(true));
            }
            ("properties", Value::Object(props)) => {
                let props: Map<String, Value> = props
                    .iter()
                    .map(|(n, s)| (n.clone(), to_openapi_schema(s)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            ("items", s) | ("additionalProperties", s @ Value::Object(_)) => {
                out.insert(k.clone(), to_openapi_schema(s));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn all_error_statuses(api: &Api) -> Vec<u16> {
    let mut all: Vec<u16> = api
        .subsystems
        .iter()
        .flat_map(|s| s.operations.iter().flat_map(|o| o.errors.iter().copied()))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn error_response_name(status: u16) -> String {
    match reason(status) {
        "Client Error" | "Server Error" => format!("Status{status}"),
        r => r.replace([' ', '-'], ""),
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        423 => "Locked",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        s if s < 500 => "Client Error",
        _ => "Server Error",
    }
}
