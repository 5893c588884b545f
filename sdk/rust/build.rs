//! Generates, at build time, from the committed documents of `generated/`:
//! - the REST client, by progenitor (builder style) from `openapi.json` -> `$OUT_DIR/rest.rs`;
//! - the WebSocket message types, by typify (the version progenitor itself uses) from
//!   `events.schema.json` -> `$OUT_DIR/events.rs`.
//!
//! Running the generators here rather than committing their output means the SDK always matches
//! `generated/`: there is nothing that can drift. `tests/generated.rs` pins the output with insta
//! snapshots, so a change in what is generated shows up in review.

use std::path::{Path, PathBuf};

fn main() {
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../generated");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    write(
        &out.join("rest.rs"),
        rest_client(&generated.join("openapi.json")),
    );
    write(
        &out.join("events.rs"),
        event_types(&generated.join("events.schema.json")),
    );
}

fn rest_client(spec_path: &Path) -> proc_macro2::TokenStream {
    let spec: openapiv3::OpenAPI = read_json(spec_path);
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        // Every request passes through the session (src/session.rs): `ClientHooks` adds the bearer
        // token, and retries once with fresh tokens after a 401.
        .with_inner_type(quote("crate::session::Session"))
        .with_hooks(progenitor::HooksMode::Expected);
    progenitor::Generator::new(&settings)
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor on {}: {e}", spec_path.display()))
}

fn event_types(schema_path: &Path) -> proc_macro2::TokenStream {
    let schema: serde_json::Value = read_json(schema_path);
    let schema: schemars::schema::RootSchema = serde_json::from_value(split_envelope(schema))
        .unwrap_or_else(|e| panic!("{} is not a JSON schema: {e}", schema_path.display()));
    let mut settings = typify::TypeSpaceSettings::default();
    settings.with_struct_builder(false);
    let mut types = typify::TypeSpace::new(&settings);
    types
        .add_root_schema(schema)
        .unwrap_or_else(|e| panic!("typify on {}: {e}", schema_path.display()));
    types.to_stream()
}

/// Reshapes the event schema so typify generates what the SDK hands out: each message
/// definition `{message_type: {const}, data, timestamp, topic?, sequence?}` becomes its `data`
/// schema under the same name (so `table_modified` is the struct `TableModified` of the
/// change), and the root becomes `Event`, a `oneOf` of `{message_type: {enum: [..]}, data}`,
/// which typify turns into an enum tagged by `message_type` with its content in `data`. The
/// envelope (`timestamp`, `topic`, `sequence`) is the same for every message and is read by hand
/// (src/events.rs). typify 0.8 ignores `const`, hence the one-value `enum`.
fn split_envelope(mut schema: serde_json::Value) -> serde_json::Value {
    use serde_json::{Value, json};
    let definitions = schema["definitions"]
        .as_object_mut()
        .expect("events.schema.json has definitions");
    let mut variants = Vec::new();
    for (name, definition) in definitions.iter_mut() {
        let Some(message_type) = definition
            .pointer("/properties/message_type/const")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue; // a shared type (enum, nested object), kept as it is
        };
        let mut data = definition["properties"]["data"].take();
        if let Some(description) = definition.get("description") {
            data["description"] = description.clone();
        }
        *definition = data;
        variants.push(json!({
            "type": "object",
            "required": ["message_type", "data"],
            "properties": {
                "message_type": {"type": "string", "enum": [message_type]},
                "data": {"$ref": format!("#/definitions/{}", type_name(name))},
            },
        }));
    }
    // `error` would be a struct named `Error` beside the crate's error type.
    let renamed: serde_json::Map<String, Value> = std::mem::take(definitions)
        .into_iter()
        .map(|(name, definition)| (type_name(&name).to_owned(), definition))
        .collect();
    json!({
        "$schema": schema["$schema"],
        "title": "Event",
        "description": "A WebSocket message's body, tagged by `message_type` with its content in `data`.",
        "oneOf": variants,
        "definitions": renamed,
    })
}

fn type_name(definition: &str) -> &str {
    match definition {
        "error" => "protocol_error",
        other => other,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    println!("cargo:rerun-if-changed={}", path.display());
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn write(path: &Path, tokens: proc_macro2::TokenStream) {
    let ast: syn::File = syn::parse2(tokens).expect("the generators emit valid Rust");
    std::fs::write(path, prettyplease::unparse(&ast))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn quote(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a Rust path")
}
