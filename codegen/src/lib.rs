//! RustyDB's schema-first code generator: `schema/` (YAML) -> validated IR -> emitters.
//!
//! `build.rs` calls [`rust_server`] for the server's traits and routers; `cargo codegen` (the CLI in
//! `main.rs`) calls [`artifacts`] and writes the committed files under `generated/`; the drift test
//! calls [`artifacts`] and compares.

#![forbid(unsafe_code)]

pub mod emit;
mod error;
pub mod ir;
mod load;
pub mod model;
pub mod naming;
mod validate;

use std::path::Path;

pub use emit::REGENERATE_COMMAND;
pub use error::{CodegenError, Diagnostic, Result};
pub use load::schema_paths;

/// Loads and validates the schema directory.
pub fn load(schema_dir: &Path) -> Result<ir::Api> {
    validate::validate(load::load_dir(schema_dir)?)
}

/// The committed artifacts: (path relative to `generated/`, contents), in a fixed order.
pub fn artifacts(api: &ir::Api) -> Vec<(&'static str, String)> {
    vec![
        ("openapi.json", emit::openapi::emit(api)),
        ("api-surface.txt", emit::surface::emit(api)),
        ("events.schema.json", emit::events::emit(api)),
        ("schema.graphql", emit::graphql::emit(api)),
    ]
}

/// The generated SDK sources: (path relative to `sdk/`, contents), in a fixed order.
pub fn sdk_artifacts(api: &ir::Api) -> Result<Vec<(String, String)>> {
    let mut files = emit::sdk::typescript::emit(api)?;
    files.extend(emit::sdk::python::emit(api)?);
    Ok(files)
}

/// The directories under `sdk/` that hold only generated files (the drift test checks that
/// nothing else lingers there).
pub const SDK_GENERATED_DIRS: &[&str] = &[
    "typescript/src/generated",
    "python/rustydb_client/_generated",
];

/// The server's generated Rust (types, permission catalog, traits, routers) as one file.
pub fn rust_server(api: &ir::Api) -> Result<String> {
    emit::rust::emit(api)
}
