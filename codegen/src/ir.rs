//! The validated model every emitter reads. Built only by `validate`, so emitters can trust it:
//! references resolve, names are unique, permissions exist.

use serde_json::Value;

use crate::model::SecurityScheme;

#[derive(Debug, Clone)]
pub struct Api {
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    /// Sorted by name.
    pub permissions: Vec<Permission>,
    /// Sorted by name.
    pub roles: Vec<Role>,
    /// Sorted by name.
    pub security_schemes: Vec<(String, SecurityScheme)>,
    /// Files in name order, types in file order.
    pub types: Vec<NamedType>,
    /// Files in name order.
    pub subsystems: Vec<Subsystem>,
    pub events: Vec<EventFamily>,
    pub subscriptions: Vec<Subscription>,
    pub queries: Vec<Query>,
    /// Fields of the `Mutation` root; the same shape as queries.
    pub mutations: Vec<Query>,
    pub websockets: Vec<WebSocketEndpoint>,
    /// What a client may send on the WebSocket endpoints, in declared order.
    pub client_messages: Vec<ClientMessage>,
}

/// A message a client sends on a WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct ClientMessage {
    pub message_type: String,
    pub description: String,
    /// The named type of `data`; `None` for any JSON.
    pub data: Option<String>,
    /// Only on endpoints with `queries: true`.
    pub queries: bool,
}

#[derive(Debug, Clone)]
pub struct Permission {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NamedType {
    pub name: String,
    /// The draft-07 schema as written, with `$ref: Name` short references.
    pub schema: Value,
}

#[derive(Debug, Clone)]
pub struct Subsystem {
    pub name: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// Any authenticated caller (their own session, their own API keys).
    Authenticated,
    Requires(String),
}

impl Access {
    /// `public`, `authenticated` or a permission name, as written in the schema.
    pub fn from_label(label: &str) -> Access {
        match label {
            "public" => Access::Public,
            "authenticated" => Access::Authenticated,
            p => Access::Requires(p.to_string()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Requires(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: Method,
    pub path: String,
    pub summary: String,
    pub description: Option<String>,
    pub access: Access,
    /// In the order they appear in the path.
    pub path_params: Vec<Param>,
    pub query: Vec<Param>,
    pub body: Option<Body>,
    pub response: Response,
    /// Every error status the operation can answer, implied ones included; sorted.
    pub errors: Vec<u16>,
    pub request_example: Option<Value>,
    pub response_example: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub description: Option<String>,
    pub required: bool,
    pub format: Option<String>,
    pub enum_values: Option<Vec<String>>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub default: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub type_name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub description: String,
    pub type_name: Option<String>,
    /// A `text/*` media type: the body is text, not JSON (`type_name` is then `None`).
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventFamily {
    pub family: String,
    pub description: String,
    pub access: Access,
    /// Protocol messages: sent by connections, not a bus topic.
    pub protocol: bool,
    /// Kept in the change log on disk.
    pub durable: bool,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `"data": {"Variant": {...fields}}`.
    ExternallyTagged,
    /// `"data": {"event_type": "Variant", ...fields}`.
    EventTypeTagged,
    /// `"data": {...fields}`.
    Flat,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        Some(match s {
            "externally_tagged" => Encoding::ExternallyTagged,
            "event_type_tagged" => Encoding::EventTypeTagged,
            "flat" => Encoding::Flat,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub message_type: String,
    pub encoding: Encoding,
    pub description: Option<String>,
    /// For `Flat`, one unnamed variant holding the fields.
    pub variants: Vec<Variant>,
    pub examples: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Variant {
    /// Empty for the fields of a flat message.
    pub name: String,
    /// Field name -> JSON Schema, in declared order.
    pub fields: Vec<(String, Value)>,
    pub required: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    /// The schema file's stem (`table_data`): fields of one file form one Rust trait.
    pub group: String,
    /// The REST operation the field mirrors, and its index in `OPERATIONS`.
    pub rest: Option<(String, usize)>,
    pub description: String,
    pub permission: String,
    pub args: Vec<(String, String)>,
    pub returns: String,
    /// The bus topic feeding the subscription; `None` for a polled source.
    pub topic: Option<String>,
    /// What a polled source samples.
    pub poll: Option<String>,
    /// The arguments applied as filters.
    pub filter: Vec<String>,
    /// Set when the generator writes the whole source: one message of the topic, decoded.
    pub decode: Option<EventDecode>,
    /// For a hand-written topic-fed source: the message its method receives, typed.
    pub receives: Option<String>,
    /// The topic keeps its events in the change log: a hand-written source receives each
    /// message with its sequence, and the subscription may resume.
    pub durable: bool,
    /// The argument a subscription resumes after (`source.resume`).
    pub resume: Option<String>,
}

/// How a generated subscription source turns one message type into the returned type; every
/// piece checked against the event's declared fields at build time.
#[derive(Debug, Clone)]
pub struct EventDecode {
    pub message_type: String,
    /// (event field, property) where the names differ.
    pub renames: Vec<(String, String)>,
    /// (event field, event value, returned value) where an enum's spellings differ in case.
    pub values: Vec<(String, String, String)>,
    /// The returned `timestamp` is the delivery time: the event has none.
    pub stamped: bool,
    pub filters: Vec<FilterRule>,
}

#[derive(Debug, Clone)]
pub struct FilterRule {
    pub arg: String,
    pub field: String,
    /// `in` (the field is one of the argument's values) rather than `eq`.
    pub any_of: bool,
}

/// A field of the GraphQL `Query` or `Mutation` root.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: String,
    /// The schema file's stem: fields of one file form one Rust trait.
    pub group: String,
    /// The REST operation the field mirrors, and its index in `OPERATIONS`.
    pub rest: Option<(String, usize)>,
    pub description: String,
    pub permission: String,
    pub args: Vec<(String, String)>,
    pub returns: String,
    /// With `rest`: how the generated resolver calls the operation (always set for such a field).
    pub adapter: Option<RestAdapter>,
}

/// How the generated resolver of a `rest` field builds the operation's inputs from its
/// arguments; every binding checked against the operation's parameters and body at build time.
#[derive(Debug, Clone)]
pub struct RestAdapter {
    /// The subsystem whose trait serves the operation.
    pub subsystem: String,
    pub operation: String,
    /// `None` when the operation has no path parameters (no path struct), likewise `query`.
    pub path: Option<Vec<Binding>>,
    pub query: Option<Vec<Binding>>,
    /// The body's type name and how it is built.
    pub body: Option<(String, BodyFrom)>,
    /// The operation answers no content; the field answers `true`.
    pub empty_response: bool,
}

/// One argument feeding one input (a parameter or a body property) of the operation.
#[derive(Debug, Clone)]
pub struct Binding {
    pub arg: String,
    pub key: String,
    /// Passed as its JSON text.
    pub json_text: bool,
}

#[derive(Debug, Clone)]
pub enum BodyFrom {
    /// One argument of the body's type; when it is left out, the body's defaults.
    Whole { arg: String, nullable: bool },
    /// The body's properties, one argument each (unbound ones take their defaults).
    Fields(Vec<Binding>),
}

#[derive(Debug, Clone)]
pub struct WebSocketEndpoint {
    pub id: String,
    pub path: String,
    pub summary: String,
    pub access: Access,
    pub topics: Vec<String>,
    pub query: Vec<Param>,
    /// The query parameter giving the seconds between messages.
    pub interval: Option<String>,
    /// Query parameters that filter events on the `data` key of their name.
    pub filters: Vec<String>,
    /// The endpoint streams statements (`query`, `cancel` messages).
    pub queries: bool,
}
