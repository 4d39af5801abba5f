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

/// Mutation fields that run argon2: a sign-in, or a password set or changed. Each costs tens of
/// milliseconds of CPU and 19 MiB, so aliasing one many times in a request is a way to make one
/// cheap request cost seconds. `refreshToken` is not among them: it compares a digest, as cheap
/// as any other mutation, and the request budget bounds it like them.
const PASSWORD_FIELDS: [&str; 4] = ["login", "changePassword", "setUserPassword", "createUser"];

/// How many password-hashing root fields the document's operations hold, fragments included.
/// Read before validation, so fragments are followed once each (a cycle, which validation
/// would refuse, cannot loop here); a fragment spread twice merges into one field set anyway.
pub(super) fn password_fields(request: &mut async_graphql::Request) -> usize {
    use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
    use std::collections::HashSet;

    fn count<'a>(
        set: &'a SelectionSet,
        document: &'a ExecutableDocument,
        seen: &mut HashSet<&'a str>,
    ) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(PASSWORD_FIELDS.contains(&field.node.name.node.as_str()))
                }
                Selection::InlineFragment(inline) => {
                    count(&inline.node.selection_set.node, document, seen)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) if seen.insert(name) => {
                            count(&fragment.node.selection_set.node, document, seen)
                        }
                        _ => 0,
                    }
                }
            })
            .sum()
    }

    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return 0;
    };
    let mut seen = HashSet::new();
    match (&document.operations, operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => {
            count(&op.node.selection_set.node, document, &mut seen)
        }
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(&Name::new(name)).map_or(0, |op| {
                count(&op.node.selection_set.node, document, &mut seen)
            })
        }
        (DocumentOperations::Multiple(ops), None) => ops
            .values()
            .map(|op| count(&op.node.selection_set.node, document, &mut HashSet::new()))
            .max()
            .unwrap_or(0),
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
