//! `api-surface.txt`: one line per entry point, so an API change is a one-line diff in review.
//! Sections: HTTP operations (the REST API and the `/metrics` scrape), WebSocket endpoints (with
//! the topics they carry), the messages a WebSocket client may send, and GraphQL root fields
//! (subscriptions with their source). Every operation, endpoint and field line ends with who may
//! call it.

use crate::emit::header;
use crate::ir::Api;

pub fn emit(api: &Api) -> String {
    let mut out = format!("# {}\n", header());

    let mut rest: Vec<(&str, &str, String)> = api
        .subsystems
        .iter()
        .flat_map(|s| s.operations.iter())
        .map(|o| {
            let line = format!(
                "{} {} {} {}",
                o.method.as_str(),
                o.path,
                o.id,
                o.access.label()
            );
            (o.path.as_str(), o.method.as_str(), line)
        })
        .collect();
    rest.sort();
    section(
        &mut out,
        "METHOD PATH operationId permission",
        rest.into_iter().map(|(_, _, l)| l),
    );

    let mut ws: Vec<String> = api
        .websockets
        .iter()
        .map(|w| {
            let topics = if w.topics.is_empty() {
                "-".to_string()
            } else {
                w.topics.join(",")
            };
            format!("WS {} {} {} {}", w.path, w.id, topics, w.access.label())
        })
        .collect();
    ws.sort();
    section(&mut out, "WS PATH id topics permission", ws.into_iter());

    // In declared order: the order the protocol documents them.
    let client = api.client_messages.iter().map(|m| {
        let data = m.data.as_deref().unwrap_or("-");
        let endpoints = if m.queries { "queries" } else { "all" };
        format!("WS-CLIENT {} {data} {endpoints}", m.message_type)
    });
    section(&mut out, "WS-CLIENT message_type data endpoints", client);

    let roots = [("QUERY", &api.queries), ("MUTATION", &api.mutations)];
    let mut graphql: Vec<String> = roots
        .iter()
        .flat_map(|(root, fields)| {
            fields
                .iter()
                .map(move |f| format!("{root} {} {} {}", f.name, f.returns, f.permission))
        })
        .chain(api.subscriptions.iter().map(|s| {
            let source = match (&s.topic, &s.poll) {
                (Some(topic), _) => format!("topic:{topic}"),
                (None, Some(_)) => "poll".to_string(),
                (None, None) => "-".to_string(),
            };
            format!(
                "SUBSCRIPTION {} {} {source} {}",
                s.name, s.returns, s.permission
            )
        }))
        .collect();
    graphql.sort();
    section(
        &mut out,
        "GRAPHQL ROOT field returns [source] permission",
        graphql.into_iter(),
    );

    out
}

fn section(out: &mut String, columns: &str, lines: impl Iterator<Item = String>) {
    out.push_str("# ");
    out.push_str(columns);
    out.push('\n');
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
}
