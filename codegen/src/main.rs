//! `cargo codegen`: rewrites every committed artifact under `generated/` from `schema/`.
//!
//! Usage: `rustydb-codegen [--check] [SCHEMA_DIR] [OUT_DIR] [SDK_DIR]` (defaults: `schema`,
//! `generated`, `sdk`). `--check` writes nothing and exits 1 when a file is stale. The SDK sources
//! go under SDK_DIR (`sdk/typescript/src/generated/`, `sdk/python/rustydb_client/_generated/`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dirs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: rustydb-codegen [--check] [SCHEMA_DIR] [OUT_DIR] [SDK_DIR]");
                return ExitCode::SUCCESS;
            }
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    let schema = dirs.first().cloned().unwrap_or_else(|| "schema".into());
    let out = dirs.get(1).cloned().unwrap_or_else(|| "generated".into());
    let sdk = dirs.get(2).cloned().unwrap_or_else(|| "sdk".into());

    let api = match rustydb_codegen::load(&schema) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Building the server Rust validates what typify accepts, so a schema that would break the
    // build fails here first.
    if let Err(e) = rustydb_codegen::rust_server(&api) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let sdk_files = match rustydb_codegen::sdk_artifacts(&api) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = rustydb_codegen::artifacts(&api)
        .into_iter()
        .map(|(name, contents)| (out.join(name), contents))
        .chain(
            sdk_files
                .into_iter()
                .map(|(name, contents)| (sdk.join(name), contents)),
        );
    let mut stale = Vec::new();
    for (path, contents) in files {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == contents {
            continue;
        }
        stale.push(path.clone());
        if !check {
            let dir = path.parent().unwrap_or(&out);
            if let Err(e) =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, contents))
            {
                eprintln!("error: failed to write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
    }
    if check && !stale.is_empty() {
        for p in &stale {
            eprintln!("stale: {}", p.display());
        }
        eprintln!(
            "run `{}` to regenerate",
            rustydb_codegen::REGENERATE_COMMAND
        );
        return ExitCode::FAILURE;
    }
    if stale.is_empty() {
        println!("generated/ and the SDK sources are up to date");
    }
    ExitCode::SUCCESS
}
