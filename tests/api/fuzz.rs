//! Fuzzing the real router: generated GraphQL documents (real field names from the served SDL,
//! aliases, fragments, directives, variables, garbage), variables and raw HTTP requests, sent to
//! a node process for a bounded time (`INTERLINK_FUZZ_SECS`, 20 s by default).
//!
//! Every request must answer without a 5xx other than 503, within 2 s, without a panic in the
//! node's log, and the node's memory must stay bounded. A failing case is shrunk and saved in
//! `tests/fixtures/fuzz-regressions/`; every saved case is replayed first on every run.
//!
//! Cases are generated from a tape of numbers (proptest shrinks the tape, and so the request).
//! `INTERLINK_FUZZ_SEED` (64 hex digits) replays one run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_graphql::parser::types::{BaseType, TypeKind, TypeSystemDefinition};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::helpers::{repo_file, Backend, Deployment, ServerProcess, ADMIN_EMAIL, ADMIN_PASSWORD};

/// The bound on any one response: a bound on unbounded work, far above a normal answer.
const SLOWEST: Duration = Duration::from_secs(2);
/// How much the node's resident memory may grow over the run.
const RSS_GROWTH_KIB: u64 = 256 * 1024;
/// Failures shrunk and saved per run; past this, the run stops (one bug tends to repeat).
const MOST_FAILURES: usize = 5;

/// One request, as stored in a regression file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Case {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_string: Option<String>,
    #[serde(default)]
    signed_in: bool,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    /// Spaces appended to the body up to this many bytes: large bodies without large files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pad_to: Option<usize>,
}

// ------------------------------------------------------------------ the schema, as names

struct Field {
    name: String,
    args: Vec<(String, async_graphql::parser::types::Type)>,
    ty: String,
}

#[derive(Default)]
struct Schema {
    /// Objects and interfaces, with their fields.
    objects: BTreeMap<String, Vec<Field>>,
    unions: BTreeMap<String, Vec<String>>,
    enums: BTreeMap<String, Vec<String>>,
    inputs: BTreeMap<String, Vec<(String, async_graphql::parser::types::Type)>>,
    directives: Vec<String>,
    query: String,
    mutation: String,
    subscription: String,
}

fn named(ty: &async_graphql::parser::types::Type) -> String {
    match &ty.base {
        BaseType::Named(name) => name.to_string(),
        BaseType::List(inner) => named(inner),
    }
}

impl Schema {
    fn load() -> anyhow::Result<Self> {
        let document = async_graphql::parser::parse_schema(interlink::api::sdl())?;
        let mut schema = Self::default();
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let name = ty.name.node.to_string();
                    let fields = |fields: Vec<
                        async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>,
                    >| {
                        fields
                            .into_iter()
                            .map(|f| Field {
                                name: f.node.name.node.to_string(),
                                args: f
                                    .node
                                    .arguments
                                    .into_iter()
                                    .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                                    .collect(),
                                ty: named(&f.node.ty.node),
                            })
                            .collect::<Vec<_>>()
                    };
                    match ty.kind {
                        TypeKind::Object(o) => {
                            schema.objects.insert(name, fields(o.fields));
                        }
                        TypeKind::Interface(i) => {
                            schema.objects.insert(name, fields(i.fields));
                        }
                        TypeKind::Union(u) => {
                            schema.unions.insert(
                                name,
                                u.members.into_iter().map(|m| m.node.to_string()).collect(),
                            );
                        }
                        TypeKind::Enum(e) => {
                            schema.enums.insert(
                                name,
                                e.values
                                    .into_iter()
                                    .map(|v| v.node.value.node.to_string())
                                    .collect(),
                            );
                        }
                        TypeKind::InputObject(i) => {
                            schema.inputs.insert(
                                name,
                                i.fields
                                    .into_iter()
                                    .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                                    .collect(),
                            );
                        }
                        TypeKind::Scalar => {}
                    }
                }
                TypeSystemDefinition::Directive(d) => {
                    schema.directives.push(d.node.name.node.to_string());
                }
                TypeSystemDefinition::Schema(roots) => {
                    let roots = roots.node;
                    let name = |n: Option<async_graphql::Positioned<async_graphql::Name>>| {
                        n.map(|n| n.node.to_string()).unwrap_or_default()
                    };
                    schema.query = name(roots.query);
                    schema.mutation = name(roots.mutation);
                    schema.subscription = name(roots.subscription);
                }
            }
        }
        if schema.query.is_empty() {
            schema.query = "Query".into();
        }
        anyhow::ensure!(
            schema.objects.contains_key(&schema.query),
            "the SDL has no query root"
        );
        Ok(schema)
    }
}

// ------------------------------------------------------------------ generation from a tape

/// Decisions drawn from a tape of numbers; an exhausted tape answers 0, the simplest choice,
/// so a shrunk tape is a simpler request.
struct Tape<'a> {
    numbers: &'a [u16],
    at: usize,
}

impl Tape<'_> {
    fn next(&mut self) -> usize {
        let n = self.numbers.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(n)
    }

    fn pick(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// True `percent` times in a hundred (and never on an exhausted tape).
    fn chance(&mut self, percent: usize) -> bool {
        self.at < self.numbers.len() && self.pick(100) < percent
    }

    fn one<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.pick(items.len())]
    }
}

const GARBAGE: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "...",
    "@",
    "$",
    ":",
    "!",
    "=",
    "|",
    "&",
    "\"",
    "\"\"\"",
    "#",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "null",
    "true",
    "0x1",
    "1e999",
    "-0",
    "\u{0}",
    "\u{feff}",
    "é",
    "\\u0000",
    "__schema",
    "__type",
    "__typename",
    ",",
];

const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "50",
    "100",
    "1000",
    "2147483647",
    "-2147483648",
    "2147483648",
    "99999999999999999999",
    "1.5",
    "\"3\"",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "x@example.com",
    "admin@example.com",
    "2026-11",
    "2026-Q4",
    "1234.50",
    "-1",
    "00000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffff",
    "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "* * * * * *",
    "http://127.0.0.1:1/",
    "é中文🎉",
    "\\u0000",
    "' OR 1=1 --",
    "<script>",
    "%s%n",
    "NaN",
];

struct Doc<'s> {
    schema: &'s Schema,
    variables: Vec<(String, String, Value)>,
    fragments: Vec<String>,
    depth_limit: usize,
}

impl Doc<'_> {
    fn value(
        &mut self,
        tape: &mut Tape,
        ty: &async_graphql::parser::types::Type,
        nest: usize,
    ) -> String {
        let schema = self.schema;
        if tape.chance(3) {
            return "null".into();
        }
        if tape.chance(4) {
            // A value of the wrong kind.
            return tape
                .one(&["1", "\"s\"", "true", "[]", "{}", "FOO", "$undeclared"])
                .to_string();
        }
        match &ty.base {
            BaseType::List(inner) => {
                let n = if tape.chance(5) { 50 } else { tape.pick(4) };
                let items: Vec<String> =
                    (0..n).map(|_| self.value(tape, inner, nest + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            BaseType::Named(name) => {
                let name = name.as_str();
                if let Some(values) = schema.enums.get(name) {
                    return values
                        .get(tape.pick(values.len()))
                        .cloned()
                        .unwrap_or_default();
                }
                if let Some(fields) = schema.inputs.get(name) {
                    if nest > 4 {
                        return "{}".into();
                    }
                    let mut parts = Vec::new();
                    for (field, field_ty) in fields {
                        if !field_ty.nullable || tape.chance(50) {
                            parts
                                .push(format!("{field}: {}", self.value(tape, field_ty, nest + 1)));
                        }
                    }
                    if tape.chance(5) {
                        parts.push("bogus: 1".into());
                    }
                    return format!("{{{}}}", parts.join(", "));
                }
                match name {
                    "Int" => tape.one(INTS).to_string(),
                    "Float" => tape.one(&["0.5", "1e308", "-1", "3"]).to_string(),
                    "Boolean" => tape.one(&["true", "false"]).to_string(),
                    _ => format!("{:?}", tape.one(STRINGS)),
                }
            }
        }
    }

    fn variable_value(&self, tape: &mut Tape, ty: &async_graphql::parser::types::Type) -> Value {
        if tape.chance(10) {
            // Deep or odd JSON where the schema wants something else.
            return match tape.pick(4) {
                0 => Value::Null,
                1 => {
                    let mut v = json!(1);
                    for _ in 0..(10 + tape.pick(200)) {
                        v = json!([v]);
                    }
                    v
                }
                2 => json!({ "a": { "b": [1, "x", null, true] } }),
                _ => json!("x".repeat(tape.pick(5000))),
            };
        }
        match &ty.base {
            BaseType::List(inner) => Value::Array(
                (0..tape.pick(4))
                    .map(|_| self.variable_value(tape, inner))
                    .collect(),
            ),
            BaseType::Named(name) => {
                let name = name.as_str();
                if let Some(values) = self.schema.enums.get(name) {
                    return json!(values
                        .get(tape.pick(values.len()))
                        .cloned()
                        .unwrap_or_default());
                }
                if let Some(fields) = self.schema.inputs.get(name) {
                    let mut object = serde_json::Map::new();
                    for (field, field_ty) in fields {
                        if !field_ty.nullable || tape.chance(50) {
                            object.insert(field.clone(), json!(tape.one(STRINGS)));
                        }
                    }
                    return Value::Object(object);
                }
                match name {
                    "Int" => json!(*tape.one(&[
                        0i64,
                        1,
                        -1,
                        10,
                        1000,
                        2_147_483_647,
                        9_007_199_254_740_993
                    ])),
                    "Float" => json!(0.5),
                    "Boolean" => json!(tape.chance(50)),
                    _ => json!(tape.one(STRINGS)),
                }
            }
        }
    }

    fn argument(
        &mut self,
        tape: &mut Tape,
        name: &str,
        ty: &async_graphql::parser::types::Type,
    ) -> String {
        // Page sizes multiply through nested lists: the extremes are where the arithmetic is.
        if matches!(name, "first" | "last") && tape.chance(50) {
            let size = tape.one(&["0", "1", "100", "101", "2147483647", "-2147483648", "-1"]);
            return format!("{name}: {size}");
        }
        if tape.chance(15) {
            let var = format!("v{}", self.variables.len());
            let value = self.variable_value(tape, ty);
            let declared = if tape.chance(10) {
                tape.one(&["Int", "String!", "[ID!]", "Boolean", "Nope"])
                    .to_string()
            } else {
                ty.to_string()
            };
            self.variables.push((var.clone(), declared, value));
            return format!("{name}: ${var}");
        }
        format!("{name}: {}", self.value(tape, ty, 0))
    }

    fn directives(&mut self, tape: &mut Tape) -> String {
        if !tape.chance(15) {
            return String::new();
        }
        let count = if tape.chance(10) {
            1 + tape.pick(60)
        } else {
            1 + tape.pick(3)
        };
        let mut out = String::new();
        for _ in 0..count {
            let directive = match tape.pick(5) {
                0 => format!("@include(if: {})", tape.one(&["true", "false", "1", "$v0"])),
                1 => format!("@skip(if: {})", tape.one(&["true", "false", "null"])),
                2 => "@deprecated".to_owned(),
                3 => self
                    .schema
                    .directives
                    .get(tape.pick(self.schema.directives.len().max(1)))
                    .map_or_else(|| "@nope".to_owned(), |d| format!("@{d}")),
                _ => "@nope(x: 1)".to_owned(),
            };
            out.push(' ');
            out.push_str(&directive);
        }
        out
    }

    fn selection(&mut self, tape: &mut Tape, ty: &str, depth: usize) -> String {
        let schema = self.schema;
        let Some(fields) = schema.objects.get(ty) else {
            if let Some(members) = schema.unions.get(ty) {
                let member = members
                    .get(tape.pick(members.len()))
                    .cloned()
                    .unwrap_or_default();
                let inner = self.selection(tape, &member, depth + 1);
                return format!("{{ __typename ... on {member} {inner} }}");
            }
            return "{ __typename }".into();
        };
        let width = if tape.chance(5) {
            1 + tape.pick(40)
        } else {
            1 + tape.pick(4)
        };
        let mut items = Vec::new();
        for _ in 0..width {
            let roll = tape.pick(100);
            if roll < 6 && depth < self.depth_limit {
                let inner = self.selection(tape, ty, depth + 1);
                let directives = self.directives(tape);
                items.push(format!("... on {ty}{directives} {inner}"));
                continue;
            }
            if roll < 10 && depth < self.depth_limit {
                let name = format!("F{}", self.fragments.len());
                let inner = self.selection(tape, ty, depth + 1);
                let directives = self.directives(tape);
                self.fragments
                    .push(format!("fragment {name} on {ty}{directives} {inner}"));
                items.push(format!("...{name}{}", self.directives(tape)));
                continue;
            }
            if roll < 13 {
                items.push(
                    tape.one(&[
                        "__typename",
                        "bogusField",
                        "__schema { types { name } }",
                        "__type(name: \"QueryRoot\") { name }",
                    ])
                    .to_string(),
                );
                continue;
            }
            let field = &fields[tape.pick(fields.len())];
            let mut text = String::new();
            if tape.chance(20) {
                text.push_str(&format!("a{}: ", tape.pick(1000)));
            }
            text.push_str(&field.name);
            let mut args = Vec::new();
            for (arg, arg_ty) in &field.args {
                if !arg_ty.nullable || tape.chance(40) {
                    args.push(self.argument(tape, arg, arg_ty));
                }
            }
            if tape.chance(3) {
                args.push("nope: 1".into());
            }
            if !args.is_empty() {
                text.push_str(&format!("({})", args.join(", ")));
            }
            text.push_str(&self.directives(tape));
            let returns = field.ty.as_str();
            let composite =
                schema.objects.contains_key(returns) || schema.unions.contains_key(returns);
            if composite {
                if depth < self.depth_limit {
                    text.push(' ');
                    text.push_str(&self.selection(tape, returns, depth + 1));
                } else if !tape.chance(20) {
                    text.push_str(" { __typename }");
                }
            }
            items.push(text);
        }
        format!("{{ {} }}", items.join(" "))
    }
}

/// A GraphQL document and its variables.
fn document(tape: &mut Tape, schema: &Schema) -> (String, Value) {
    let mut doc = Doc {
        schema,
        variables: Vec::new(),
        fragments: Vec::new(),
        depth_limit: if tape.chance(10) {
            40
        } else {
            1 + tape.pick(8)
        },
    };
    let (keyword, root) = *tape.one(&[
        ("query", &schema.query),
        ("query", &schema.query),
        ("query", &schema.query),
        ("", &schema.query),
        ("mutation", &schema.mutation),
        ("subscription", &schema.subscription),
    ]);
    let body = doc.selection(tape, root, 0);
    let operation_directives = doc.directives(tape);
    let definitions: Vec<String> = doc
        .variables
        .iter()
        .map(|(name, ty, _)| format!("${name}: {ty}"))
        .collect();
    let mut text =
        if keyword.is_empty() && definitions.is_empty() && operation_directives.is_empty() {
            body
        } else {
            let keyword = if keyword.is_empty() { "query" } else { keyword };
            let vars = if definitions.is_empty() {
                String::new()
            } else {
                format!("({})", definitions.join(", "))
            };
            format!("{keyword} Op{vars}{operation_directives} {body}")
        };
    for fragment in &doc.fragments {
        text.push('\n');
        text.push_str(fragment);
    }
    // Garbage: a token spliced in, or a cut.
    for _ in 0..tape.pick(3) {
        if tape.chance(30) {
            let at = tape.pick(text.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.insert_str(at, &format!(" {} ", tape.one(GARBAGE)));
        }
    }
    if tape.chance(3) {
        let at = tape.pick(text.len() + 1);
        let at = (0..=at)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(at);
    }
    let mut variables = serde_json::Map::new();
    for (name, _, value) in doc.variables {
        if !tape.chance(5) {
            variables.insert(name, value);
        }
    }
    (text, Value::Object(variables))
}

fn operation(tape: &mut Tape, schema: &Schema) -> Value {
    let (query, variables) = document(tape, schema);
    let mut op = json!({ "query": query });
    match tape.pick(10) {
        0 => {}
        1 => op["variables"] = json!("not an object"),
        2 => op["operationName"] = json!(tape.one(&["Op", "Nope", ""])),
        _ => op["variables"] = variables,
    }
    if tape.chance(3) {
        op["extensions"] = json!({ "persistedQuery": { "version": 1, "sha256Hash": "0" } });
    }
    op
}

fn case(numbers: &[u16], signed_in: bool, schema: &Schema) -> Case {
    let mut tape = Tape { numbers, at: 0 };
    let mut headers = Vec::new();
    // Mostly what clients send: an Accept nothing satisfies only tests the 406.
    let accept = if tape.chance(10) {
        *tape.one(&["text/html", "garbage;;q=x", "application/xml, text/*;q=0"])
    } else {
        *tape.one(&[
            "",
            "application/json",
            "application/graphql-response+json",
            "application/graphql-response+json, application/json;q=0.9",
            "*/*",
        ])
    };
    if !accept.is_empty() {
        headers.push(("accept".to_owned(), accept.to_owned()));
    }
    if tape.chance(5) {
        let auth = *tape.one(&["Bearer nonsense", "Basic YTpi", "Bearer ", "bearer x.y.z"]);
        headers.push(("authorization".to_owned(), auth.to_owned()));
    }
    let json_type = ("content-type".to_owned(), "application/json".to_owned());
    let mut out = Case {
        note: None,
        method: "POST".into(),
        query_string: None,
        signed_in,
        headers,
        body: String::new(),
        pad_to: None,
    };
    match tape.pick(100) {
        0..=59 => {
            out.headers.push(json_type);
            out.body = operation(&mut tape, schema).to_string();
        }
        60..=69 => {
            out.headers.push(json_type);
            let n = if tape.chance(20) {
                11 + tape.pick(40)
            } else {
                tape.pick(11)
            };
            let batch: Vec<Value> = (0..n).map(|_| operation(&mut tape, schema)).collect();
            out.body = Value::Array(batch).to_string();
        }
        70..=77 => {
            out.method = "GET".into();
            let (query, variables) = document(&mut tape, schema);
            let mut pairs = vec![("query", query)];
            if tape.chance(50) {
                pairs.push(("variables", variables.to_string()));
            }
            out.query_string = Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(&v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        }
        78..=85 => {
            out.headers.push(json_type);
            out.body = match tape.pick(6) {
                0 => "[".repeat(1 + tape.pick(100_000)),
                1 => format!("{{\"query\": {}}}", "{\"a\":".repeat(1 + tape.pick(5000))),
                2 => "{\"query\": \"{ __typename }\"".into(),
                3 => "\u{0}\u{1}\u{2}".repeat(tape.pick(100)),
                4 => json!({ "query": 1, "variables": [] }).to_string(),
                _ => String::from_utf8_lossy(
                    &(0..tape.pick(300))
                        .map(|_| tape.next() as u8)
                        .collect::<Vec<u8>>(),
                )
                .into_owned(),
            };
        }
        86..=93 => {
            let op = operation(&mut tape, schema).to_string();
            let content_type = *tape.one(&[
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/graphql",
                "multipart/form-data; boundary=XyZ",
                "multipart/form-data; boundary=XyZ",
                "application/json; charset=latin1",
                "",
            ]);
            if !content_type.is_empty() {
                out.headers
                    .push(("content-type".to_owned(), content_type.to_owned()));
            }
            if content_type.starts_with("multipart") {
                if tape.chance(70) {
                    out.headers
                        .push(("graphql-preflight".to_owned(), "1".to_owned()));
                }
                let map = *tape.one(&[
                    "{}",
                    "{\"0\": [\"variables.file\"]}",
                    "{\"0\": [\"variables.file\"], \"1\": [\"x\"]}",
                    "not json",
                ]);
                let file = "x".repeat(tape.pick(3000));
                out.body = format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{op}\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{map}\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\n{file}\r\n--XyZ--\r\n"
                );
            } else {
                out.body = op;
            }
        }
        _ => {
            out.headers.push(json_type);
            out.body = json!({ "query": "{ __typename }" }).to_string();
            out.pad_to = Some(*tape.one(&[1_048_000, 1_048_576, 1_048_577, 1_200_000]));
        }
    }
    out
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ sending and judging

struct Target {
    node: ServerProcess,
    http: reqwest::Client,
    token: String,
}

impl Target {
    /// Why `case` fails, or `None` when the node answered it as it must; and the status.
    async fn judge(&self, case: &Case) -> anyhow::Result<(Option<String>, u16)> {
        let panics_before = self.node.stderr.lock().panics.len();
        let url = format!(
            "http://{}/graphql{}",
            self.node.addr,
            case.query_string
                .as_ref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        let method = reqwest::Method::from_bytes(case.method.as_bytes())?;
        let mut request = self.http.request(method, url);
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if case.signed_in {
            request = request.bearer_auth(&self.token);
        }
        let mut body = case.body.clone();
        if let Some(pad) = case.pad_to {
            body.extend(std::iter::repeat_n(' ', pad.saturating_sub(body.len())));
        }
        if case.method != "GET" {
            request = request.body(body);
        }
        let started = Instant::now();
        let sent = request.send().await;
        let answered = match sent {
            Ok(response) => {
                let status = response.status();
                // The whole body: a slow stream counts as a slow answer.
                response.bytes().await.map(|_| status)
            }
            Err(err) => Err(err),
        };
        let took = started.elapsed();
        let panics: Vec<String> = self.node.stderr.lock().panics[panics_before..].to_vec();
        let code = answered.as_ref().map_or(0, |s| s.as_u16());
        let verdict = match answered {
            // A request the client cannot even build (a header no HTTP allows) tests nothing.
            Err(err) if err.is_builder() => None,
            Err(err) => Some(format!("no answer: {err}")),
            Ok(status) if status.is_server_error() && status != 503 => {
                Some(format!("HTTP {status}"))
            }
            Ok(_) if took > SLOWEST => Some(format!("answered in {took:?}")),
            Ok(_) if !panics.is_empty() => Some(format!("panicked: {panics:?}")),
            Ok(_) => None,
        };
        Ok((verdict, code))
    }
}

fn regressions_dir() -> PathBuf {
    repo_file("tests/fixtures/fuzz-regressions")
}

fn load_regressions() -> anyhow::Result<Vec<(PathBuf, Case)>> {
    let mut cases = Vec::new();
    let Ok(entries) = std::fs::read_dir(regressions_dir()) else {
        return Ok(cases);
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let case: Case = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            cases.push((path, case));
        }
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(cases)
}

fn save_regression(case: &Case, why: &str) -> anyhow::Result<PathBuf> {
    use sha2::Digest;
    let dir = regressions_dir();
    std::fs::create_dir_all(&dir)?;
    let mut case = case.clone();
    case.note = Some(format!("found by the fuzzer: {why}"));
    let text = serde_json::to_string_pretty(&case)?;
    let digest = hex::encode(sha2::Sha256::digest(
        format!("{}{:?}{}", case.method, case.query_string, case.body).as_bytes(),
    ));
    let path = dir.join(format!("{}.json", &digest[..16]));
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}

fn seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    match std::env::var("INTERLINK_FUZZ_SEED") {
        Ok(hex_seed) => hex::decode_to_slice(hex_seed.trim(), &mut seed)
            .context("INTERLINK_FUZZ_SEED must be 64 hex digits")?,
        Err(_) => seed = rand::random(),
    }
    Ok(seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_survives_generated_requests() -> anyhow::Result<()> {
    let budget = Duration::from_secs(
        std::env::var("INTERLINK_FUZZ_SECS")
            .ok()
            .map(|s| s.parse())
            .transpose()
            .context("INTERLINK_FUZZ_SECS must be whole seconds")?
            .unwrap_or(20),
    );
    let schema = Schema::load()?;
    let Some(deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    let node = ServerProcess::start(&deployment, &[]).await?;
    // Far above the bound under test: the client must not be what cuts a slow answer short.
    // One connection per case: the node may close a connection after answering a request whose
    // body it did not read (413, 415), and a pooled connection reused in that moment fails to
    // send although the node answered everything (seen in CI as "no answer" on plain requests).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()?;
    let login = json!({
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD },
    });
    let signed: Value = http
        .post(format!("http://{}/graphql", node.addr))
        .json(&login)
        .send()
        .await?
        .json()
        .await?;
    let token = crate::helpers::str_at(&signed, "/data/login/accessToken")?;
    let target = Target { node, http, token };

    let mut failures = Vec::new();
    let regressions = load_regressions()?;
    for (path, case) in &regressions {
        if let (Some(why), _) = target.judge(case).await? {
            failures.push(format!("regression {}: {why}", path.display()));
        }
    }
    let rss_before = target.node.rss_kib()?;

    let seed = seed()?;
    println!(
        "fuzz seed {} (INTERLINK_FUZZ_SEED replays it)",
        hex::encode(seed)
    );
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = (
        proptest::bool::ANY,
        proptest::collection::vec(proptest::num::u16::ANY, 0..600),
    );
    let started = Instant::now();
    let mut cases = 0u64;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while started.elapsed() < budget && failures.len() < MOST_FAILURES {
        let mut tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("generating a case: {e}"))?;
        let (signed_in, numbers) = tree.current();
        let first = case(&numbers, signed_in, &schema);
        cases += 1;
        let (verdict, status) = target.judge(&first).await?;
        *statuses.entry(status).or_default() += 1;
        let Some(why) = verdict else {
            continue;
        };
        // Shrink: simpler tapes while the failure holds, for a bounded number of steps.
        let (mut smallest, mut smallest_why) = (first, why);
        let mut steps = 0;
        if tree.simplify() {
            while steps < 200 {
                steps += 1;
                let (signed_in, numbers) = tree.current();
                let candidate = case(&numbers, signed_in, &schema);
                match target.judge(&candidate).await?.0 {
                    Some(why) => {
                        (smallest, smallest_why) = (candidate, why);
                        if !tree.simplify() {
                            break;
                        }
                    }
                    None => {
                        if !tree.complicate() {
                            break;
                        }
                    }
                }
            }
        }
        let saved = save_regression(&smallest, &smallest_why)?;
        failures.push(format!(
            "{smallest_why}, saved as {} after {steps} shrink steps: {}",
            saved.display(),
            serde_json::to_string(&smallest)?
        ));
    }
    let rss_after = target.node.rss_kib()?;
    println!(
        "fuzz: {cases} generated cases in {:.1?} plus {} regressions; node RSS {rss_before} KiB -> {rss_after} KiB; statuses {statuses:?}; {} failures",
        started.elapsed(),
        regressions.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "the router mishandled generated requests:\n{}",
        failures.join("\n")
    );
    assert!(
        rss_after <= rss_before + RSS_GROWTH_KIB,
        "node RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    Ok(())
}
