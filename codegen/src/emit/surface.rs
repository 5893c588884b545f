//! `api-surface.txt`: one line per operation, so an API change is a one-line diff in review.

use crate::emit::header;
use crate::ir::Api;

pub fn emit(api: &Api) -> String {
    let mut lines: Vec<(String, &str, String)> = api
        .subsystems
        .iter()
        .flat_map(|s| s.operations.iter())
        .map(|o| {
            (
                o.path.clone(),
                o.method.as_str(),
                format!(
                    "{} {} {} {}",
                    o.method.as_str(),
                    o.path,
                    o.id,
                    o.access.label()
                ),
            )
        })
        .collect();
    lines.sort();
    let mut out = format!("# {}\n# METHOD PATH operationId permission\n", header());
    for (_, _, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
