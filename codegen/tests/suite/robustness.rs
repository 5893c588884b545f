//! No input panics: a bad schema is an error with a message (or, for odd but valid input, output),
//! never a backtrace from `build.rs`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rustydb_codegen::CodegenError;

use super::support::{Scratch, fixture};

/// Loads and, when valid, generates everything; `Err` carries a panic's message.
fn run(dir: &Path) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(|| match rustydb_codegen::load(dir) {
        Err(e) => format!("load: {e}"),
        Ok(api) => {
            let artifacts = rustydb_codegen::artifacts(&api);
            match rustydb_codegen::rust_server(&api) {
                Ok(rust) => format!(
                    "ok: {} artifacts, {} bytes of Rust",
                    artifacts.len(),
                    rust.len()
                ),
                Err(e) => format!("rust: {e}"),
            }
        }
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn assert_no_panic(what: &str, s: &Scratch) -> String {
    run(s.path()).unwrap_or_else(|panic| panic!("{what}: panicked: {panic}"))
}

#[test]
fn enum_values_typify_cannot_name_are_an_error_not_a_panic() {
    // typify panics on enum values that collide after case conversion; the generator reports it.
    let s = Scratch::minimal();
    s.append(
        "types/items.yaml",
        "  Direction:\n    type: string\n    enum: [self, Self]\n",
    );
    let api = s
        .load()
        .expect("the validator does not look at enum values");
    match rustydb_codegen::rust_server(&api) {
        Err(CodegenError::Types(message)) => assert!(
            message.contains("Failed to make unique variant names for [self,Self]"),
            "{message}"
        ),
        other => panic!("expected a Types error, got {other:?}"),
    }
}

#[test]
fn odd_but_valid_schemas_do_not_panic() {
    let types: &[(&str, &str)] = &[
        ("null or null", "type: [\"null\", \"null\"]"),
        ("empty enum", "type: string\n    enum: []"),
        ("mixed enum", "type: string\n    enum: [1, a, null, true]"),
        ("enum of objects", "enum: [{a: 1}, [1]]"),
        ("wrong default", "type: integer\n    default: not a number"),
        (
            "min above max",
            "type: integer\n    minimum: 5\n    maximum: 1",
        ),
        ("minLength on integer", "type: integer\n    minLength: 3"),
        ("array without items", "type: array"),
        (
            "object with items",
            "type: object\n    items:\n      type: string",
        ),
        (
            "closed object",
            "type: object\n    additionalProperties: false",
        ),
        (
            "nullable object",
            "type: [object, \"null\"]\n    properties:\n      a:\n        type: string",
        ),
        (
            "self reference",
            "type: object\n    properties:\n      next:\n        $ref: Odd\n      all:\n        \
             type: array\n        items:\n          $ref: Odd",
        ),
        (
            "empty property name",
            "type: object\n    properties:\n      \"\":\n        type: string",
        ),
        (
            "unicode property name",
            "type: object\n    properties:\n      größe:\n        type: number\n      \"😀\":\n        \
             type: string",
        ),
        (
            "description not a string",
            "type: string\n    description: 5",
        ),
        ("required not a list", "type: object\n    required: a"),
        ("maxItems negative", "type: array\n    maxItems: -1"),
        ("format on string", "type: string\n    format: int32"),
        (
            "property collision self/Self",
            "type: object\n    properties:\n      self:\n        type: string\n      Self:\n        \
             type: string",
        ),
    ];
    for (what, body) in types {
        let s = Scratch::minimal();
        s.append("types/items.yaml", &format!("  Odd:\n    {body}\n"));
        // Used by a route too, so the Rust of a parameter or body refers to it.
        s.append(
            "routes/items.yaml",
            "  - id: odd\n    method: PUT\n    path: /api/v1/odd\n    summary: Odd\n    \
             permission: public\n    body: { $ref: Odd }\n    response: { status: 200, \
             description: Odd, $ref: Odd }\n",
        );
        assert_no_panic(what, &s);
    }
}

#[test]
fn odd_names_do_not_panic() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "type named empty",
            "types/items.yaml",
            "types:\n",
            "types:\n  \"\":\n    type: string\n",
        ),
        (
            "type named Self",
            "types/items.yaml",
            "types:\n",
            "types:\n  Self:\n    type: string\n",
        ),
        (
            "type named with a space",
            "types/items.yaml",
            "types:\n",
            "types:\n  item list:\n    type: string\n",
        ),
        (
            "query parameter named _",
            "routes/items.yaml",
            "      limit: {",
            "      _: { type: string }\n      limit: {",
        ),
        (
            "query parameter named -",
            "routes/items.yaml",
            "      limit: {",
            "      \"-\": { type: string }\n      limit: {",
        ),
        (
            "query parameter with a string default for an integer",
            "routes/items.yaml",
            "default: 50",
            "default: fifty",
        ),
        (
            "websocket at the prefix itself",
            "websockets.yaml",
            "path: /api/v1/ws/items",
            "path: /api/v1/ws",
        ),
        (
            "websocket path with a trailing slash",
            "websockets.yaml",
            "path: /api/v1/ws/items",
            "path: /api/v1/ws/",
        ),
        (
            "variant named Self_",
            "events/items.yaml",
            "      Deleted:\n",
            "      Self_:\n",
        ),
        ("role named empty", "api.yaml", "  reader:\n", "  \"\":\n"),
        (
            "subscription argument that is a list of lists",
            "subscriptions/items.yaml",
            "kinds: \"[String!]\"",
            "kinds: \"[[String!]!]\"",
        ),
    ];
    for (what, file, from, to) in cases {
        let s = Scratch::minimal();
        s.edit(file, from, to);
        assert_no_panic(what, &s);
    }
}

#[test]
fn empty_and_wrongly_shaped_files_do_not_panic() {
    let files = [
        "api.yaml",
        "types/items.yaml",
        "routes/items.yaml",
        "events/items.yaml",
        "subscriptions/items.yaml",
        "websockets.yaml",
    ];
    let contents = [
        "",
        "~\n",
        "[]\n",
        "42\n",
        "\"text\"\n",
        "{}\n",
        "- a\n- b\n",
        "a: [\n",
    ];
    for file in files {
        for text in contents {
            let s = Scratch::minimal();
            s.write(file, text);
            let outcome = assert_no_panic(&format!("{file} = {text:?}"), &s);
            assert!(
                outcome.starts_with("load: "),
                "{file} = {text:?}: {outcome}"
            );
        }
    }
}

/// Each single line of every file of a fixture removed in turn: whatever that breaks, nothing
/// panics, and whatever still validates generates Rust.
fn remove_each_line(name: &str) {
    let files = rustydb_codegen::schema_paths(&fixture(name)).unwrap();
    for path in files {
        let rel = path
            .strip_prefix(fixture(name))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let s = Scratch::of(name);
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            s.write(&rel, &(kept.join("\n") + "\n"));
            let what = format!("{name}/{rel} without line {}", skip + 1);
            let outcome = assert_no_panic(&what, &s);
            assert!(!outcome.starts_with("rust: "), "{what}: {outcome}");
        }
    }
}

#[test]
fn removing_any_line_of_minimal_does_not_panic() {
    remove_each_line("minimal");
}

#[test]
fn removing_any_line_of_naming_obstacle_course_does_not_panic() {
    remove_each_line("naming_obstacle_course");
}
