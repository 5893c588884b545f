//! Generates the server's traits, routers, types and permission catalog from `schema/` into
//! OUT_DIR. A bad schema fails the build with the codegen's diagnostics (file, entry, problem).

use std::path::Path;

fn main() {
    // The schema lives at the workspace root, two levels up.
    let schema = Path::new("../../schema");
    println!("cargo::rerun-if-changed=../../schema");
    let result = rustydb_codegen::load(schema).and_then(|api| rustydb_codegen::rust_server(&api));
    match result {
        Ok(code) => {
            let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
            let path = Path::new(&out).join("rustydb_api.rs");
            if let Err(e) = std::fs::write(&path, code) {
                println!("cargo::error=failed to write {}: {e}", path.display());
            }
        }
        Err(e) => {
            for line in e.to_string().lines() {
                println!("cargo::error={line}");
            }
        }
    }
}
