//! The one error type of the codegen crate. Every message names the schema file and the entry so a
//! bad schema is a readable build error, never a panic backtrace.

use std::fmt;
use std::path::PathBuf;

/// One problem found in the schema: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Schema file, relative to the schema directory.
    pub file: String,
    /// The entry inside the file (operation id, type name, ...), empty for the whole file.
    pub entry: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.entry, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("failed to read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: failed to parse YAML: {message}")]
    Parse { file: String, message: String },
    #[error("invalid schema ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("type generation failed: {0}")]
    Types(String),
    #[error("SDK template failed: {0}")]
    Template(String),
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("  - {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl CodegenError {
    /// The diagnostics of an `Invalid` error, empty for other kinds.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CodegenError::Invalid(d) => d,
            _ => &[],
        }
    }
}

pub type Result<T> = std::result::Result<T, CodegenError>;
