//! Marks a request whose operation passed parsing and validation and began to execute.
//!
//! GraphQL-over-HTTP answers `application/graphql-response+json` requests that never reached
//! execution with 400, and those that did with 200, so the edge needs to know which it was.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::Response;

#[derive(Clone, Default)]
pub struct ExecutionStarted(Arc<AtomicBool>);

impl ExecutionStarted {
    pub fn started(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct ExecutionMarker;

impl ExtensionFactory for ExecutionMarker {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ExecutionMarker)
    }
}

#[async_trait::async_trait]
impl Extension for ExecutionMarker {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(marker) = ctx.data_opt::<ExecutionStarted>() {
            marker.0.store(true, Ordering::SeqCst);
        }
        next.run(ctx, operation_name).await
    }
}
