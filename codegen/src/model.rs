//! The schema files as written: serde shapes of the YAML under `schema/`. Unknown keys are errors so
//! a typo is caught instead of silently ignored. See `docs/schema-format.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// `schema/api.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    pub title: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Permission name -> what it allows.
    pub permissions: BTreeMap<String, String>,
    /// Role name -> description and the permissions it holds.
    pub roles: BTreeMap<String, RoleSpec>,
    /// Security scheme name -> scheme.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum SecurityScheme {
    /// `Authorization: Bearer <token>`.
    Bearer {
        description: String,
        #[serde(default)]
        bearer_format: Option<String>,
    },
    /// A key sent in a request header.
    ApiKey { description: String, header: String },
}

/// `schema/types/*.yaml`: named JSON Schema (draft-07 subset) types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypesFile {
    pub types: Map<String, Value>,
}

/// `schema/routes/*.yaml`: the REST operations of one subsystem.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Subsystem name: the OpenAPI tag and the name of the generated trait.
    pub subsystem: String,
    pub description: String,
    pub operations: Vec<OperationSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    pub id: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A permission name from `api.yaml`, or `public`.
    #[serde(default)]
    pub permission: Option<String>,
    /// Path parameter name -> parameter schema, in any order.
    #[serde(default)]
    pub path_params: Map<String, Value>,
    /// Query parameter name -> parameter schema, in declared order.
    #[serde(default)]
    pub query: Map<String, Value>,
    #[serde(default)]
    pub body: Option<BodySpec>,
    pub response: ResponseSpec,
    /// Error statuses beyond those implied by the operation (auth, body, params).
    #[serde(default)]
    pub errors: Vec<u16>,
    #[serde(default)]
    pub examples: Option<ExamplesSpec>,
}

/// A parameter: a scalar JSON Schema plus `required` (query only) and `description`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    #[serde(default)]
    pub minimum: Option<i64>,
    #[serde(default)]
    pub maximum: Option<i64>,
    #[serde(default)]
    pub default: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySpec {
    #[serde(rename = "$ref")]
    pub type_ref: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    pub status: u16,
    pub description: String,
    /// The body's named type; absent for a response without body (204).
    #[serde(default, rename = "$ref")]
    pub type_ref: Option<String>,
    /// A plain-text body instead of JSON (`text/plain; version=0.0.4` for the Prometheus
    /// exposition); the implementation returns the text, the router sets this content type.
    #[serde(default)]
    pub media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamplesSpec {
    #[serde(default)]
    pub request: Option<Value>,
    #[serde(default)]
    pub response: Option<Value>,
}

/// `schema/events/*.yaml`: one event family (a bus topic) and the messages it carries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFamilyFile {
    pub family: String,
    pub description: String,
    /// A permission name, or `authenticated`.
    pub permission: String,
    /// Messages of the WebSocket protocol itself (acks, errors, pongs): sent by a connection,
    /// never published on the bus, not subscribable.
    #[serde(default)]
    pub protocol: bool,
    /// Kept in the change log on disk, so a subscriber that falls behind catches up from it and
    /// sequences survive a restart.
    #[serde(default)]
    pub durable: bool,
    pub messages: Vec<MessageSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    pub message_type: String,
    pub encoding: String,
    #[serde(default)]
    pub description: Option<String>,
    /// For `flat`: the fields of `data`.
    #[serde(default)]
    pub fields: Option<Map<String, Value>>,
    /// For tagged encodings: variant name -> fields.
    #[serde(default)]
    pub variants: Option<Map<String, Value>>,
    /// Fields that may be absent; every other field is required.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Complete wire messages (envelope included), checked against the declaration.
    #[serde(default)]
    pub examples: Vec<Value>,
}

/// `schema/subscriptions/*.yaml`: GraphQL subscriptions, queries and mutations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsFile {
    /// Required, `[]` in a file of queries and mutations only: an empty file is a mistake.
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Fields of the GraphQL `Query` root.
    #[serde(default)]
    pub queries: Vec<QuerySpec>,
    /// Fields of the GraphQL `Mutation` root (same shape as a query).
    #[serde(default)]
    pub mutations: Vec<QuerySpec>,
}

/// A field of the `Query` or `Mutation` root: resolved once per request by a method of the
/// generated trait.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    pub name: String,
    pub description: String,
    /// Required unless `rest` names the operation whose permission the field takes.
    #[serde(default)]
    pub permission: Option<String>,
    /// The REST operation the field mirrors: its permission, and the context its implementation
    /// is called with.
    #[serde(default)]
    pub rest: Option<String>,
    #[serde(default)]
    pub args: Map<String, Value>,
    /// With `rest`: argument -> the operation's input it feeds, where their names differ (an
    /// argument otherwise feeds the path parameter, query parameter or body property of its
    /// snake_case name, or the whole body when its type is the body's).
    #[serde(default)]
    pub bind: BTreeMap<String, BindSpec>,
    /// A named type from `schema/types/`, or a built-in scalar (`Boolean`, ...).
    pub returns: String,
}

/// Where a `rest` field's argument goes: an input's name, or `{to, encode: json}` for an
/// argument passed as its JSON text (a structured argument feeding a string parameter).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BindSpec {
    To(String),
    Encoded { to: String, encode: Encode },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encode {
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    pub name: String,
    pub description: String,
    /// Required unless `rest` names the operation whose permission the field takes.
    #[serde(default)]
    pub permission: Option<String>,
    /// The REST operation the field mirrors (see `QuerySpec::rest`).
    #[serde(default)]
    pub rest: Option<String>,
    /// Argument name -> GraphQL type (`String!`, `[Int!]`, ...), in declared order.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// A named type from `schema/types/`.
    pub returns: String,
    pub source: SourceSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The event family whose topic feeds the subscription.
    #[serde(default)]
    pub topic: Option<String>,
    /// Instead of a topic: what the source samples on a timer (documentation; e.g. the
    /// running-queries registry). Exactly one of `topic` and `poll` is given.
    #[serde(default)]
    pub poll: Option<String>,
    /// The message of the topic the subscription returns, decoded into `returns`. With it the
    /// generator writes the whole source (no hand-written method) and checks that every property
    /// of `returns` has a field of the event's own type.
    #[serde(default)]
    pub event: Option<String>,
    /// Instead of `event`, for a hand-written source: the message of the topic its method
    /// receives, decoded into the message's generated type (so what it reads is checked by the
    /// compiler against the event's declared type). A topic-fed source has one of the two.
    #[serde(default)]
    pub receives: Option<String>,
    /// Returned property -> event field, where the names differ (with `event`).
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Arguments applied as server-side filters: their names (a hand-written source applies
    /// them), or with `event` a map of argument -> `{eq: <event field>}` / `{in: <event field>}`.
    #[serde(default)]
    pub filter: FilterSpec,
    /// On a durable topic: the `Int` argument carrying the sequence a subscriber last received;
    /// the subscription starts just after it, reading what it missed from the change log.
    #[serde(default)]
    pub resume: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FilterSpec {
    Args(Vec<String>),
    Rules(Map<String, Value>),
}

impl Default for FilterSpec {
    fn default() -> Self {
        FilterSpec::Args(Vec::new())
    }
}

/// `schema/websockets.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketsFile {
    pub endpoints: Vec<WebSocketSpec>,
    /// Messages a client may send.
    #[serde(default)]
    pub client_messages: Vec<ClientMessageSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientMessageSpec {
    pub message_type: String,
    pub description: String,
    /// A named type for `data`; any JSON when absent.
    #[serde(default)]
    pub data: Option<String>,
    /// Accepted only on endpoints that stream statements (`queries: true`).
    #[serde(default)]
    pub queries: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// The trait method's name; derived from the path when absent (`/api/v1/ws/metrics` -> `ws_metrics`).
    #[serde(default)]
    pub id: Option<String>,
    pub path: String,
    pub summary: String,
    pub permission: String,
    /// Event families a client of this endpoint receives or may subscribe to.
    pub topics: Vec<String>,
    #[serde(default)]
    pub query: Map<String, Value>,
    /// The query parameter giving the seconds between messages (an integer of at least 1).
    #[serde(default)]
    pub interval: Option<String>,
    /// Query parameters that keep only the events whose `data` has that key with that value.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Clients may send `query` and `cancel` messages (query streaming) besides the event
    /// messages.
    #[serde(default)]
    pub queries: bool,
}
