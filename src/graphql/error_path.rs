//! Field errors carry the field's `path`, as the GraphQL spec asks ("errors" entries that come from
//! a field have a path, so a client can tell which field failed). async-graphql's dynamic schema
//! leaves it empty for a resolver's own error; this extension fills it in.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{PathSegment, QueryPathNode, QueryPathSegment, ServerResult, Value};

pub(super) struct ErrorPath;

impl ExtensionFactory for ErrorPath {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorPath)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorPath {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let node = info.path_node;
        next.run(ctx, info).await.map_err(|mut e| {
            // An error from deeper down already names its own field.
            if e.path.is_empty() {
                e.path = path(node);
            }
            e
        })
    }
}

/// The response keys (aliases where given) and list indexes from the root to `node`.
fn path(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut segments = Vec::new();
    let mut current = Some(node);
    while let Some(n) = current {
        segments.push(match n.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_string()),
            QueryPathSegment::Index(i) => PathSegment::Index(i),
        });
        current = n.parent;
    }
    segments.reverse();
    segments
}
