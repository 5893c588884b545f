//! Helpers the generated GraphQL code (`crate::graphql`) calls: the caller's identity, the
//! permission check, argument decoding, and turning JSON values and typed streams into
//! async-graphql field values.

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext, TypeRef};
use async_graphql::{ErrorExtensions, Value as GqlValue};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::OperationMeta;
use crate::graphql::FieldMeta;
use crate::runtime::{ApiError, Identity, Principal, RequestContext};
use crate::{Access, Permission};

/// Who runs a GraphQL operation: put into every request's data by the transport.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Arc<Identity>,
    pub client_ip: Option<IpAddr>,
    /// The operation's subscription queues: the transport gives each operation its own and
    /// applies the backpressure rules to what its sources register.
    pub queues: Arc<Queues>,
}

/// How full one subscription's queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFill {
    pub topic: &'static str,
    /// Events published and not yet taken by the subscriber.
    pub depth: u64,
    /// Events held before the oldest are dropped.
    pub capacity: u64,
    /// Events past the capacity are read back from the change log, not dropped.
    pub lossless: bool,
}

type Gauge = Box<dyn Fn() -> QueueFill + Send + Sync>;

/// The queues of one operation's subscriptions, each measured when asked.
#[derive(Default)]
pub struct Queues {
    gauges: std::sync::Mutex<Vec<Gauge>>,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues {
    /// A source's queue, to be measured by `gauge` for as long as the operation runs.
    pub fn watch(&self, gauge: impl Fn() -> QueueFill + Send + Sync + 'static) {
        self.gauges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(gauge));
    }

    /// The fullest queue now, relative to its capacity.
    pub fn fullest(&self) -> Option<QueueFill> {
        let gauges = self
            .gauges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gauges.iter().map(|g| g()).max_by(|a, b| {
            // depth / capacity, compared without division.
            (u128::from(a.depth) * u128::from(b.capacity))
                .cmp(&(u128::from(b.depth) * u128::from(a.capacity)))
        })
    }
}

/// The context a field mirroring a REST operation (`rest:` in YAML) calls that operation's
/// implementation with: this caller, as if the request had come over HTTP.
pub fn rest_context(caller: &Caller, operation: &'static OperationMeta) -> RequestContext {
    RequestContext {
        request_id: None,
        operation,
        principal: Principal::User(Arc::clone(&caller.identity)),
        client_ip: caller.client_ip,
        peer: None,
    }
}

/// The path, query or body of a REST operation as a mirroring field's generated resolver builds
/// it from its arguments: JSON deserialized into the operation's own type, so serde applies the
/// defaults and types exactly as for an HTTP request. Arguments left out (null) are left out.
#[derive(Debug, Default)]
pub struct RestInput {
    fields: serde_json::Map<String, Value>,
}

impl RestInput {
    pub fn with<V: Serialize>(mut self, key: &str, value: &V) -> Result<RestInput, ApiError> {
        let value = serde_json::to_value(value).map_err(ApiError::internal)?;
        if !value.is_null() {
            self.fields.insert(key.to_string(), value);
        }
        Ok(self)
    }

    /// The argument as its JSON text: a structured argument feeding a string parameter (the
    /// rows `where` conditions become the REST `filter` text the filter parser reads).
    pub fn with_json_text<V: Serialize>(
        mut self,
        key: &str,
        value: &V,
    ) -> Result<RestInput, ApiError> {
        let value = serde_json::to_value(value).map_err(ApiError::internal)?;
        if !value.is_null() {
            self.fields
                .insert(key.to_string(), Value::String(value.to_string()));
        }
        Ok(self)
    }

    pub fn build<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        serde_json::from_value(Value::Object(self.fields))
            .map_err(|e| invalid_argument(format!("invalid arguments: {e}")))
    }
}

impl Caller {
    pub fn has(&self, permission: Permission) -> bool {
        self.identity.has(permission)
    }
}

/// What a subscription source returns: a stream of result values, or why it cannot start.
/// An item is a result, or an error that ends the subscription (the source stops after it).
pub type SourceResult<T> = Result<BoxStream<'static, Result<T, ApiError>>, ApiError>;

/// How a property is turned into GraphQL output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Enum,
    Object,
}

/// Parses a GraphQL type reference such as `[AggregateInput!]!`.
pub fn type_ref(t: &str) -> TypeRef {
    if let Some(inner) = t.strip_suffix('!') {
        return TypeRef::NonNull(Box::new(type_ref(inner)));
    }
    match t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(item) => TypeRef::List(Box::new(type_ref(item))),
        None => TypeRef::Named(t.to_string().into()),
    }
}

/// A GraphQL error carrying the REST error's code (`FORBIDDEN`, `INVALID_ARGUMENT`, ...).
pub fn error(e: ApiError) -> async_graphql::Error {
    let (code, status) = (e.code, e.status.as_u16());
    let details = e.details.and_then(|d| GqlValue::from_json(*d).ok());
    async_graphql::Error::new(e.message).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", status);
        if let Some(details) = &details {
            ext.set("details", details.clone());
        }
    })
}

/// The field's access rule against the caller in the request data.
pub fn authorize(ctx: &ResolverContext<'_>, field: &FieldMeta) -> Result<Caller, ApiError> {
    let caller = ctx
        .data_opt::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("credentials required"))?;
    match field.access {
        Access::Requires(p) if !caller.has(p) => Err(ApiError::forbidden(format!(
            "permission `{}` required for `{}`",
            p.as_str(),
            field.name
        ))),
        _ => Ok(caller),
    }
}

/// An input type of the schema: its name and its fields as (GraphQL name, property key,
/// GraphQL type). The generated `INPUTS` table lists them all.
pub type InputDef = (
    &'static str,
    &'static [(&'static str, &'static str, &'static str)],
);

/// Decodes the field's arguments into the generated argument struct. `declared` gives each
/// argument's GraphQL type, so the lowerCamelCase fields of input objects become the snake_case
/// properties the shared Rust types expect; values of the `JSON` scalar are left as they are.
pub fn args<T: DeserializeOwned>(
    ctx: &ResolverContext<'_>,
    declared: &[(&str, &str)],
    inputs: &[InputDef],
) -> Result<T, ApiError> {
    let mut map = serde_json::Map::new();
    for (name, value) in ctx.args.iter() {
        let json = value
            .as_value()
            .clone()
            .into_json()
            .map_err(|e| invalid_argument(format!("argument `{name}`: {e}")))?;
        let json = match declared.iter().find(|(n, _)| *n == name.as_str()) {
            Some((_, ty)) => rekey(json, ty, inputs),
            None => json,
        };
        map.insert(name.to_string(), json);
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| invalid_argument(format!("invalid arguments: {e}")))
}

/// Renames the fields of an input-object value (of GraphQL type `ty`) to their property keys.
fn rekey(value: Value, ty: &str, inputs: &[InputDef]) -> Value {
    let ty = ty.strip_suffix('!').unwrap_or(ty);
    if let Some(item) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return match value {
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| rekey(v, item, inputs)).collect())
            }
            other => other,
        };
    }
    let (Some((_, fields)), Value::Object(object)) =
        (inputs.iter().find(|(name, _)| *name == ty), &value)
    else {
        return value;
    };
    let mut out = serde_json::Map::new();
    for (name, v) in object {
        match fields.iter().find(|(n, _, _)| n == name) {
            Some((_, key, field_ty)) => {
                out.insert((*key).to_string(), rekey(v.clone(), field_ty, inputs));
            }
            None => {
                out.insert(name.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A started source as the subscription field's stream of JSON values.
pub fn stream<'a, T: Serialize + Send + 'static>(
    started: SourceResult<T>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<FieldValue<'a>>> + Send + 'a> {
    let s = started.map_err(error)?;
    Ok(s.map(|item| {
        serde_json::to_value(item.map_err(error)?)
            .map(FieldValue::owned_any)
            .map_err(|e| async_graphql::Error::new(format!("cannot encode result: {e}")))
    }))
}

/// A query's result as a field value.
pub fn value<T: Serialize>(
    result: Result<T, ApiError>,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    let v = result.map_err(error)?;
    let json = serde_json::to_value(&v)
        .map_err(|e| async_graphql::Error::new(format!("cannot encode result: {e}")))?;
    Ok(Some(FieldValue::owned_any(json)))
}

/// A query's or mutation's scalar result (`Boolean`, `JSON`, ...) as a field value.
pub fn scalar<T: Serialize>(
    result: Result<T, ApiError>,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    let v = result.map_err(error)?;
    let json = serde_json::to_value(&v)
        .map_err(|e| async_graphql::Error::new(format!("cannot encode result: {e}")))?;
    Ok(GqlValue::from_json(json).ok().map(FieldValue::value))
}

/// Resolves one property of an object value (a `serde_json::Value` parent).
pub fn property<'a>(ctx: ResolverContext<'a>, key: &'static str, kind: Kind) -> FieldFuture<'a> {
    let value = ctx
        .parent_value
        .downcast_ref::<Value>()
        .and_then(|parent| parent.get(key))
        .cloned()
        .unwrap_or(Value::Null);
    FieldFuture::Value(convert(value, kind))
}

fn convert(value: Value, kind: Kind) -> Option<FieldValue<'static>> {
    match (value, kind) {
        (Value::Null, _) => None,
        (Value::Array(items), _) => Some(FieldValue::list(
            items
                .into_iter()
                .map(|v| convert(v, kind).unwrap_or(FieldValue::NULL)),
        )),
        (v @ Value::Object(_), Kind::Object) => Some(FieldValue::owned_any(v)),
        (Value::String(s), Kind::Enum) => Some(FieldValue::value(GqlValue::Enum(
            async_graphql::Name::new(s),
        ))),
        (v, _) => GqlValue::from_json(v).ok().map(FieldValue::value),
    }
}

/// 400 `INVALID_ARGUMENT`: an argument a source cannot use.
/// A resume argument (`source.resume`): the sequence a subscriber last received, so the
/// subscription starts just after it. Sequences start at 1, so 0 means "from the oldest kept".
pub fn resume_after(name: &str, value: Option<i64>) -> Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| invalid_argument(format!("`{name}` is a sequence (0 or more), got {v}"))),
    }
}

pub fn invalid_argument(message: impl Into<String>) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUTS: &[InputDef] = &[
        (
            "TableCreate",
            &[
                ("name", "name", "String!"),
                ("columns", "columns", "[ColumnSpec!]!"),
                ("withoutRowid", "without_rowid", "Boolean"),
            ],
        ),
        (
            "ColumnSpec",
            &[
                ("primaryKey", "primary_key", "Boolean"),
                ("default", "default", "JSON"),
            ],
        ),
    ];

    #[test]
    fn input_fields_get_their_property_keys_and_json_values_stay_as_they_are() {
        let value = serde_json::json!({
            "name": "t",
            "withoutRowid": true,
            "columns": [{"primaryKey": true, "default": {"someKey": 1}}],
        });
        assert_eq!(
            rekey(value, "TableCreate!", INPUTS),
            serde_json::json!({
                "name": "t",
                "without_rowid": true,
                "columns": [{"primary_key": true, "default": {"someKey": 1}}],
            })
        );
        // A JSON argument (row values) is never renamed.
        let values = serde_json::json!({"firstName": "ann"});
        assert_eq!(rekey(values.clone(), "JSON!", INPUTS), values);
    }
}
