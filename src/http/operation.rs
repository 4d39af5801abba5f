//! Which kind of operation a GraphQL request would run, read from its document once.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::Name;

/// The operation the request would run, when the document parses and the choice is clear.
/// The parsed document stays in the request, so execution does not parse it again.
pub(super) fn selected_operation(request: &mut async_graphql::Request) -> Option<OperationType> {
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    match (&document.operations, operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(&Name::new(name)).map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(ops), None) => {
            // Ambiguous documents fail in execution; refuse GET if any of them writes.
            ops.values()
                .map(|op| op.node.ty)
                .find(|ty| *ty != OperationType::Query)
        }
    }
}
