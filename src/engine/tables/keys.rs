//! Row keys in the path: the primary key's value, or for a composite key the values joined with
//! `,` and escaped with `\`.

use crate::error::{Error, Result};

/// Writes a key as the rows path takes it: one part as is; several joined with `,`, each part's
/// `\` and `,` escaped with a backslash.
pub fn encode_key(parts: &[String]) -> String {
    match parts {
        [only] => only.clone(),
        parts => parts
            .iter()
            .map(|p| p.replace('\\', "\\\\").replace(',', "\\,"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Reads a key written by `encode_key` for a key of `expected` columns.
pub fn split_key(text: &str, expected: usize) -> Result<Vec<String>> {
    if expected == 1 {
        return Ok(vec![text.to_string()]);
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',')) => current.push(escaped),
                _ => {
                    return Err(Error::BadRowKey(
                        "a backslash in a composite key escapes only `,` or `\\`".into(),
                    ));
                }
            },
            ',' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    if parts.len() != expected {
        return Err(Error::BadRowKey(format!(
            "the table's primary key has {expected} columns; the key has {} parts (separate them with `,`, escape `,` and `\\` inside a value with `\\`)",
            parts.len()
        )));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::{encode_key, split_key};

    #[test]
    fn composite_keys_round_trip_through_their_encoding() {
        let cases: [&[&str]; 5] = [
            &["a", "1"],
            &["a,b", "1"],
            &["back\\slash", ",", ""],
            &["\\,", "\\\\,,"],
            &["", ""],
        ];
        for parts in cases {
            let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            let encoded = encode_key(&parts);
            assert_eq!(split_key(&encoded, parts.len()).expect("splits"), parts);
        }
        assert_eq!(encode_key(&["a,b".into(), "1".into()]), "a\\,b,1");
        // One key column: the text as is.
        assert_eq!(split_key("a,b\\", 1).expect("one part"), ["a,b\\"]);
        assert!(split_key("a,b,c", 2).is_err());
        assert!(split_key("a", 2).is_err());
        assert!(split_key("a\\b,c", 2).is_err());
        assert!(split_key("a,c\\", 2).is_err());
    }
}
