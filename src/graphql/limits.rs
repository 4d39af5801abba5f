//! Bounds on a GraphQL document that async-graphql does not enforce itself, checked before it
//! parses and validates one, and the arithmetic of the complexity formulas.
//!
//! async-graphql walks fragments inline, once per spread and without memory, in its own
//! directive, recursion and validation passes, and sums complexity with plain `+`. So a short
//! document whose fragments fan out, or whose lists multiply, could cost exponential time or
//! overflow there. The walk here memoises each fragment, so it costs one visit per fragment
//! and per selection, and refuses such documents first.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::Positioned;

use super::pagination::{DEFAULT_PAGE, MAX_PAGE};

/// Far above any sane complexity limit, yet small enough that async-graphql's unchecked sum of
/// `max_selections` such values cannot overflow a 64-bit `usize`.
pub const COMPLEXITY_CEILING: usize = u32::MAX as usize;

/// The most selections a document may expand to, whatever the complexity limit says: together
/// with [`COMPLEXITY_CEILING`] it keeps async-graphql's sums far from overflowing.
pub const MAX_SELECTIONS_CAP: usize = 1 << 24;

/// The cost of a list field paged by `first`: `first` as the resolver will take it (it refuses
/// more than the page maximum), times its items' cost, plus one for the field itself.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE);
    usize::try_from(first)
        .unwrap_or(0)
        .saturating_mul(child_complexity)
        .saturating_add(1)
        .min(COMPLEXITY_CEILING)
}

#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    pub max_tokens: usize,
    pub max_directives: usize,
    /// Data fields nested along one path, not counting `__schema`/`__type` subtrees.
    pub max_depth: usize,
    /// Fields nested along one path inside a `__schema` or `__type` subtree, itself included.
    pub max_introspection_depth: usize,
    /// Selection sets nested along one path, fragment spreads included (async-graphql's
    /// "recursive depth").
    pub max_nesting: usize,
    /// Selections after every fragment spread is expanded in place.
    pub max_selections: usize,
}

impl DocumentLimits {
    /// Selection sets nest at most `max_nesting` deep; argument values get as many again.
    pub fn max_brackets(&self) -> usize {
        self.max_nesting.saturating_mul(2).max(64)
    }
}

/// Counts the document's lexical tokens (GraphQL's punctuators, names, numbers and strings;
/// whitespace, commas and comments are ignored), stopping as soon as there are more than `max`,
/// or brackets nest deeper than `max_brackets`: the parser descends once per bracket, on the
/// stack, before async-graphql's own recursion bound applies. A string or comment is skipped
/// whole, so its content can neither hide nor add tokens.
pub fn check_tokens(query: &str, max: usize, max_brackets: usize) -> Result<(), String> {
    let bytes = query.as_bytes();
    let mut tokens = 0usize;
    let mut brackets = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'{' | b'(' | b'[' => {
                brackets += 1;
                if brackets > max_brackets {
                    return Err(format!(
                        "the document nests brackets more than {max_brackets} deep"
                    ));
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                brackets = brackets.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'.'
                        || bytes[i] == b'_'
                        || ((bytes[i] == b'+' || bytes[i] == b'-')
                            && matches!(bytes[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            // A punctuator, or a character the parser will refuse: one token either way.
            _ => i += utf8_len(b),
        }
        tokens += 1;
        if tokens > max {
            return Err(format!("the document has more than {max} tokens"));
        }
    }
    Ok(())
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Checks the parsed document against every bound but the token count.
pub fn check_document(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), String> {
    check_directives(doc, limits.max_directives)?;
    let mut walk = Walk {
        doc,
        limits,
        memo: HashMap::new(),
    };
    let mut total = Shape::default();
    for (_, operation) in doc.operations.iter() {
        let shape = walk.selection_set(&operation.node.selection_set, Context::Data, 0)?;
        total = Shape {
            data_depth: total.data_depth.max(shape.data_depth),
            introspection_depth: total.introspection_depth.max(shape.introspection_depth),
            nesting: total.nesting.max(shape.nesting),
            selections: total.selections.saturating_add(shape.selections),
        };
    }
    if total.data_depth > limits.max_depth {
        return Err(format!(
            "Query is nested too deep: at most {} levels of fields",
            limits.max_depth
        ));
    }
    if total.introspection_depth > limits.max_introspection_depth {
        return Err(format!(
            "Introspection is nested too deep: at most {} levels of fields",
            limits.max_introspection_depth
        ));
    }
    let max_selections = limits.max_selections.min(MAX_SELECTIONS_CAP);
    if total.selections > max_selections {
        return Err(format!(
            "Query is too complex: it expands to more than {max_selections} selections"
        ));
    }
    Ok(())
}

/// Every directive the document writes, wherever it stands: async-graphql bounds them per
/// field only, and answers each duplicate on an operation, fragment or spread with an error.
fn check_directives(doc: &ExecutableDocument, max: usize) -> Result<(), String> {
    fn in_set(set: &SelectionSet, count: &mut usize) {
        for selection in &set.items {
            *count = count.saturating_add(selection.node.directives().len());
            match &selection.node {
                Selection::Field(field) => in_set(&field.node.selection_set.node, count),
                Selection::InlineFragment(inline) => in_set(&inline.node.selection_set.node, count),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    fn in_operation(operation: &OperationDefinition, count: &mut usize) {
        *count = count.saturating_add(operation.directives.len());
        for variable in &operation.variable_definitions {
            *count = count.saturating_add(variable.node.directives.len());
        }
        in_set(&operation.selection_set.node, count);
    }
    let mut count = 0usize;
    for (_, operation) in doc.operations.iter() {
        in_operation(&operation.node, &mut count);
    }
    for fragment in doc.fragments.values() {
        count = count.saturating_add(fragment.node.directives.len());
        in_set(&fragment.node.selection_set.node, &mut count);
    }
    if count > max {
        return Err(format!("the document has more than {max} directives"));
    }
    Ok(())
}

/// Where a selection set stands: among data fields, or inside an introspection subtree (and
/// there, inside a type's member list or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Context {
    Data,
    Introspection,
    IntrospectionMembers,
}

/// A `__Type`'s lists of further types: nesting one inside another (`fields { type { ofType {
/// fields …` ) multiplies the answer by the schema's size per level, and no tool needs it.
const TYPE_MEMBER_LISTS: [&str; 5] = [
    "fields",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
];

/// What a selection set costs, relative to where it stands.
#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    data_depth: usize,
    /// Within a data context, the deepest introspection subtree (from its root field); within
    /// an introspection context, the fields nested below this point.
    introspection_depth: usize,
    nesting: usize,
    selections: usize,
}

enum Memo {
    InProgress,
    Done(Shape),
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a DocumentLimits,
    memo: HashMap<(&'a str, Context), Memo>,
}

impl<'a> Walk<'a> {
    /// `nesting` is how deep this set stands on the path being walked, so the recursion stops
    /// at the nesting bound whatever the fragments do.
    fn selection_set(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        context: Context,
        nesting: usize,
    ) -> Result<Shape, String> {
        if nesting > self.limits.max_nesting {
            return Err(format!(
                "Query is nested too deep: its recursion depth (selection sets and fragment spreads) may be at most {}",
                self.limits.max_nesting
            ));
        }
        let mut shape = Shape::default();
        for selection in &set.node.items {
            let inner = match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let inner_context = match context {
                        Context::Data if name == "__schema" || name == "__type" => {
                            Context::Introspection
                        }
                        Context::Introspection if TYPE_MEMBER_LISTS.contains(&name) => {
                            Context::IntrospectionMembers
                        }
                        Context::IntrospectionMembers if TYPE_MEMBER_LISTS.contains(&name) => {
                            return Err(format!(
                                "Introspection may not nest `{name}` inside a type's member list"
                            ));
                        }
                        other => other,
                    };
                    let children = if field.node.selection_set.node.items.is_empty() {
                        Shape::default()
                    } else {
                        let mut children = self.selection_set(
                            &field.node.selection_set,
                            inner_context,
                            nesting + 1,
                        )?;
                        children.nesting += 1;
                        children
                    };
                    match (context, inner_context) {
                        (Context::Data, Context::Data) => Shape {
                            data_depth: children.data_depth + 1,
                            ..children
                        },
                        (Context::Data, _) => Shape {
                            data_depth: 0,
                            introspection_depth: children.introspection_depth + 1,
                            ..children
                        },
                        _ => Shape {
                            introspection_depth: children.introspection_depth + 1,
                            ..children
                        },
                    }
                }
                Selection::InlineFragment(inline) => {
                    let mut inner =
                        self.selection_set(&inline.node.selection_set, context, nesting + 1)?;
                    inner.nesting += 1;
                    inner
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match self.fragment(name, context, nesting + 1)? {
                        Some(mut inner) => {
                            inner.nesting += 1;
                            inner
                        }
                        // Unknown: validation names it.
                        None => Shape::default(),
                    }
                }
            };
            shape.selections = shape
                .selections
                .saturating_add(inner.selections)
                .saturating_add(1);
            shape.data_depth = shape.data_depth.max(inner.data_depth);
            shape.introspection_depth = shape.introspection_depth.max(inner.introspection_depth);
            shape.nesting = shape.nesting.max(inner.nesting);
        }
        Ok(shape)
    }

    fn fragment(
        &mut self,
        name: &'a str,
        context: Context,
        nesting: usize,
    ) -> Result<Option<Shape>, String> {
        let Some((key, definition)) = self.doc.fragments.get_key_value(name) else {
            return Ok(None);
        };
        let key = (key.as_str(), context);
        match self.memo.get(&key) {
            Some(Memo::Done(shape)) => {
                if nesting + shape.nesting > self.limits.max_nesting {
                    return Err(format!(
                        "Query is nested too deep: its recursion depth (selection sets and fragment spreads) may be at most {}",
                        self.limits.max_nesting
                    ));
                }
                return Ok(Some(*shape));
            }
            Some(Memo::InProgress) => {
                return Err(format!("the fragment `{name}` spreads itself"));
            }
            None => {}
        }
        self.memo.insert(key, Memo::InProgress);
        let shape = self.selection_set(&definition.node.selection_set, context, nesting)?;
        self.memo.insert(key, Memo::Done(shape));
        Ok(Some(shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: DocumentLimits = DocumentLimits {
        max_tokens: 10_000,
        max_directives: 50,
        max_depth: 12,
        max_introspection_depth: 20,
        max_nesting: 32,
        max_selections: 20_000,
    };

    fn check(query: &str) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?;
        check_document(&doc, &DEFAULTS)
    }

    fn tokens(query: &str) -> usize {
        (0..)
            .find(|max| check_tokens(query, *max, 64).is_ok())
            .unwrap_or_default()
    }

    #[test]
    fn tokens_are_counted_lexically() {
        assert_eq!(tokens("{ a }"), 3);
        assert_eq!(
            tokens("query Q($v: [Int!] = [1, -2.5e+3]) { a(x: $v) }"),
            25
        );
        assert_eq!(tokens(r#"{ a(s: "{ { { \" } } }") }"#), 8);
        assert_eq!(tokens("{ a(s: \"\"\" { \\\"\"\" } \"\"\") }"), 8);
        assert_eq!(tokens("# { { { {\n{ a ... on Q { b } }"), 9);
        assert_eq!(tokens("{ ä }"), 3);
        let deep = format!("{}{}", "{ a ".repeat(65), "}".repeat(65));
        assert!(check_tokens(&deep, 10_000, 64)
            .unwrap_err()
            .contains("brackets"));
        let quoted = format!("{{ a(s: \"{}\") }}", "{".repeat(1000));
        assert!(check_tokens(&quoted, 10_000, 64).is_ok());
    }

    #[test]
    fn page_complexity_saturates() {
        assert_eq!(page_complexity(None, 2), 41);
        assert_eq!(page_complexity(Some(i32::MAX), 2), 201);
        assert_eq!(page_complexity(Some(-5), 2), 1);
        assert_eq!(
            page_complexity(Some(100), COMPLEXITY_CEILING),
            COMPLEXITY_CEILING
        );
    }

    #[test]
    fn data_depth_excludes_introspection_subtrees() {
        let deep_data = format!("{}{}", "{ a ".repeat(13), "}".repeat(13));
        assert!(check(&deep_data).unwrap_err().contains("nested too deep"));
        let ok_data = format!("{}{}", "{ a ".repeat(12), "}".repeat(12));
        assert!(check(&ok_data).is_ok());
        let chain = format!(
            "{{ __type(name: \"T\") {}{} }}",
            "{ ofType ".repeat(15),
            "}".repeat(15)
        );
        assert!(check(&chain).is_ok());
        let too_long = format!(
            "{{ __type(name: \"T\") {}{} }}",
            "{ ofType ".repeat(21),
            "}".repeat(21)
        );
        assert!(check(&too_long)
            .unwrap_err()
            .contains("Introspection is nested too deep"));
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        let deep = "query { a { ...F } } fragment F on T { b { ...G } } \
                    fragment G on T { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } }";
        assert!(check(deep).unwrap_err().contains("nested too deep"));
        let cycle = "query { ...A } fragment A on Query { a { ...B } } fragment B on T { ...A }";
        assert!(check(cycle).unwrap_err().contains("spreads itself"));
    }

    #[test]
    fn introspection_member_lists_do_not_nest() {
        let nested = "{ __schema { types { fields { type { ofType { fields { name } } } } } } }";
        assert!(check(nested).unwrap_err().contains("member list"));
        let via_fragment =
            "{ __schema { types { ...T } } } fragment T on __Type { fields { type { ...T } } }";
        assert!(check(via_fragment).is_err());
    }

    #[test]
    fn fan_out_is_counted_without_expanding() {
        let mut doc = String::from("query { ...F0 }");
        for i in 0..20 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        doc.push_str(" fragment F20 on Query { a }");
        assert!(check(&doc).unwrap_err().contains("too complex"));
    }

    #[test]
    fn directives_are_counted_everywhere() {
        let on_operation = format!("query Q {} {{ a }}", "@d ".repeat(51));
        assert!(check(&on_operation).unwrap_err().contains("directives"));
        let on_spreads = format!(
            "query {{ ...F {} }} fragment F on Query {} {{ a }}",
            "@d ".repeat(26),
            "@d ".repeat(25)
        );
        assert!(check(&on_spreads).unwrap_err().contains("directives"));
        let variables = format!("query Q($v: Int {}) {{ a }}", "@d ".repeat(51));
        assert!(check(&variables).unwrap_err().contains("directives"));
        assert!(check(&format!("query Q {} {{ a }}", "@d ".repeat(50))).is_ok());
    }
}
