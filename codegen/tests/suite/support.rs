//! Fixture access and a scratch schema directory to break one thing at a time.

use std::fs;
use std::path::{Path, PathBuf};

use rustydb_codegen::{CodegenError, Diagnostic, ir::Api};
use tempfile::TempDir;

/// `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads a fixture that must be valid.
pub fn load_fixture(name: &str) -> Api {
    rustydb_codegen::load(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn diag(file: &str, entry: &str, message: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        entry: entry.to_string(),
        message: message.to_string(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of a fixture in a temporary directory, edited by the test.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn of(fixture_name: &str) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture(fixture_name), dir.path());
        Scratch { dir }
    }

    /// A copy of `tests/fixtures/minimal`.
    pub fn minimal() -> Scratch {
        Scratch::of("minimal")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replaces `from`, which must occur exactly once in `rel`, with `to`.
    pub fn edit(&self, rel: &str, from: &str, to: &str) -> &Scratch {
        let text = self.read(rel);
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` must occur once in {rel}"
        );
        self.write(rel, &text.replacen(from, to, 1))
    }

    /// Appends `text` to `rel` (the last key of every fixture file is a list or a map, so an
    /// appended entry joins it).
    pub fn append(&self, rel: &str, text: &str) -> &Scratch {
        let mut contents = self.read(rel);
        contents.push_str(text);
        self.write(rel, &contents)
    }

    /// Writes (or overwrites) `rel`.
    pub fn write(&self, rel: &str, contents: &str) -> &Scratch {
        let path = self.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    pub fn remove(&self, rel: &str) -> &Scratch {
        fs::remove_file(self.path().join(rel)).unwrap();
        self
    }

    pub fn load(&self) -> rustydb_codegen::Result<Api> {
        rustydb_codegen::load(self.path())
    }

    /// The error of a schema that must not load.
    pub fn error(&self) -> CodegenError {
        match self.load() {
            Ok(_) => panic!("the edited schema loaded without error"),
            Err(e) => e,
        }
    }

    /// The diagnostics of a schema that must be `CodegenError::Invalid`.
    pub fn invalid(&self) -> Vec<Diagnostic> {
        match self.error() {
            CodegenError::Invalid(d) => d,
            other => panic!("expected CodegenError::Invalid, got: {other}"),
        }
    }

    /// (file, message) of a schema that must be `CodegenError::Parse`.
    pub fn parse_error(&self) -> (String, String) {
        match self.error() {
            CodegenError::Parse { file, message } => (file, message),
            other => panic!("expected CodegenError::Parse, got: {other}"),
        }
    }
}
