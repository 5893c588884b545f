//! `cargo codegen`: rewrites every committed artifact under `generated/` from `schema/`.
//!
//! Usage: `rustydb-codegen [--check] [SCHEMA_DIR] [OUT_DIR]` (defaults: `schema`, `generated`).
//! `--check` writes nothing and exits 1 when a file is stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dirs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: rustydb-codegen [--check] [SCHEMA_DIR] [OUT_DIR]");
                return ExitCode::SUCCESS;
            }
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    let schema = dirs.first().cloned().unwrap_or_else(|| "schema".into());
    let out = dirs.get(1).cloned().unwrap_or_else(|| "generated".into());

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
    let mut stale = Vec::new();
    for (name, contents) in rustydb_codegen::artifacts(&api) {
        let path = out.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == contents {
            continue;
        }
        stale.push(path.clone());
        if !check {
            if let Err(e) =
                std::fs::create_dir_all(&out).and_then(|()| std::fs::write(&path, contents))
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
        println!("generated/ is up to date");
    }
    ExitCode::SUCCESS
}
