//! The GraphQL API: `schema.graphql` (SDL) and the server Rust that builds the same schema with
//! `async_graphql::dynamic` at startup. Both render one model derived from the IR, so the served
//! schema and the committed SDL cannot disagree (a test compares them anyway).
//!
//! Types come from `schema/types/`: a type reached from an argument is an `input`, one reached
//! from a result is a `type`; a string type whose `enum` values are GraphQL names is an `enum`.
//! Property names are snake_case in the schema and lowerCamelCase in GraphQL.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::emit::header;
use crate::ir::{Access, Api, NamedType};

/// How a field's value is turned into GraphQL output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Enum,
    Object,
}

#[derive(Debug, Clone)]
pub struct Field {
    /// lowerCamelCase GraphQL name.
    pub name: String,
    /// The property name in the JSON value.
    pub key: String,
    /// GraphQL type, e.g. `[RowData!]!`.
    pub ty: String,
    pub kind: Kind,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ObjectType {
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub enums: BTreeMap<String, (Option<String>, Vec<String>)>,
    pub inputs: BTreeMap<String, ObjectType>,
    pub objects: BTreeMap<String, ObjectType>,
    pub json_scalar: bool,
}

/// The scalar of fields without a GraphQL type (no `type`, or a map).
pub const JSON: &str = "JSON";

pub fn model(api: &Api) -> Model {
    let mut m = Model::default();
    let mut outputs: Vec<String> = api
        .subscriptions
        .iter()
        .map(|s| s.returns.clone())
        .chain(api.queries.iter().map(|q| q.returns.clone()))
        .chain(api.mutations.iter().map(|q| q.returns.clone()))
        .collect();
    let mut inputs: Vec<String> = api
        .subscriptions
        .iter()
        .flat_map(|s| s.args.iter())
        .chain(api.queries.iter().flat_map(|q| q.args.iter()))
        .chain(api.mutations.iter().flat_map(|q| q.args.iter()))
        .map(|(_, t)| base(t).to_string())
        .collect();
    // `JSON` named directly by an argument or a result.
    m.json_scalar = inputs.iter().chain(&outputs).any(|t| t == JSON);
    let mut seen = BTreeSet::new();
    while let Some(name) = outputs.pop() {
        if seen.insert(("out", name.clone())) {
            add_type(api, &name, false, &mut m, &mut outputs);
        }
    }
    while let Some(name) = inputs.pop() {
        if seen.insert(("in", name.clone())) {
            add_type(api, &name, true, &mut m, &mut inputs);
        }
    }
    m
}

fn add_type(api: &Api, name: &str, input: bool, m: &mut Model, wanted: &mut Vec<String>) {
    let Some(t) = api.types.iter().find(|t| t.name == name) else {
        return; // a built-in scalar
    };
    let description = t
        .schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| d.trim().to_string());
    let Some(props) = t
        .schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
    else {
        match enum_values(t) {
            Some(values) => {
                m.enums.insert(t.name.clone(), (description, values));
            }
            None => m.json_scalar = true,
        }
        return;
    };
    let required: Vec<&str> = t
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = Vec::new();
    for (key, schema) in props {
        let (ty, kind) = field_type(api, schema, wanted, m);
        let bang = if required.contains(&key.as_str()) {
            "!"
        } else {
            ""
        };
        fields.push(Field {
            name: lower_camel(key),
            key: key.clone(),
            ty: format!("{ty}{bang}"),
            kind,
            description: schema
                .get("description")
                .and_then(Value::as_str)
                .map(|d| d.trim().to_string()),
        });
    }
    let object = ObjectType {
        name: t.name.clone(),
        description,
        fields,
    };
    if input {
        m.inputs.insert(t.name.clone(), object);
    } else {
        m.objects.insert(t.name.clone(), object);
    }
}

fn enum_values(t: &NamedType) -> Option<Vec<String>> {
    let values: Vec<String> = t
        .schema
        .get("enum")
        .and_then(Value::as_array)?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()?;
    (!values.is_empty() && values.iter().all(|v| is_enum_value(v))).then_some(values)
}

fn field_type(
    api: &Api,
    schema: &Value,
    wanted: &mut Vec<String>,
    m: &mut Model,
) -> (String, Kind) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        wanted.push(r.to_string());
        let kind = match api.types.iter().find(|t| t.name == r) {
            Some(t) if t.schema.get("properties").is_some() => Kind::Object,
            Some(t) if enum_values(t).is_some() => Kind::Enum,
            _ => Kind::Scalar,
        };
        return (r.to_string(), kind);
    }
    let ty = match schema.get("type") {
        Some(Value::Array(ts)) => ts.iter().find(|t| *t != "null").cloned(),
        other => other.cloned(),
    };
    let scalar = |s: &str| (s.to_string(), Kind::Scalar);
    match ty.as_ref().and_then(Value::as_str) {
        Some("string") => scalar("String"),
        Some("integer") => scalar("Int"),
        Some("number") => scalar("Float"),
        Some("boolean") => scalar("Boolean"),
        Some("array") => {
            let (inner, kind) = schema
                .get("items")
                .map(|i| field_type(api, i, wanted, m))
                .unwrap_or_else(|| scalar("String"));
            (format!("[{inner}!]"), kind)
        }
        _ => {
            m.json_scalar = true;
            scalar(JSON)
        }
    }
}

/// The named type inside a GraphQL type (`[Foo!]!` -> `Foo`).
pub fn base(t: &str) -> &str {
    t.trim_matches(|c| matches!(c, '[' | ']' | '!'))
}

pub fn emit(api: &Api) -> String {
    let mut out = format!("# {}\n", header());
    if api.subscriptions.is_empty() && api.queries.is_empty() && api.mutations.is_empty() {
        out.push_str("# No GraphQL fields are declared in schema/subscriptions/ yet.\n");
        return out;
    }
    let m = model(api);
    let desc = |out: &mut String, d: &Option<String>, indent: &str| {
        if let Some(d) = d {
            out.push_str(&format!("{indent}\"\"\"{d}\"\"\"\n"));
        }
    };
    out.push('\n');
    if m.json_scalar {
        out.push_str(&format!("\"\"\"Any JSON value.\"\"\"\nscalar {JSON}\n\n"));
    }
    for (name, (d, values)) in &m.enums {
        desc(&mut out, d, "");
        out.push_str(&format!("enum {name} {{\n"));
        for v in values {
            out.push_str(&format!("  {v}\n"));
        }
        out.push_str("}\n\n");
    }
    for (keyword, types) in [("input", &m.inputs), ("type", &m.objects)] {
        for t in types.values() {
            desc(&mut out, &t.description, "");
            out.push_str(&format!("{keyword} {} {{\n", t.name));
            for f in &t.fields {
                desc(&mut out, &f.description, "  ");
                out.push_str(&format!("  {}: {}\n", f.name, f.ty));
            }
            out.push_str("}\n\n");
        }
    }
    let args = |args: &[(String, String)]| {
        if args.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            format!("({})", list.join(", "))
        }
    };
    out.push_str("type Query {\n");
    for q in &api.queries {
        desc(&mut out, &Some(q.description.trim().to_string()), "  ");
        out.push_str(&format!("  {}{}: {}!\n", q.name, args(&q.args), q.returns));
    }
    out.push_str("}\n\n");
    if !api.mutations.is_empty() {
        out.push_str("type Mutation {\n");
        for q in &api.mutations {
            desc(&mut out, &Some(q.description.trim().to_string()), "  ");
            out.push_str(&format!("  {}{}: {}!\n", q.name, args(&q.args), q.returns));
        }
        out.push_str("}\n\n");
    }
    if !api.subscriptions.is_empty() {
        out.push_str("type Subscription {\n");
        for s in &api.subscriptions {
            desc(&mut out, &Some(s.description.trim().to_string()), "  ");
            out.push_str(&format!("  {}{}: {}!\n", s.name, args(&s.args), s.returns));
        }
        out.push_str("}\n\n");
    }
    out.push_str("schema {\n  query: Query\n");
    if !api.mutations.is_empty() {
        out.push_str("  mutation: Mutation\n");
    }
    if !api.subscriptions.is_empty() {
        out.push_str("  subscription: Subscription\n");
    }
    out.push_str("}\n");
    out
}

/// The server side: argument structs, the `GraphQlSources` trait (one method per subscription
/// returning a stream, one per query), the permission table, and the dynamic schema builder whose
/// resolvers check each field's permission before calling the trait.
pub fn rust(api: &Api, types: &BTreeMap<String, TokenStream>) -> TokenStream {
    if api.subscriptions.is_empty() && api.queries.is_empty() && api.mutations.is_empty() {
        return quote! {};
    }
    let m = model(api);
    let mut defs = Vec::new();
    for (name, (d, values)) in &m.enums {
        let d = d.clone().unwrap_or_default();
        defs.push(quote! {
            ty.push(gd::Enum::new(#name).description(#d) #(.item(#values))* .into());
        });
    }
    for t in m.inputs.values() {
        let name = &t.name;
        let d = t.description.clone().unwrap_or_default();
        let fields = t.fields.iter().map(|f| {
            let (n, ty) = (&f.name, &f.ty);
            let fd = f.description.clone().unwrap_or_default();
            quote! { .field(gd::InputValue::new(#n, gr::type_ref(#ty)).description(#fd)) }
        });
        defs.push(
            quote! { ty.push(gd::InputObject::new(#name).description(#d) #(#fields)* .into()); },
        );
    }
    for t in m.objects.values() {
        let name = &t.name;
        let d = t.description.clone().unwrap_or_default();
        let fields = t.fields.iter().map(|f| {
            let (n, key, ty) = (&f.name, &f.key, &f.ty);
            let fd = f.description.clone().unwrap_or_default();
            let kind = match f.kind {
                Kind::Scalar => quote! { gr::Kind::Scalar },
                Kind::Enum => quote! { gr::Kind::Enum },
                Kind::Object => quote! { gr::Kind::Object },
            };
            quote! { .field(gd::Field::new(#n, gr::type_ref(#ty), |ctx| gr::property(ctx, #key, #kind)).description(#fd)) }
        });
        defs.push(quote! { ty.push(gd::Object::new(#name).description(#d) #(#fields)* .into()); });
    }
    if m.json_scalar {
        defs.push(
            quote! { ty.push(gd::Scalar::new(#JSON).description("Any JSON value.").into()); },
        );
    }

    let mut metas = Vec::new();
    let mut arg_structs = Vec::new();
    // Trait methods per schema file.
    let mut groups: BTreeMap<&str, Vec<TokenStream>> = BTreeMap::new();
    let mut sub_fields = Vec::new();
    let mut query_fields = Vec::new();
    let mut mutation_fields = Vec::new();
    let entries = api
        .queries
        .iter()
        .map(|q| (Root::Query, q))
        .chain(api.mutations.iter().map(|q| (Root::Mutation, q)))
        .map(|(root, q)| {
            (
                root,
                &q.name,
                &q.description,
                &q.permission,
                &q.args,
                &q.returns,
                &q.group,
                &q.rest,
                None,
                None,
                q.adapter.as_ref(),
                None,
            )
        })
        .chain(api.subscriptions.iter().map(|s| {
            (
                Root::Subscription,
                &s.name,
                &s.description,
                &s.permission,
                &s.args,
                &s.returns,
                &s.group,
                &s.rest,
                Some(s.topic.clone()),
                s.decode.as_ref(),
                None,
                s.receives.as_deref(),
            )
        }));
    let mut adapters = Vec::new();
    for (
        index,
        (
            root,
            name,
            description,
            permission,
            args,
            returns,
            group,
            rest,
            topic,
            decode,
            adapter,
            receives,
        ),
    ) in entries.enumerate()
    {
        // A field mirroring a REST operation is called with that operation's context.
        let (rest_param, rest_arg, rest_ctx, rest_meta) = match rest {
            Some((id, op)) => (
                quote! { , rest: super::rt::RequestContext },
                quote! { , rest },
                quote! { let rest = gr::rest_context(&caller, &super::OPERATIONS[#op]); },
                quote! { Some(#id) },
            ),
            None => (quote! {}, quote! {}, quote! {}, quote! { None }),
        };
        let (is_sub, is_mutation) = (root == Root::Subscription, root == Root::Mutation);
        let access = access_tokens(permission);
        let topic_name = topic.flatten();
        let topic = match &topic_name {
            Some(t) => quote! { Some(#t) },
            None => quote! { None },
        };
        metas.push(quote! { FieldMeta { name: #name, subscription: #is_sub, mutation: #is_mutation, access: #access, topic: #topic, rest: #rest_meta } });
        let method = ident(&crate::naming::snake_ident(name));
        let args_ident = format_ident!("{}Args", name.to_upper_camel_case());
        let arg_fields = args.iter().map(|(n, t)| {
            let f = ident(&crate::naming::snake_ident(n));
            let rty = rust_type(t, types);
            quote! { #[serde(rename = #n)] pub #f: #rty }
        });
        let arg_doc = format!(" Arguments of `{name}`.");
        arg_structs.push(quote! {
            #[doc = #arg_doc]
            #[derive(Debug, Clone, ::serde::Deserialize, ::serde::Serialize)]
            #[serde(deny_unknown_fields)]
            pub struct #args_ident { #(#arg_fields,)* }
        });
        let ret = rust_type(&format!("{returns}!"), types);
        let arg_types = args.iter().map(|(n, t)| quote! { (#n, #t) });
        let arg_types = quote! { &[#(#arg_types),*] };
        // Object results are JSON values resolved field by field; scalars are GraphQL values.
        let to_value = if m.objects.contains_key(returns.as_str()) {
            quote! { gr::value }
        } else {
            quote! { gr::scalar }
        };
        let doc = format!(" {}\n\n Access `{}`.", description.trim(), permission);
        let arg_defs: Vec<TokenStream> = args
            .iter()
            .map(|(n, t)| quote! { .argument(gd::InputValue::new(#n, gr::type_ref(#t))) })
            .collect();
        let field_ty = format!("{returns}!");
        let d = description.trim().to_string();
        let stream = api.subscriptions.iter().find(|s| is_sub && &s.name == name);
        let durable = stream.is_some_and(|s| s.durable);
        // Where the subscription starts: now, or just after the sequence its resume argument
        // names (validation made it a nullable `Int`).
        let after = match stream.and_then(|s| s.resume.as_ref()) {
            Some(arg) => {
                let f = ident(&crate::naming::snake_ident(arg));
                quote! { gr::resume_after(#arg, args.#f)? }
            }
            None => quote! { None },
        };
        if let (Some(decode), Some(t)) = (decode, &topic_name) {
            // Written whole here: the topic's events of one message type, filtered and decoded
            // into the returned type as the YAML says (checked against the event's type).
            let shape = event_shape(decode);
            sub_fields.push(quote! {
                let s = ::std::sync::Arc::clone(&sources);
                root = root.field(gd::SubscriptionField::new(#name, gr::type_ref(#field_ty), move |ctx| {
                    let s = ::std::sync::Arc::clone(&s);
                    static SHAPE: es::EventShape = #shape;
                    // The permission check runs before the arguments are read or a source starts.
                    let started = gr::authorize(&ctx, &FIELDS[#index])
                        .and_then(|caller| Ok((caller, gr::args::<#args_ident>(&ctx, #arg_types, INPUTS)?)))
                        .and_then(|(caller, args)| {
                            let after = #after;
                            let args = ::serde_json::to_value(&args).map_err(ApiError::internal)?;
                            let events = s.listen(&caller, #t, after)?;
                            es::event_source::<#ret, _>(events, <T as GraphQlTopics>::payload, &SHAPE, args)
                        });
                    gd::SubscriptionFieldFuture::new(async move { gr::stream(started) })
                }) #(#arg_defs)* .description(#d));
            });
        } else if is_sub {
            let methods = groups.entry(group.as_str()).or_default();
            // A topic-fed subscription gets its topic's events from the generated code: the
            // topic is named once, in YAML, and the hand-written side only filters and maps.
            let received = receives.map(|m| message_rust_type(api, m));
            let (events_param, start) = match (&topic_name, received) {
                // The method receives its message already decoded into the message's generated
                // type (a payload that does not decode is an error item, not a gap); from a
                // durable topic, with the sequence a subscriber resumes after.
                (Some(t), Some(ty)) if durable => (
                    quote! { , events: ::futures_util::stream::BoxStream<'static, Result<es::Sequenced<#ty>, ApiError>> },
                    quote! { {
                        #rest_ctx
                        let after = #after;
                        s.listen(&caller, #t, after).and_then(|events| {
                            s.#method(caller, args #rest_arg, es::sequenced::<#ty, _>(events, <T as GraphQlTopics>::payload, <T as GraphQlTopics>::sequence))
                        })
                    } },
                ),
                (Some(t), Some(ty)) => (
                    quote! { , events: ::futures_util::stream::BoxStream<'static, Result<#ty, ApiError>> },
                    quote! { {
                        #rest_ctx
                        let after = #after;
                        s.listen(&caller, #t, after).and_then(|events| {
                            s.#method(caller, args #rest_arg, es::received::<#ty, _>(events, <T as GraphQlTopics>::payload))
                        })
                    } },
                ),
                // Validation gives every hand-written topic-fed source its `receives`.
                _ => (
                    quote! {},
                    quote! { { #rest_ctx s.#method(caller, args #rest_arg) } },
                ),
            };
            methods.push(quote! {
                #[doc = #doc]
                fn #method(&self, caller: gr::Caller, args: #args_ident #rest_param #events_param) -> gr::SourceResult<#ret>;
            });
            sub_fields.push(quote! {
                let s = ::std::sync::Arc::clone(&sources);
                root = root.field(gd::SubscriptionField::new(#name, gr::type_ref(#field_ty), move |ctx| {
                    let s = ::std::sync::Arc::clone(&s);
                    // The permission check runs before the arguments are read or a source starts.
                    let started = gr::authorize(&ctx, &FIELDS[#index])
                        .and_then(|caller| Ok((caller, gr::args::<#args_ident>(&ctx, #arg_types, INPUTS)?)))
                        .and_then(|(caller, args)| #start);
                    gd::SubscriptionFieldFuture::new(async move { gr::stream(started) })
                }) #(#arg_defs)* .description(#d));
            });
        } else {
            let call = match adapter {
                // Written whole here: the operation's inputs built from the arguments as the
                // YAML binds them (checked against the operation), then its trait method.
                Some(a) => {
                    let f = format_ident!("rest_{}", crate::naming::bare(&method.to_string()));
                    adapters.push(rest_adapter(&f, &args_ident, &ret, a, types));
                    quote! { #f(&*s, args, rest).await }
                }
                None => {
                    let methods = groups.entry(group.as_str()).or_default();
                    methods.push(quote! {
                        #[doc = #doc]
                        fn #method(&self, caller: gr::Caller, args: #args_ident #rest_param)
                            -> impl ::std::future::Future<Output = Result<#ret, ApiError>> + Send;
                    });
                    quote! { s.#method(caller, args #rest_arg).await }
                }
            };
            let field = quote! {
                gd::Field::new(#name, gr::type_ref(#field_ty), move |ctx| {
                    let s = ::std::sync::Arc::clone(&s);
                    gd::FieldFuture::new(async move {
                        // The permission check runs before the arguments are read.
                        let caller = gr::authorize(&ctx, &FIELDS[#index]).map_err(gr::error)?;
                        let args = gr::args::<#args_ident>(&ctx, #arg_types, INPUTS).map_err(gr::error)?;
                        #rest_ctx
                        #to_value(#call)
                    })
                }) #(#arg_defs)* .description(#d)
            };
            let target = if is_mutation {
                &mut mutation_fields
            } else {
                &mut query_fields
            };
            target.push(quote! {
                let s = ::std::sync::Arc::clone(&sources);
                root_object = root_object.field(#field);
            });
        }
    }
    let mut trait_names: Vec<proc_macro2::Ident> = groups
        .keys()
        .map(|g| format_ident!("{}Fields", g.to_upper_camel_case()))
        .collect();
    let rest_services = rest_services(api);
    if rest_services.is_some() {
        trait_names.push(format_ident!("RestServices"));
    }
    let traits = groups.iter().map(|(group, methods)| {
        let name = format_ident!("{}Fields", group.to_upper_camel_case());
        let doc = format!(
            " The fields of `schema/subscriptions/{group}.yaml`: one method per query and mutation, one stream source per subscription."
        );
        let supertrait = quote! { Send + Sync + 'static };
        quote! {
            #[doc = #doc]
            pub trait #name: #supertrait {
                #(#methods)*
            }
        }
    });
    let inputs = m.inputs.values().map(|t| {
        let name = &t.name;
        let fields = t.fields.iter().map(|f| {
            let (n, key, ty) = (&f.name, &f.key, &f.ty);
            quote! { (#n, #key, #ty) }
        });
        quote! { (#name, &[#(#fields),*]) }
    });
    let mutable = |fields: &[TokenStream]| (!fields.is_empty()).then(|| quote! { mut });
    let (query_mut, mutation_mut) = (mutable(&query_fields), mutable(&mutation_fields));
    let schema_mutation = if api.mutations.is_empty() {
        quote! { None }
    } else {
        quote! { Some("Mutation") }
    };
    let schema_subscription = if api.subscriptions.is_empty() {
        quote! { None }
    } else {
        quote! { Some("Subscription") }
    };
    quote! {
        /// The GraphQL API declared in `schema/subscriptions/`.
        pub mod graphql {
            #[allow(unused_imports)]
            use super::types;
            #[allow(unused_imports)]
            use super::{Access, Permission};
            use super::rt::ApiError;
            use ::async_graphql::dynamic as gd;
            use crate::graphql_runtime as gr;
            #[allow(unused_imports)]
            use crate::event_source as es;

            /// One field of the `Query`, `Mutation` or `Subscription` root and who may use it.
            #[derive(Debug, Clone, Copy)]
            pub struct FieldMeta {
                pub name: &'static str,
                pub subscription: bool,
                pub mutation: bool,
                pub access: Access,
                /// The bus topic feeding a subscription; `None` for polled sources and queries.
                pub topic: Option<&'static str>,
                /// The REST operation the field mirrors (its permission is the operation's).
                pub rest: Option<&'static str>,
            }

            /// Every declared root field: queries, mutations, then subscriptions.
            pub const FIELDS: &[FieldMeta] = &[#(#metas),*];

            /// Input types: (name, [(GraphQL field, property key, GraphQL type)]), to turn
            /// lowerCamelCase argument fields back into the types' snake_case properties.
            pub const INPUTS: &[gr::InputDef] = &[#(#inputs),*];

            #(#arg_structs)*

            /// Where topic-fed subscriptions get their events (the bus, on the server).
            pub trait GraphQlTopics: Send + Sync + 'static {
                /// An event of a bus topic, as the topic-fed subscriptions receive it.
                type Event: Send + 'static;

                /// The events of `topic` from now on or, with `after`, from just after that
                /// sequence (what is no longer held arrives as one loss notice); the generated
                /// resolver of each topic-fed subscription calls it with the topic its YAML names.
                /// The caller's `queues` get the subscription's queue, for the backpressure rules.
                fn listen(&self, caller: &gr::Caller, topic: &'static str, after: Option<u64>)
                    -> Result<::futures_util::stream::BoxStream<'static, Self::Event>, ApiError>;

                /// An event's message type and data, for the sources the generator writes whole.
                fn payload(event: &Self::Event) -> (&str, &::serde_json::Value);

                /// An event's sequence in its topic.
                fn sequence(event: &Self::Event) -> u64;
            }

            #(#traits)*

            #rest_services

            #(#adapters)*

            /// The whole hand-written side of the GraphQL API: every file's trait. Permissions
            /// are checked before any method is called.
            pub trait GraphQlSources: GraphQlTopics #(+ #trait_names)* {}
            impl<T: GraphQlTopics #(+ #trait_names)*> GraphQlSources for T {}

            /// The object, input and enum types.
            pub fn types() -> Vec<gd::Type> {
                let mut ty: Vec<gd::Type> = Vec::new();
                #(#defs)*
                ty
            }

            /// The schema builder: types and roots registered, limits left to the caller.
            pub fn schema<T: GraphQlSources>(sources: ::std::sync::Arc<T>) -> gd::SchemaBuilder {
                let #query_mut root_object = gd::Object::new("Query");
                #(#query_fields)*
                let query = root_object;
                let #mutation_mut root_object = gd::Object::new("Mutation");
                #(#mutation_fields)*
                let mutation_root = root_object;
                let mut root = gd::Subscription::new("Subscription");
                #(#sub_fields)*
                let mutation: Option<&str> = #schema_mutation;
                let subscription: Option<&str> = #schema_subscription;
                let mut builder = gd::Schema::build("Query", mutation, subscription).register(query);
                if mutation.is_some() {
                    builder = builder.register(mutation_root);
                }
                if subscription.is_some() {
                    builder = builder.register(root);
                }
                for t in types() {
                    builder = builder.register(t);
                }
                builder
            }
        }
        pub use graphql::{GraphQlSources, GraphQlTopics #(, #trait_names)*};
    }
}

/// The generated Rust type of a message's data: a type of `schema/types/` for a flat message,
/// the message's enum of variants otherwise.
fn message_rust_type(api: &Api, message_type: &str) -> TokenStream {
    use crate::ir::Encoding;
    use crate::naming::{bare, camel_ident};
    let name = format_ident!("{}", bare(&camel_ident(message_type)));
    let flat = api
        .events
        .iter()
        .flat_map(|f| &f.messages)
        .find(|m| m.message_type == message_type)
        .is_some_and(|m| m.encoding == Encoding::Flat);
    if flat {
        quote! { types::#name }
    } else {
        quote! { super::events::#name }
    }
}

/// The subsystems whose operations `rest` fields call, each behind an accessor of one trait.
fn rest_services(api: &Api) -> Option<TokenStream> {
    let used: BTreeSet<&str> = api
        .queries
        .iter()
        .chain(&api.mutations)
        .filter_map(|q| q.adapter.as_ref())
        .map(|a| a.subsystem.as_str())
        .collect();
    if used.is_empty() {
        return None;
    }
    let items = used.iter().map(|sub| {
        let (module, assoc, api_trait, accessor) = service_names(sub);
        quote! {
            type #assoc: super::#module::#api_trait;
            fn #accessor(&self) -> &Self::#assoc;
        }
    });
    Some(quote! {
        /// The REST services behind the fields that mirror an operation (`rest:`): their
        /// generated resolvers call the operation with its own context, after the field's
        /// permission check, so a field and its route cannot answer differently.
        pub trait RestServices: Send + Sync + 'static {
            #(#items)*
        }
    })
}

/// (module, associated type, trait, accessor) of a subsystem's service.
fn service_names(
    subsystem: &str,
) -> (
    TokenStream,
    proc_macro2::Ident,
    proc_macro2::Ident,
    proc_macro2::Ident,
) {
    use crate::naming::{bare, camel_ident, snake_ident};
    let camel = bare(&camel_ident(subsystem)).to_string();
    (
        ident(&snake_ident(subsystem)),
        format_ident!("{camel}"),
        format_ident!("{camel}Api"),
        format_ident!("{}_api", bare(&snake_ident(subsystem))),
    )
}

/// The resolver body of a `rest` field: build the operation's path, query and body from the
/// arguments, check them as the router does, and call the operation.
fn rest_adapter(
    f: &proc_macro2::Ident,
    args_ident: &proc_macro2::Ident,
    ret: &TokenStream,
    a: &crate::ir::RestAdapter,
    types: &BTreeMap<String, TokenStream>,
) -> TokenStream {
    use crate::ir::{Binding, BodyFrom};
    use crate::naming::{bare, camel_ident, snake_ident};
    let (module, _, api_trait, accessor) = service_names(&a.subsystem);
    let op_camel = bare(&camel_ident(&a.operation)).to_string();
    let op_method = ident(&snake_ident(&a.operation));
    let input = |bindings: &[Binding]| {
        let calls = bindings.iter().map(|b| {
            let field = ident(&snake_ident(&b.arg));
            let key = &b.key;
            if b.json_text {
                quote! { .with_json_text(#key, &args.#field)? }
            } else {
                quote! { .with(#key, &args.#field)? }
            }
        });
        quote! { gr::RestInput::default() #(#calls)* .build()? }
    };
    let mut steps = Vec::new();
    let mut call_args = Vec::new();
    for (bindings, var, suffix) in [(&a.path, "path", "Path"), (&a.query, "query", "Query")] {
        if let Some(bindings) = bindings {
            let v = format_ident!("{var}");
            let ty = format_ident!("{op_camel}{suffix}");
            let build = input(bindings);
            steps.push(quote! {
                let #v: super::#module::#ty = #build;
                #v.validate()?;
            });
            call_args.push(quote! { #v });
        }
    }
    if let Some((type_name, from)) = &a.body {
        let ty = &types[type_name];
        let build = match from {
            BodyFrom::Whole {
                arg,
                nullable: false,
            } => {
                let field = ident(&snake_ident(arg));
                quote! { args.#field }
            }
            BodyFrom::Whole {
                arg,
                nullable: true,
            } => {
                let field = ident(&snake_ident(arg));
                let defaults = input(&[]);
                quote! { match args.#field { Some(body) => body, None => #defaults } }
            }
            BodyFrom::Fields(bindings) => input(bindings),
        };
        steps.push(quote! { let body: #ty = #build; });
        call_args.push(quote! { body });
    }
    let done = if a.empty_response {
        quote! { .map(|()| true) }
    } else {
        quote! {}
    };
    let doc = format!(" The resolver of a field mirroring `{}`.", a.operation);
    quote! {
        #[doc = #doc]
        #[allow(unused_variables)]
        async fn #f<T: RestServices>(s: &T, args: #args_ident, ctx: super::rt::RequestContext)
            -> Result<#ret, ApiError>
        {
            use super::#module::#api_trait as _;
            #(#steps)*
            s.#accessor().#op_method(ctx #(, #call_args)*).await #done
        }
    }
}

/// The `EventShape` of a generated source.
fn event_shape(d: &crate::ir::EventDecode) -> TokenStream {
    let message_type = &d.message_type;
    let renames = d.renames.iter().map(|(f, p)| quote! { (#f, #p) });
    let values = d.values.iter().map(|(f, a, b)| quote! { (#f, #a, #b) });
    let stamped = d.stamped;
    let filters = d.filters.iter().map(|r| {
        let (arg, field) = (&r.arg, &r.field);
        let op = if r.any_of {
            quote! { es::Match::In }
        } else {
            quote! { es::Match::Eq }
        };
        quote! { es::Filter { arg: #arg, field: #field, op: #op } }
    });
    quote! {
        es::EventShape {
            message_type: #message_type,
            renames: &[#(#renames),*],
            values: &[#(#values),*],
            stamped: #stamped,
            filters: &[#(#filters),*],
        }
    }
}

/// The root a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Query,
    Mutation,
    Subscription,
}

fn ident(s: &str) -> TokenStream {
    s.parse().unwrap_or_else(|_| quote! { invalid_identifier })
}

fn access_tokens(p: &str) -> TokenStream {
    match Access::from_label(p) {
        Access::Public => quote! { Access::Public },
        Access::Authenticated => quote! { Access::Authenticated },
        Access::Requires(p) => {
            let v = format_ident!("{}", crate::naming::camel_ident(&p.replace(':', "_")));
            quote! { Access::Requires(Permission::#v) }
        }
    }
}

/// The Rust type of an argument: non-null -> `T`, nullable -> `Option<T>`, lists -> `Vec`.
fn rust_type(t: &str, types: &BTreeMap<String, TokenStream>) -> TokenStream {
    let (inner, non_null) = match t.strip_suffix('!') {
        Some(inner) => (inner, true),
        None => (t, false),
    };
    let ty = match inner.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(item) => {
            let item = rust_type(item, types);
            quote! { Vec<#item> }
        }
        None => match inner {
            "String" | "ID" => quote! { String },
            "Int" => quote! { i64 },
            "Float" => quote! { f64 },
            "Boolean" => quote! { bool },
            JSON => quote! { ::serde_json::Value },
            named => types
                .get(named)
                .cloned()
                .unwrap_or_else(|| quote! { ::serde_json::Value }),
        },
    };
    if non_null {
        ty
    } else {
        quote! { Option<#ty> }
    }
}

/// A GraphQL enum value: a name that is not `true`, `false` or `null`.
fn is_enum_value(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !["true", "false", "null"].contains(&v)
}

fn lower_camel(s: &str) -> String {
    let camel = s.to_upper_camel_case();
    let mut chars = camel.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => camel,
    }
}
