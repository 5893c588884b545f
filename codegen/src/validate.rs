//! Checks the parsed schema and builds the IR. Every problem is collected (not just the first) and
//! names its file and entry.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{CodegenError, Diagnostic, Result};
use crate::ir::*;
use crate::load::SchemaFiles;
use crate::model::{self, ParamSpec};
use crate::naming::{bare, camel_ident, snake_ident};

mod event_decode;
mod rest_adapter;

/// Keywords of the draft-07 subset accepted in named types and event fields.
const TYPE_KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "description",
    "title",
    "properties",
    "required",
    "items",
    "enum",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "additionalProperties",
    "default",
    "example",
];
const SCALAR_TYPES: &[&str] = &[
    "string", "integer", "number", "boolean", "object", "array", "null",
];
const FORMATS: &[&str] = &[
    "date-time",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "float",
    "double",
];
/// Built-in scalars, and `JSON` (any JSON value), which the generated schema declares when used.
const GRAPHQL_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID", "JSON"];
/// Names the generated Rust already uses beside the subsystem modules (`rt`, `types`, `events`,
/// `websocket_endpoints`), the `websockets` argument of `api_router` and the `WebSocketApi` trait
/// (subsystem `web_socket`).
const RESERVED_SUBSYSTEMS: &[&str] = &[
    "rt",
    "types",
    "events",
    "websocket_endpoints",
    "websockets",
    "web_socket",
];

struct Checker {
    diags: Vec<Diagnostic>,
    file: String,
    entry: String,
}

impl Checker {
    fn at(&mut self, file: &str, entry: &str) {
        self.file = file.to_string();
        self.entry = entry.to_string();
    }

    fn err(&mut self, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            entry: self.entry.clone(),
            message: message.into(),
        });
    }
}

pub fn validate(files: SchemaFiles) -> Result<Api> {
    let mut c = Checker {
        diags: Vec::new(),
        file: String::new(),
        entry: String::new(),
    };
    let (api_file, api) = files.api;

    // Permissions and roles.
    let mut permissions = Vec::new();
    let mut permission_variants: BTreeMap<String, String> = BTreeMap::new();
    for (name, description) in &api.permissions {
        c.at(&api_file, &format!("permission {name}"));
        if name == "public" || name == "authenticated" {
            c.err("`public` and `authenticated` are reserved access levels");
        } else if !is_permission_name(name) {
            c.err("a permission is `area:level` in lowercase letters, e.g. `database:read`");
        } else {
            let variant = camel_ident(&name.replace(':', "_"));
            if let Some(prev) = permission_variants.insert(variant.clone(), name.clone()) {
                c.err(format!(
                    "permission collides with `{prev}` (both become `Permission::{variant}`)"
                ));
            }
        }
        permissions.push(Permission {
            name: name.clone(),
            description: description.clone(),
        });
    }
    let known_permissions: BTreeSet<&str> = api.permissions.keys().map(String::as_str).collect();
    let mut roles = Vec::new();
    for (name, role) in &api.roles {
        c.at(&api_file, &format!("role {name}"));
        for p in &role.permissions {
            if !known_permissions.contains(p.as_str()) {
                c.err(format!("unknown permission `{p}`"));
            }
        }
        roles.push(Role {
            name: name.clone(),
            description: role.description.clone(),
            permissions: role.permissions.clone(),
        });
    }
    let security_schemes: Vec<_> = api
        .security_schemes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if security_schemes.is_empty() {
        c.at(&api_file, "security_schemes");
        c.err("at least one security scheme is needed for protected operations");
    }

    // Named types: unique after conversion to Rust names, references resolve.
    let mut types = Vec::new();
    let mut rust_type_names: BTreeMap<String, String> = BTreeMap::new();
    for (file, tf) in &files.types {
        for (name, schema) in &tf.types {
            c.at(file, &format!("type {name}"));
            let rust = camel_ident(name);
            if let Some(prev) = rust_type_names.insert(rust.clone(), name.clone()) {
                if &prev == name {
                    c.err("duplicate type name");
                } else {
                    c.err(format!(
                        "type name collides with `{prev}` (both become Rust `{rust}`)"
                    ));
                }
            }
            types.push(NamedType {
                name: name.clone(),
                schema: schema.clone(),
            });
        }
    }
    let type_names: BTreeSet<String> = types.iter().map(|t| t.name.clone()).collect();
    for (file, tf) in &files.types {
        for (name, schema) in &tf.types {
            c.at(file, &format!("type {name}"));
            check_type_schema(&mut c, schema, &type_names, name);
        }
    }

    // Operations.
    let mut subsystems: Vec<Subsystem> = Vec::new();
    let mut op_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut routes: BTreeMap<(String, Method), String> = BTreeMap::new();
    let mut path_owner: BTreeMap<String, String> = BTreeMap::new();
    let mut path_shapes: BTreeMap<String, String> = BTreeMap::new();
    let mut subsystem_names: BTreeMap<String, String> = BTreeMap::new();
    for (file, rf) in &files.routes {
        c.at(file, &format!("subsystem {}", rf.subsystem));
        if !is_snake(&rf.subsystem) {
            c.err("a subsystem name is lowercase snake_case");
        }
        if RESERVED_SUBSYSTEMS.contains(&snake_ident(&rf.subsystem).as_str()) {
            c.err("this subsystem name is taken by the generated Rust; choose another");
        }
        if let Some(prev) = subsystem_names.insert(rf.subsystem.clone(), file.clone()) {
            c.err(format!("subsystem already declared in {prev}"));
        }
        let mut operations = Vec::new();
        for op in &rf.operations {
            c.at(file, &format!("operation {}", op.id));
            if let Some(o) = check_operation(&mut c, op, &known_permissions, &type_names) {
                let rust = snake_ident(&o.id);
                if let Some(prev) = op_ids.insert(rust.clone(), o.id.clone()) {
                    if prev == o.id {
                        c.err("duplicate operation id");
                    } else {
                        c.err(format!(
                            "operation id collides with `{prev}` (both become `{rust}`)"
                        ));
                    }
                }
                if let Some(prev) = routes.insert((o.path.clone(), o.method), o.id.clone()) {
                    c.err(format!(
                        "duplicate route {} {} (also operation `{prev}`)",
                        o.method.as_str(),
                        o.path
                    ));
                }
                let prev = path_shapes
                    .entry(path_shape(&o.path))
                    .or_insert_with(|| o.path.clone());
                if prev != &o.path {
                    let prev = prev.clone();
                    c.err(format!(
                        "path {} is the same route as {prev}: only parameter names differ",
                        o.path
                    ));
                }
                let owner = path_owner
                    .entry(o.path.clone())
                    .or_insert_with(|| rf.subsystem.clone());
                if owner != &rf.subsystem {
                    let owner = owner.clone();
                    c.err(format!("path {} belongs to subsystem `{owner}`", o.path));
                }
                operations.push(o);
            }
        }
        subsystems.push(Subsystem {
            name: rf.subsystem.clone(),
            description: rf.description.clone(),
            operations,
        });
    }

    if !files.routes.is_empty() && !type_names.contains(crate::emit::openapi::ERROR_BODY) {
        c.at(&api_file, "types");
        c.err(format!(
            "type `{}` is required: every error response carries it",
            crate::emit::openapi::ERROR_BODY
        ));
    }

    // Event families.
    let mut events = Vec::new();
    let mut families = BTreeSet::new();
    let mut message_types = BTreeSet::new();
    for (file, ef) in &files.events {
        c.at(file, &format!("family {}", ef.family));
        if !is_snake(&ef.family) {
            c.err("a family name is lowercase snake_case");
        }
        if !families.insert(ef.family.clone()) {
            c.err("duplicate event family");
        }
        let access = check_stream_access(&mut c, &ef.permission, &known_permissions);
        let mut messages = Vec::new();
        for m in &ef.messages {
            c.at(file, &format!("message {}", m.message_type));
            if !message_types.insert(m.message_type.clone()) {
                c.err("duplicate message_type");
            }
            if let Some(msg) = check_message(&mut c, m, &type_names) {
                for name in payload_type_names(&msg) {
                    if let Some(prev) = rust_type_names.insert(camel_ident(&name), name.clone()) {
                        c.err(format!(
                            "payload type `{}` collides with `{prev}`",
                            camel_ident(&name)
                        ));
                    }
                }
                messages.push(msg);
            }
        }
        if ef.durable && ef.protocol {
            c.at(file, &format!("family {}", ef.family));
            c.err("protocol messages are never published, so they cannot be durable");
        }
        if ef.messages.is_empty() {
            c.at(file, &format!("family {}", ef.family));
            c.err("a family carries at least one message");
        }
        events.push(EventFamily {
            family: ef.family.clone(),
            description: ef.description.clone(),
            access,
            protocol: ef.protocol,
            durable: ef.durable,
            messages,
        });
    }

    // Subscriptions and queries: the GraphQL roots.
    // (id, permission) of every operation, in `OPERATIONS` order, for the fields' `rest`.
    let operations: Vec<(String, String)> = subsystems
        .iter()
        .flat_map(|s| s.operations.iter())
        .map(|o| (o.id.clone(), o.access.label().to_string()))
        .collect();
    // A field's arguments are checked against its operation only once the operations are
    // valid, so one mistake in a route is reported once.
    let operations_valid = c.diags.is_empty();
    let operation_of: BTreeMap<&str, (&str, &Operation)> = subsystems
        .iter()
        .flat_map(|s| {
            s.operations
                .iter()
                .map(move |o| (o.id.as_str(), (s.name.as_str(), o)))
        })
        .collect();
    let mut subscriptions = Vec::new();
    let mut queries = Vec::new();
    let mut mutations = Vec::new();
    let mut sub_names = BTreeSet::new();
    // Queries and mutations share one namespace: each becomes a method of one Rust trait.
    let mut query_names = BTreeSet::new();
    for (file, sf) in &files.subscriptions {
        // Each file becomes one Rust trait named after it.
        let group = std::path::Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        c.at(file, "file name");
        if !is_snake(&group) {
            c.err("a subscriptions file name is lowercase snake_case (it names a Rust trait)");
        }
        for (kind, specs, out) in [
            ("query", &sf.queries, &mut queries),
            ("mutation", &sf.mutations, &mut mutations),
        ] {
            for q in specs {
                c.at(file, &format!("{kind} {}", q.name));
                if !is_lower_camel(&q.name) {
                    c.err(format!("a {kind} name is lowerCamelCase"));
                }
                if !query_names.insert(q.name.clone()) {
                    c.err(format!(
                        "duplicate {kind} name (queries and mutations share names)"
                    ));
                }
                let (permission, rest) = field_access(&mut c, &q.permission, &q.rest, &operations);
                // An operation's permission was checked with the operation.
                if rest.is_none() {
                    check_stream_access(&mut c, &permission, &known_permissions);
                }
                if !type_names.contains(&q.returns)
                    && !GRAPHQL_SCALARS.contains(&q.returns.as_str())
                {
                    c.err(format!("unknown type reference `{}`", q.returns));
                }
                let args = graphql_args(&mut c, &q.args, &type_names);
                let adapter = match &rest {
                    Some(_) if !operations_valid => None,
                    Some((id, _)) => operation_of.get(id.as_str()).and_then(|(sub, op)| {
                        rest_adapter::rest_adapter(
                            &mut c, sub, op, &args, &q.bind, &q.returns, &types,
                        )
                    }),
                    None => {
                        if !q.bind.is_empty() {
                            c.err("`bind` needs `rest`");
                        }
                        None
                    }
                };
                out.push(Query {
                    name: q.name.clone(),
                    group: group.clone(),
                    description: q.description.clone(),
                    permission,
                    rest,
                    args,
                    returns: q.returns.clone(),
                    adapter,
                });
            }
        }
        for s in &sf.subscriptions {
            c.at(file, &format!("subscription {}", s.name));
            if !is_lower_camel(&s.name) {
                c.err("a subscription name is lowerCamelCase");
            }
            if !sub_names.insert(s.name.clone()) {
                c.err("duplicate subscription name");
            }
            let (permission, rest) = field_access(&mut c, &s.permission, &s.rest, &operations);
            if rest.is_none() {
                check_stream_access(&mut c, &permission, &known_permissions);
            }
            if !type_names.contains(&s.returns) {
                c.err(format!("unknown type reference `{}`", s.returns));
            }
            match (&s.source.topic, &s.source.poll) {
                (Some(topic), None) => {
                    if !families.contains(topic) {
                        c.err(format!("unknown event family `{topic}` in source.topic"));
                    }
                }
                (None, Some(_)) => {}
                _ => c.err("a source has exactly one of `topic` and `poll`"),
            }
            let args = graphql_args(&mut c, &s.args, &type_names);
            let filter: Vec<String> = match &s.source.filter {
                model::FilterSpec::Args(names) => {
                    for f in names {
                        if !s.args.contains_key(f) {
                            c.err(format!("filter `{f}` is not an argument"));
                        }
                    }
                    names.clone()
                }
                model::FilterSpec::Rules(rules) => rules.keys().cloned().collect(),
            };
            let decode =
                event_decode::event_decode(&mut c, &s.source, &s.returns, &args, &events, &types);
            let receives = received_message(&mut c, &s.source, &events);
            let durable = s
                .source
                .topic
                .as_ref()
                .is_some_and(|t| events.iter().any(|e| &e.family == t && e.durable));
            check_resume(&mut c, &s.source, &args, durable);
            subscriptions.push(Subscription {
                name: s.name.clone(),
                group: group.clone(),
                description: s.description.clone(),
                permission,
                rest,
                args,
                returns: s.returns.clone(),
                topic: s.source.topic.clone(),
                poll: s.source.poll.clone(),
                filter,
                decode,
                receives,
                durable,
                resume: s.source.resume.clone(),
            });
        }
    }

    // WebSocket endpoints.
    let mut websockets = Vec::new();
    let mut client_messages = Vec::new();
    if let Some((file, wf)) = &files.websockets {
        let mut ws_paths = BTreeSet::new();
        for w in &wf.endpoints {
            c.at(file, &format!("endpoint {}", w.path));
            if w.path != "/api/v1/ws" && !w.path.starts_with("/api/v1/ws/") {
                c.err("a WebSocket endpoint lives under /api/v1/ws");
            }
            if !ws_paths.insert(w.path.clone()) {
                c.err("duplicate WebSocket endpoint");
            }
            if path_owner.contains_key(&w.path) {
                c.err("path is also a REST operation");
            }
            let access = check_stream_access(&mut c, &w.permission, &known_permissions);
            let id = w.id.clone().unwrap_or_else(|| {
                w.path
                    .trim_start_matches("/api/v1/")
                    .replace(['/', '-'], "_")
            });
            if !is_snake(&id) {
                c.err(format!("endpoint id `{id}` is not snake_case"));
            }
            if let Some(prev) = op_ids.insert(snake_ident(&id), id.clone()) {
                c.err(format!(
                    "endpoint id `{id}` collides with operation `{prev}`"
                ));
            }
            for t in &w.topics {
                if !families.contains(t) {
                    c.err(format!("unknown event family `{t}`"));
                }
            }
            let query = check_params(&mut c, &w.query, false);
            // Endpoints are served by one generic implementation, so every query parameter must
            // say what it means to it: the interval, or a filter on the events' data.
            let find = |name: &str| query.iter().find(|p| p.name == name);
            if let Some(name) = &w.interval {
                match find(name) {
                    None => c.err(format!("interval `{name}` is not a query parameter")),
                    Some(p) if p.ty != ParamType::Integer || p.minimum.is_none_or(|m| m < 1) => {
                        c.err(format!(
                            "interval `{name}` is an integer query parameter with a minimum of at least 1"
                        ))
                    }
                    Some(_) => {}
                }
            }
            for name in &w.filters {
                match find(name) {
                    None => c.err(format!("filter `{name}` is not a query parameter")),
                    Some(p) if p.ty != ParamType::String => {
                        c.err(format!("filter `{name}` is a string query parameter"))
                    }
                    Some(_) => {}
                }
            }
            for p in &query {
                if w.interval.as_deref() != Some(p.name.as_str()) && !w.filters.contains(&p.name) {
                    c.err(format!(
                        "query parameter `{}` is neither the `interval` nor one of the `filters`",
                        p.name
                    ));
                }
            }
            websockets.push(WebSocketEndpoint {
                id,
                path: w.path.clone(),
                summary: w.summary.clone(),
                access,
                topics: w.topics.clone(),
                query,
                interval: w.interval.clone(),
                filters: w.filters.clone(),
                queries: w.queries,
            });
        }
        let mut seen = BTreeSet::new();
        for m in &wf.client_messages {
            c.at(file, &format!("client message {}", m.message_type));
            if !is_snake(&m.message_type) {
                c.err("a message_type is lowercase snake_case");
            }
            if !seen.insert(m.message_type.clone()) {
                c.err("duplicate client message");
            }
            if let Some(t) = m.data.as_ref().filter(|t| !type_names.contains(*t)) {
                c.err(format!("unknown type reference `{t}`"));
            }
            if m.queries && !websockets.iter().any(|w: &WebSocketEndpoint| w.queries) {
                c.err("a `queries` message needs an endpoint with `queries: true`");
            }
            client_messages.push(ClientMessage {
                message_type: m.message_type.clone(),
                description: m.description.clone(),
                data: m.data.clone(),
                queries: m.queries,
            });
        }
    }

    if !c.diags.is_empty() {
        c.diags.sort();
        c.diags.dedup();
        return Err(CodegenError::Invalid(c.diags));
    }
    Ok(Api {
        title: api.title,
        version: api.version,
        description: api.description,
        permissions,
        roles,
        security_schemes,
        types,
        subsystems,
        events,
        subscriptions,
        queries,
        mutations,
        websockets,
        client_messages,
    })
}

/// The message a hand-written topic-fed source receives. Every topic-fed source names its
/// message (`event` when generated whole, `receives` when hand-written), so no hand-written code
/// reads an event's JSON by field name, where a change to the event would go unnoticed.
fn received_message(
    c: &mut Checker,
    source: &model::SourceSpec,
    events: &[EventFamily],
) -> Option<String> {
    let Some(topic) = &source.topic else {
        if source.receives.is_some() {
            c.err("`receives` needs `topic`: a polled source receives no events");
        }
        return None;
    };
    let message_type = match (&source.event, &source.receives) {
        (Some(_), None) => return None,
        (None, Some(m)) => m,
        (Some(_), Some(_)) => {
            c.err("a source has one of `event` (generated) and `receives` (hand-written)");
            return None;
        }
        (None, None) => {
            c.err(
                "a topic-fed source names its message: `event` (generated whole) or `receives` \
                 (its hand-written method gets the message's generated type)",
            );
            return None;
        }
    };
    // An unknown topic is reported with the source's other checks.
    let family = events.iter().find(|f| &f.family == topic)?;
    if !family
        .messages
        .iter()
        .any(|m| &m.message_type == message_type)
    {
        c.err(format!(
            "`{message_type}` is not a message of the `{}` family",
            family.family
        ));
        return None;
    }
    Some(message_type.clone())
}

/// GraphQL arguments: name -> type such as `String!` or `[AggregateInput!]`; named types exist.
/// `source.resume` names a nullable `Int` argument of a subscription on a durable topic: only
/// the change log reaches back far enough to make a resume worth offering.
fn check_resume(
    c: &mut Checker,
    source: &model::SourceSpec,
    args: &[(String, String)],
    durable: bool,
) {
    let Some(resume) = &source.resume else {
        return;
    };
    if !durable {
        c.err("`resume` needs a durable topic (`durable: true` on its event family)");
    }
    match args.iter().find(|(n, _)| n == resume) {
        Some((_, t)) if t == "Int" => {}
        Some((_, t)) => c.err(format!("resume argument `{resume}` is `{t}`, not `Int`")),
        None => c.err(format!("resume `{resume}` is not an argument")),
    }
}

fn graphql_args(
    c: &mut Checker,
    args: &serde_json::Map<String, Value>,
    type_names: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, ty) in args {
        if !is_lower_camel(name) {
            c.err(format!("argument `{name}` is lowerCamelCase"));
        }
        match ty.as_str() {
            Some(t) if is_graphql_type(t) => {
                let base = t.trim_matches(|ch| matches!(ch, '[' | ']' | '!'));
                if !GRAPHQL_SCALARS.contains(&base) && !type_names.contains(base) {
                    c.err(format!("argument `{name}`: unknown type `{base}`"));
                }
                out.push((name.clone(), t.to_string()));
            }
            _ => c.err(format!(
                "argument `{name}` needs a GraphQL type such as `String!` or `[Int!]`"
            )),
        }
    }
    out
}

/// A permission or `authenticated`: what streams and their endpoints may require.
/// A GraphQL field's permission, and the REST operation it mirrors (with its index in
/// `OPERATIONS`): `rest` gives both, so the permission is not repeated; a field without `rest`
/// names its permission.
fn field_access(
    c: &mut Checker,
    permission: &Option<String>,
    rest: &Option<String>,
    operations: &[(String, String)],
) -> (String, Option<(String, usize)>) {
    let Some(id) = rest else {
        return match permission {
            Some(p) => (p.clone(), None),
            None => {
                c.err("a field without `rest` names its `permission`");
                ("authenticated".into(), None)
            }
        };
    };
    let Some(index) = operations.iter().position(|(o, _)| o == id) else {
        c.err(format!("`rest` names no operation: `{id}`"));
        return (
            permission.clone().unwrap_or_else(|| "authenticated".into()),
            None,
        );
    };
    let label = &operations[index].1;
    if let Some(p) = permission.as_ref().filter(|p| *p != label) {
        c.err(format!(
            "permission `{p}` differs from `{label}` of operation `{id}`; leave it out"
        ));
    }
    if label == "public" {
        c.err(format!(
            "`rest` operation `{id}` is public; a GraphQL field needs credentials"
        ));
    }
    (label.clone(), Some((id.clone(), index)))
}

fn check_stream_access(c: &mut Checker, p: &str, known: &BTreeSet<&str>) -> Access {
    match p {
        "authenticated" => Access::Authenticated,
        "public" => {
            c.err("event streams need credentials; use `authenticated` or a permission");
            Access::Authenticated
        }
        _ => {
            check_permission(c, p, known);
            Access::Requires(p.to_string())
        }
    }
}

/// The Rust types an event message's payload becomes: the flat message itself, or one per variant.
pub fn payload_type_names(m: &Message) -> Vec<String> {
    match m.encoding {
        Encoding::Flat => vec![m.message_type.clone()],
        _ => m.variants.iter().map(|v| v.name.clone()).collect(),
    }
}

fn check_permission(c: &mut Checker, p: &str, known: &BTreeSet<&str>) {
    if !known.contains(p) {
        c.err(format!("unknown permission `{p}`"));
    }
}

fn check_operation(
    c: &mut Checker,
    op: &model::OperationSpec,
    known_permissions: &BTreeSet<&str>,
    type_names: &BTreeSet<String>,
) -> Option<Operation> {
    if !is_snake(&op.id) {
        c.err("an operation id is lowercase snake_case");
    }
    let method = Method::parse(&op.method);
    if method.is_none() {
        c.err(format!(
            "unknown method `{}` (GET, POST, PUT, PATCH or DELETE)",
            op.method
        ));
    }
    let access = match op.permission.as_deref() {
        None => {
            c.err("operation without permission (name one, or `public` / `authenticated`)");
            Access::Public
        }
        Some("public") => Access::Public,
        Some("authenticated") => Access::Authenticated,
        Some(p) => {
            check_permission(c, p, known_permissions);
            Access::Requires(p.to_string())
        }
    };

    // Path: `/segment/{param}`, every placeholder declared and every declared one used.
    let mut placeholders = Vec::new();
    // A text exposition for tools with a fixed path (Prometheus scrapes `/metrics`) may live
    // outside /api/; every JSON operation lives under it.
    let text = op.response.media_type.clone();
    if let Some(mt) = &text {
        if !mt.starts_with("text/") {
            c.err(format!("response media_type `{mt}` is not a text/* type"));
        }
        if op.response.type_ref.is_some() {
            c.err("a text response has no $ref");
        }
    }
    if !op.path.starts_with("/api/") && text.is_none() {
        c.err(format!("path `{}` does not start with /api/", op.path));
    }
    for seg in op.path.split('/').skip(1) {
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !is_snake(inner) {
                c.err(format!("path parameter `{inner}` is not snake_case"));
            }
            placeholders.push(inner.to_string());
        } else if seg.is_empty()
            || seg.contains(['{', '}'])
            || !seg
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
        {
            c.err(format!("bad path segment `{seg}` in `{}`", op.path));
        }
    }
    for p in &placeholders {
        if !op.path_params.contains_key(p) {
            c.err(format!("path parameter `{p}` not declared in path_params"));
        }
    }
    for p in op.path_params.keys() {
        if !placeholders.contains(p) {
            c.err(format!(
                "path_params declares `{p}`, which is not in the path"
            ));
        }
    }
    let declared = check_params(c, &op.path_params, true);
    let path_params = placeholders
        .iter()
        .filter_map(|p| declared.iter().find(|d| &d.name == p).cloned())
        .collect();
    let query = check_params(c, &op.query, false);
    for q in &query {
        if placeholders.contains(&q.name) {
            c.err(format!("`{}` is both a path and a query parameter", q.name));
        }
    }

    let body = op.body.as_ref().map(|b| {
        check_ref(c, &b.type_ref, type_names);
        Body {
            type_name: b.type_ref.clone(),
            description: b.description.clone(),
        }
    });
    if body.is_some() && method == Some(Method::Get) {
        c.err("a GET operation has no body");
    }
    if !(200..300).contains(&op.response.status) {
        c.err(format!(
            "response status {} is not a success status",
            op.response.status
        ));
    }
    let has_body = op.response.type_ref.is_some() || op.response.media_type.is_some();
    if op.response.status == 204 && has_body {
        c.err("a 204 response has no body");
    }
    if !has_body && op.response.status != 204 {
        c.err("a response without a body ($ref or media_type) is a 204");
    }
    if let Some(r) = &op.response.type_ref {
        check_ref(c, r, type_names);
    }

    let mut errors: BTreeSet<u16> = BTreeSet::new();
    for e in &op.errors {
        if !(400..600).contains(e) {
            c.err(format!("error status {e} is not a 4xx or 5xx status"));
        }
        errors.insert(*e);
    }
    // Statuses the generated router itself can answer.
    match &access {
        Access::Public => {}
        Access::Authenticated => {
            errors.insert(401);
        }
        Access::Requires(_) => errors.extend([401, 403]),
    }
    // Every request passes the rate limiter.
    errors.insert(429);
    if !op.path_params.is_empty() || !op.query.is_empty() {
        errors.insert(400);
    }
    if body.is_some() {
        errors.extend([400, 413, 415, 422]);
    }
    errors.insert(500);

    let (request_example, response_example) = match &op.examples {
        Some(e) => (e.request.clone(), e.response.clone()),
        None => (None, None),
    };
    if request_example.is_some() && body.is_none() {
        c.err("a request example needs a body");
    }
    Some(Operation {
        id: op.id.clone(),
        method: method?,
        path: op.path.clone(),
        summary: op.summary.clone(),
        description: op.description.clone(),
        access,
        path_params,
        query,
        body,
        response: Response {
            status: op.response.status,
            description: op.response.description.clone(),
            type_name: op.response.type_ref.clone(),
            text,
        },
        errors: errors.into_iter().collect(),
        request_example,
        response_example,
    })
}

fn check_params(c: &mut Checker, params: &Map<String, Value>, in_path: bool) -> Vec<Param> {
    let mut out = Vec::new();
    let mut rust_names = BTreeMap::new();
    for (name, spec) in params {
        let spec: ParamSpec = match serde_json::from_value(spec.clone()) {
            Ok(s) => s,
            Err(e) => {
                c.err(format!("parameter `{name}`: {e}"));
                continue;
            }
        };
        if snake_ident(name).is_empty() {
            c.err(format!(
                "parameter `{name}` has no letter or digit to make a Rust name of"
            ));
        } else if let Some(prev) = rust_names.insert(snake_ident(name), name.clone()) {
            c.err(format!("parameter `{name}` collides with `{prev}`"));
        }
        let ty = match spec.ty.as_str() {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "number" => ParamType::Number,
            "boolean" => ParamType::Boolean,
            other => {
                c.err(format!(
                    "parameter `{name}` has type `{other}`; parameters are string, integer, number or boolean"
                ));
                continue;
            }
        };
        if spec.enum_values.is_some() && ty != ParamType::String {
            c.err(format!("parameter `{name}`: enum is for string parameters"));
        }
        if (spec.minimum.is_some() || spec.maximum.is_some()) && ty != ParamType::Integer {
            c.err(format!(
                "parameter `{name}`: minimum/maximum are for integer parameters"
            ));
        }
        if in_path && spec.default.is_some() {
            c.err(format!("path parameter `{name}` cannot have a default"));
        }
        let default_fits = match (&spec.default, &ty) {
            (None, _) => true,
            (Some(d), ParamType::String) => d.is_string(),
            (Some(d), ParamType::Integer) => d.is_i64(),
            (Some(d), ParamType::Number) => d.is_number(),
            (Some(d), ParamType::Boolean) => d.is_boolean(),
        };
        if !default_fits {
            c.err(format!(
                "parameter `{name}`: the default is not of type `{}`",
                spec.ty
            ));
        }
        out.push(Param {
            name: name.clone(),
            ty,
            description: spec.description,
            required: in_path || spec.required,
            format: spec.format,
            enum_values: spec.enum_values,
            minimum: spec.minimum,
            maximum: spec.maximum,
            default: spec.default,
        });
    }
    out
}

fn check_message(
    c: &mut Checker,
    m: &model::MessageSpec,
    types: &BTreeSet<String>,
) -> Option<Message> {
    if !is_snake(&m.message_type) {
        c.err("a message_type is lowercase snake_case");
    }
    let Some(encoding) = Encoding::parse(&m.encoding) else {
        c.err(format!(
            "unknown encoding `{}` (externally_tagged, event_type_tagged or flat)",
            m.encoding
        ));
        return None;
    };
    let mut variants = Vec::new();
    match (encoding, &m.fields, &m.variants) {
        (Encoding::Flat, Some(fields), None) => {
            variants.push(variant(c, "", fields, &m.optional, types));
        }
        (Encoding::Flat, _, _) => c.err("a flat message declares `fields` and no `variants`"),
        (_, None, Some(vs)) => {
            for (name, fields) in vs {
                if name.is_empty() || camel_ident(name) != *name {
                    c.err(format!("variant `{name}` is not UpperCamelCase"));
                }
                match fields.as_object() {
                    Some(f) => variants.push(variant(c, name, f, &m.optional, types)),
                    None => c.err(format!("variant `{name}` maps field names to schemas")),
                }
            }
            if vs.is_empty() {
                c.err("a tagged message declares at least one variant");
            }
        }
        _ => c.err("a tagged message declares `variants` and no `fields`"),
    }
    Some(Message {
        message_type: m.message_type.clone(),
        encoding,
        description: m.description.clone(),
        variants,
        examples: m.examples.clone(),
    })
}

fn variant(
    c: &mut Checker,
    name: &str,
    fields: &Map<String, Value>,
    optional: &[String],
    types: &BTreeSet<String>,
) -> Variant {
    let mut rust_fields: BTreeMap<String, &str> = BTreeMap::new();
    for (f, schema) in fields {
        check_type_schema(c, schema, types, f);
        if let Some(prev) = rust_fields.insert(bare(&snake_ident(f)).to_string(), f) {
            c.err(format!(
                "fields `{prev}` and `{f}` become the same Rust field"
            ));
        }
    }
    Variant {
        name: name.to_string(),
        fields: fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        required: fields
            .keys()
            .filter(|k| !optional.contains(k))
            .cloned()
            .collect(),
    }
}

fn check_ref(c: &mut Checker, r: &str, type_names: &BTreeSet<String>) {
    if !type_names.contains(r) {
        c.err(format!("unknown type reference `{r}`"));
    }
}

/// Checks one schema of the draft-07 subset, recursively. `at` names the place for messages.
fn check_type_schema(c: &mut Checker, schema: &Value, types: &BTreeSet<String>, at: &str) {
    let Some(obj) = schema.as_object() else {
        c.err(format!("`{at}`: a schema is a mapping"));
        return;
    };
    for key in obj.keys() {
        if !TYPE_KEYWORDS.contains(&key.as_str()) {
            c.err(format!("`{at}`: unsupported schema keyword `{key}`"));
        }
    }
    if let Some(r) = obj.get("$ref") {
        match r.as_str() {
            Some(name) => check_ref(c, name, types),
            None => c.err(format!("`{at}`: $ref names a type")),
        }
        if obj.keys().any(|k| k != "$ref" && k != "description") {
            c.err(format!("`{at}`: $ref allows only `description` beside it"));
        }
        return;
    }
    match obj.get("type") {
        Some(Value::String(t)) if SCALAR_TYPES.contains(&t.as_str()) => {}
        Some(Value::Array(ts))
            if ts.len() == 2
                && ts.iter().any(|t| t == "null")
                && ts
                    .iter()
                    .all(|t| t.as_str().is_some_and(|s| SCALAR_TYPES.contains(&s))) => {}
        Some(other) => c.err(format!(
            "`{at}`: type `{other}` is not one of {SCALAR_TYPES:?} (or [T, \"null\"])"
        )),
        // No `type`: any JSON value (typify makes it `serde_json::Value`).
        None => {}
    }
    if let Some(f) = obj.get("format").and_then(Value::as_str)
        && !FORMATS.contains(&f)
    {
        c.err(format!("`{at}`: unsupported format `{f}`"));
    }
    if obj.contains_key("format") && !obj.contains_key("type") {
        // typify has no type for a format alone (it panics).
        c.err(format!("`{at}`: `format` needs a `type`"));
    }
    if let Some(props) = obj.get("properties") {
        match props.as_object() {
            Some(p) => {
                let mut fields: BTreeMap<String, &str> = BTreeMap::new();
                for (name, s) in p {
                    check_type_schema(c, s, types, &format!("{at}.{name}"));
                    // typify names an inline enum after its type and property; a declared type
                    // of that name would silently take its place in the generated Rust.
                    if s.get("enum").is_some() && !at.contains(['.', '[', '{']) {
                        let inline =
                            format!("{}{}", bare(&camel_ident(at)), bare(&camel_ident(name)));
                        if types.contains(&inline) {
                            c.err(format!(
                                "`{at}.{name}`: its inline enum is named `{inline}` in Rust, \
                                 which is also a declared type; declare the enum as a type \
                                 and $ref it, or rename the type"
                            ));
                        }
                    }
                    // typify names fields this way too; two equal names would not compile.
                    if let Some(prev) = fields.insert(bare(&snake_ident(name)).to_string(), name) {
                        c.err(format!(
                            "`{at}`: properties `{prev}` and `{name}` become the same Rust field"
                        ));
                    }
                }
                if let Some(req) = obj.get("required").and_then(Value::as_array) {
                    for r in req {
                        if !r.as_str().is_some_and(|r| p.contains_key(r)) {
                            c.err(format!("`{at}`: required `{r}` is not a property"));
                        }
                    }
                }
            }
            None => c.err(format!("`{at}`: properties is a mapping")),
        }
    }
    if let Some(items) = obj.get("items") {
        check_type_schema(c, items, types, &format!("{at}[]"));
    }
    if let Some(ap) = obj.get("additionalProperties")
        && ap.is_object()
    {
        check_type_schema(c, ap, types, &format!("{at}{{}}"));
    }
}

/// A path with its parameter names left out: `/a/{id}` and `/a/{key}` are one route to the router.
fn path_shape(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_permission_name(s: &str) -> bool {
    match s.split_once(':') {
        Some((a, b)) => [a, b].iter().all(|p| {
            p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        }),
        None => false,
    }
}

fn is_snake(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_lower_camel(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_graphql_type(t: &str) -> bool {
    let t = t.strip_suffix('!').unwrap_or(t);
    match t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(inner) => !inner.starts_with('[') && is_graphql_type(inner),
        None => {
            GRAPHQL_SCALARS.contains(&t)
                || (t.chars().all(|c| c.is_ascii_alphanumeric())
                    && t.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        }
    }
}
