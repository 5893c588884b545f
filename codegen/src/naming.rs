//! Identifier rules shared by the emitters, so a schema name becomes the same Rust name everywhere.

use heck::{ToSnakeCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot be raw identifiers; they get a trailing underscore instead.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// A snake_case Rust identifier (function, field, module) for a schema name.
pub fn snake_ident(name: &str) -> String {
    escape(name.to_snake_case())
}

/// An UpperCamelCase Rust identifier (type, trait, variant) for a schema name.
pub fn camel_ident(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    match camel.chars().next() {
        // typify's prefix, so a collision check sees the name typify emits.
        Some(c) if c.is_ascii_digit() => format!("X{camel}"),
        _ => escape(camel),
    }
}

fn escape(ident: String) -> String {
    if NOT_RAW.contains(&ident.as_str()) {
        format!("{ident}_")
    } else if KEYWORDS.contains(&ident.as_str()) {
        format!("r#{ident}")
    } else if ident.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("_{ident}")
    } else {
        ident
    }
}

/// The identifier without a raw prefix, for building longer names from it.
pub fn bare(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_casing() {
        assert_eq!(snake_ident("type"), "r#type");
        assert_eq!(snake_ident("self"), "self_");
        assert_eq!(snake_ident("getHTTPStatus"), "get_http_status");
        assert_eq!(snake_ident("page-size"), "page_size");
        assert_eq!(camel_ident("self"), "Self_");
        assert_eq!(camel_ident("2fa_codes"), "X2faCodes");
        assert_eq!(camel_ident("buffer_pool"), "BufferPool");
    }
}
