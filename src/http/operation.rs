//! Which kind of operation a GraphQL request would run, read from its document once, and
//! whether the document is within the bounds at all.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Name, ServerError};

use crate::config::Limits;
use crate::graphql::limits::{check_document, check_tokens, DocumentLimits};

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

/// The document bounds of `graphql::limits`, from the settings.
fn document_limits(limits: &Limits) -> DocumentLimits {
    DocumentLimits {
        max_tokens: limits.max_tokens,
        max_directives: limits.max_document_directives,
        max_depth: limits.max_depth,
        max_introspection_depth: limits.max_introspection_depth,
        max_nesting: limits.max_recursive_depth,
        max_selections: limits.max_complexity,
    }
}

/// Refuses a document over the bounds with one error, before async-graphql parses or validates
/// it: the tokens are counted before it is parsed at all. On success the parsed document stays
/// in the request, so nothing parses it again.
pub(super) fn screen_document(
    request: &mut async_graphql::Request,
    limits: &Limits,
) -> Result<(), ServerError> {
    let bounds = document_limits(limits);
    let refuse = |message: String| {
        let mut error = ServerError::new(message, None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "BAD_USER_INPUT");
        error.extensions = Some(extensions);
        error
    };
    check_tokens(&request.query, bounds.max_tokens, bounds.max_brackets()).map_err(refuse)?;
    let document = request.parsed_query()?;
    check_document(document, &bounds).map_err(refuse)
}
