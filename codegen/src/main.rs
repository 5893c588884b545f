//! `cargo codegen`: rewrites every committed artifact from `schema/`: `generated/`, the
//! TypeScript and Python SDK sources, and the Rust SDK's pinned progenitor/typify output.
//!
//! Usage: `rustydb-codegen [--check] [SCHEMA_DIR] [OUT_DIR] [SDK_DIR]` (defaults: `schema`,
//! `generated`, `sdk`). `--check` writes nothing and exits 1 when a file is stale. The SDK sources
//! go under SDK_DIR (`sdk/typescript/src/generated/`, `sdk/python/rustydb_client/_generated/`).
//! The Rust SDK generates its code in its build script from `generated/`, so its pinned copy
//! (`sdk/rust/tests/snapshots/`) is refreshed last, by running its pin test with
//! `RUSTYDB_REGENERATE=1` (one command for everything, nothing a newcomer must know besides).

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
    if sdk.join("rust/Cargo.toml").is_file() {
        match rust_sdk_pins(&sdk, check) {
            Ok(true) => {}
            Ok(false) => stale.push(sdk.join("rust/tests/snapshots")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
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

/// Runs the Rust SDK's pin test (`sdk/rust/tests/generated.rs`), which compares what its build
/// script generates from `generated/` with the committed copy; unless `check`, it rewrites the
/// copy. Returns whether the copy was (and, after a rewrite, is) current.
fn rust_sdk_pins(sdk: &std::path::Path, check: bool) -> Result<bool, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = sdk.join("rust/Cargo.toml");
    let run = |regenerate: bool| {
        let mut cmd = std::process::Command::new(&cargo);
        cmd.args(["test", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .args(["--test", "generated", "--", "pinned"]);
        if regenerate {
            cmd.env("RUSTYDB_REGENERATE", "1");
        }
        cmd.output()
            .map_err(|e| format!("failed to run cargo test for the Rust SDK: {e}"))
    };
    let first = run(false)?;
    if first.status.success() {
        return Ok(true);
    }
    let stderr = String::from_utf8_lossy(&first.stderr);
    let stdout = String::from_utf8_lossy(&first.stdout);
    if !stdout.contains("is stale") {
        return Err(format!(
            "the Rust SDK's pin test did not run:\n{stderr}{stdout}"
        ));
    }
    if check {
        return Ok(false);
    }
    let second = run(true)?;
    if !second.status.success() {
        return Err(format!(
            "the Rust SDK's pin test failed while rewriting its copy:\n{}{}",
            String::from_utf8_lossy(&second.stderr),
            String::from_utf8_lossy(&second.stdout)
        ));
    }
    println!("wrote {}", sdk.join("rust/tests/snapshots").display());
    Ok(false)
}
