//! Generates the REST client from the committed OpenAPI document with progenitor (builder style).
//! Running it here rather than committing its output means the client always matches
//! `generated/openapi.json`: there is nothing that can drift.

use std::path::Path;

fn main() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../generated/openapi.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());
    let text = std::fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", spec_path.display()));
    let spec: openapiv3::OpenAPI = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", spec_path.display()));

    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        // Every request passes through the session: it adds the bearer token and refreshes it
        // shortly before it expires (src/session.rs).
        .with_inner_type(quote("crate::session::Session"))
        .with_pre_hook_async(quote("crate::session::authorize"));
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor on {}: {e}", spec_path.display()));
    let ast: syn::File = syn::parse2(tokens).expect("progenitor emits valid Rust");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("rest.rs");
    std::fs::write(&out, prettyplease::unparse(&ast)).expect("writing the generated client");
}

fn quote(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a Rust path")
}
