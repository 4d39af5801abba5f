// The offline query page: sends the editor's operation to /graphql with the token given, and
// lists the schema from introspection. Everything it loads comes from this server.

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "interlink.graphiql.token";

$("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
$("token").addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  loadSchema();
});

async function post(query, variables) {
  const headers = { "content-type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

async function run() {
  let variables;
  try {
    variables = JSON.parse($("variables").value || "{}");
  } catch (err) {
    $("result").textContent = `Variables are not JSON: ${err.message}`;
    return;
  }
  $("result").textContent = "…";
  try {
    const answer = await post($("query").value, variables);
    $("result").textContent = JSON.stringify(answer, null, 2);
  } catch (err) {
    $("result").textContent = `The request failed: ${err.message}`;
  }
}

$("run").addEventListener("click", run);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    event.preventDefault();
    run();
  }
});

const INTROSPECTION = `{ __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { name kind description
    fields { name description args { name type { ...T } } type { ...T } }
    inputFields { name description type { ...T } }
    enumValues { name description } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

function typeName(type) {
  if (!type) return "";
  if (type.kind === "NON_NULL") return `${typeName(type.ofType)}!`;
  if (type.kind === "LIST") return `[${typeName(type.ofType)}]`;
  return type.name;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function describe(type) {
  const block = element("details");
  block.dataset.name = type.name.toLowerCase();
  block.append(element("summary", `${type.kind.toLowerCase()} ${type.name}`));
  if (type.description) block.append(element("p", type.description, "doc"));
  const list = element("ul");
  for (const field of type.fields ?? type.inputFields ?? []) {
    const args = (field.args ?? []).map((a) => `${a.name}: ${typeName(a.type)}`).join(", ");
    const item = element("li", `${field.name}${args ? `(${args})` : ""}: ${typeName(field.type)}`);
    item.dataset.name = field.name.toLowerCase();
    if (field.description) item.append(element("div", field.description, "doc"));
    list.append(item);
  }
  for (const value of type.enumValues ?? []) list.append(element("li", value.name));
  block.append(list);
  return block;
}

async function loadSchema() {
  const docs = $("docs");
  try {
    const answer = await post(INTROSPECTION, {});
    const schema = answer.data?.__schema;
    if (!schema) {
      docs.textContent = answer.errors?.[0]?.message ?? "No schema.";
      return;
    }
    const roots = [schema.queryType, schema.mutationType, schema.subscriptionType]
      .filter(Boolean)
      .map((t) => t.name);
    const types = schema.types
      .filter((t) => !t.name.startsWith("__"))
      .sort((a, b) => {
        const rank = (t) => (roots.includes(t.name) ? roots.indexOf(t.name) : roots.length);
        return rank(a) - rank(b) || a.name.localeCompare(b.name);
      });
    docs.replaceChildren(...types.map(describe));
  } catch (err) {
    docs.textContent = `Could not read the schema: ${err.message}`;
  }
}

$("search").addEventListener("input", () => {
  const needle = $("search").value.trim().toLowerCase();
  for (const block of $("docs").children) {
    const fieldHit = [...block.querySelectorAll("li")].some((li) => li.dataset.name?.includes(needle));
    const hit = !needle || block.dataset.name.includes(needle) || fieldHit;
    block.hidden = !hit;
    block.open = Boolean(needle) && hit;
  }
});

loadSchema();
