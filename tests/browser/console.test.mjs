// The console and the query page in Debian's Chromium, driven by playwright-core (which downloads
// no browser). Starts its own hub on a free loopback port with the demo company, walks the flows
// of issue 15 on a phone (412×915) and a PC (1440×900), and checks every page it visits with
// axe-core and for horizontal overflow at phone size.
//
// Run: cargo build && npm ci --prefix tests/browser && npm test --prefix tests/browser
// (INTERLINK_BIN names the binary; CHROMIUM the browser, /usr/bin/chromium by default).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR || join(repo, "target");
const binary = process.env.INTERLINK_BIN || join(targetDir, "debug", "interlink");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const axeSource = readFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");
const shots = join(here, "screenshots");
const PASSWORD = "demo-password-1";
const ADMIN = { email: "admin@demo.interlink.local", password: "admin-password-123" };
const PHONE = { width: 412, height: 915 };
const SMALL_PHONE = { width: 390, height: 844 };
const TAP = 44;
const PC = { width: 1440, height: 900 };
const WAIT = 15_000;

let server;
let dataDir;
let base;
let browser;
const weights = [];
const checked = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

async function waitForHealth(url) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the hub did not start");
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "interlink-browser-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    INTERLINK_DATA_DIR: dataDir,
    INTERLINK_BIND: `127.0.0.1:${port}`,
    INTERLINK_ADMIN_EMAIL: ADMIN.email,
    INTERLINK_ADMIN_PASSWORD: ADMIN.password,
    INTERLINK_LOGIN_ATTEMPTS_PER_CLIENT: "1000",
    DATABASE_URL: "",
    REDIS_URL: "",
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  execFileSync(binary, ["seed", "--demo"], { env, stdio: "ignore" });
  server = spawn(binary, ["serve"], { env, stdio: "ignore" });
  await waitForHealth(base);
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (weights.length) {
    console.log("first visit, empty cache: bytes of the page and its assets; server time to first byte:");
    for (const w of weights) console.log(`  ${w.path}: ${w.bytes} B in ${w.files} responses, ${w.serverMs} ms`);
  }
});

// A browser context of its own (its own cookies), with the page's policy kept except for the
// test's own axe script.
async function person(viewport, locale = "en-US") {
  const context = await browser.newContext({ viewport, locale, bypassCSP: true });
  const page = await context.newPage();
  const outside = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(base)) outside.push(request.url());
  });
  page.outside = outside;
  return page;
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel(/Email|邮箱/).fill(email);
  await page.getByLabel(/Password|密码/).fill(password);
  await page.getByRole("button", { name: /Sign in|登录/ }).click();
  await page.waitForURL(/\/work/);
}

// axe-core finds no serious or critical violation; at phone size nothing scrolls sideways.
async function check(page, label) {
  const key = `${label}@${page.viewportSize().width}`;
  if (checked.has(key)) return;
  checked.add(key);
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await globalThis.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `axe on ${label}`,
  );
  if (page.viewportSize().width <= PHONE.width) {
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    assert.ok(overflow <= 0, `${label} scrolls sideways by ${overflow}px at phone size`);
    // Controls a thumb presses (buttons, fields, the navigation) are at least 44px tall; a
    // checkbox counts by its label, which is what takes the tap.
    const small = await page.evaluate((tap) => {
      const targets = document.querySelectorAll(
        "button, select, input:not([type=hidden]):not([type=checkbox]), textarea, nav a, a.button, label:has(> input[type=checkbox])",
      );
      return [...targets]
        .filter((el) => el.offsetParent !== null)
        .map((el) => ({ el, box: el.getBoundingClientRect() }))
        .filter(({ box }) => box.height < tap - 0.5)
        .map(({ el, box }) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${(el.textContent || el.name || "").trim().slice(0, 30)}" ${Math.round(box.height)}px`);
    }, TAP);
    assert.deepEqual(small, [], `${label}: tap targets under ${TAP}px at phone size`);
  }
  assert.deepEqual(page.outside, [], `${label} asks nothing of other sites`);
}

// What a first visit of `path` costs with an empty cache: the HTML and every asset it loads,
// before attachments; and the server's time to the first byte, as the browser measured it.
async function weigh(path, who = { email: "alice@demo.interlink.local", password: PASSWORD }) {
  const signing = await browser.newContext({ viewport: PC });
  const first = await signing.newPage();
  await signIn(first, who.email, who.password);
  const storageState = await signing.storageState();
  await signing.close();
  const context = await browser.newContext({ viewport: PC, storageState });
  const page = await context.newPage();
  const sizes = [];
  page.on("response", (response) => {
    // The live stream never ends; it is not part of the page's weight.
    if ((response.headers()["content-type"] || "").startsWith("text/event-stream")) return;
    sizes.push(
      response
        .body()
        .then((body) => body.length)
        .catch(() => 0),
    );
  });
  const response = await page.goto(`${base}${path}`);
  await page.waitForLoadState("networkidle");
  const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  const serverMs = await page.evaluate(() => {
    const [nav] = performance.getEntriesByType("navigation");
    return Math.round(nav.responseStart - nav.requestStart);
  });
  weights.push({ path, bytes, serverMs, files: sizes.length });
  assert.ok(response.ok(), `${path} answers`);
  assert.ok(bytes < 100_000, `${path} weighs ${bytes} bytes`);
  await context.close();
}

test("the demo company's flows, on a phone and a PC, live and in two languages", async () => {
  const initiator = await person(PC);
  await signIn(initiator, "alice@demo.interlink.local");
  await check(initiator, "my work");
  await initiator.screenshot({ path: join(shots, "board-pc.png") });

  // The approver waits on a phone, with the inbox open.
  const approver = await person(PHONE);
  await signIn(approver, "carol@demo.interlink.local");
  await check(approver, "my work");
  await approver.goto(`${base}/approvals`);
  await check(approver, "approvals");

  // 1. The initiator creates a task with a custom field and submits it.
  await initiator.goto(`${base}/tasks/new`);
  await check(initiator, "new task");
  await initiator.getByLabel("Category").first().selectOption({ label: "Customer visit" });
  await initiator.waitForURL(/category=/);
  await initiator.getByLabel("Title").fill("Visit Umbrella in the browser");
  await initiator.getByLabel("Executors").selectOption({ label: "Bob" });
  await initiator.getByLabel("customer").fill("Umbrella");
  await initiator.getByLabel("Merit", { exact: true }).fill("10");
  await check(initiator, "new task with its category");
  await initiator.getByRole("button", { name: "Create" }).click();
  await initiator.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
  const taskUrl = initiator.url();
  assert.match(await initiator.locator("dl.fields").innerText(), /Umbrella/);
  await initiator.getByRole("button", { name: "Submit for approval" }).click();
  await initiator.waitForURL(taskUrl);
  await check(initiator, "task");

  // 2. It arrives in the approver's inbox without a reload, and is approved from there.
  const inboxItem = approver.locator("#inbox").getByText("Visit Umbrella in the browser");
  await inboxItem.waitFor({ timeout: WAIT });
  await approver.locator(".card", { hasText: "Visit Umbrella in the browser" }).getByRole("button", { name: "Approve" }).click();
  await approver.waitForURL(/\/approvals$/);
  const head = await person(PHONE);
  await signIn(head, "dave@demo.interlink.local");
  await head.goto(`${base}/approvals`);
  await head.locator(".card", { hasText: "Visit Umbrella in the browser" }).getByRole("button", { name: "Approve" }).click();
  await head.waitForURL(/\/approvals$/);

  // 3. The initiator's open task page says APPROVED, without a reload.
  await initiator.locator('#review-status[data-status="APPROVED"]').waitFor({ timeout: WAIT });

  // 4. The executor reports 100% on a phone; the confirmer confirms; the merit shows.
  const executor = await person(PHONE);
  await signIn(executor, "bob@demo.interlink.local");
  await executor.goto(taskUrl);
  await check(executor, "task");
  await executor.screenshot({ path: join(shots, "task-phone.png"), fullPage: false });
  await executor.getByLabel("Progress (%)").fill("100");
  await executor.getByRole("button", { name: "Report progress" }).click();
  await executor.waitForURL(taskUrl);
  await initiator.getByRole("button", { name: /Confirm progress/ }).waitFor({ timeout: WAIT });
  await initiator.getByRole("button", { name: /Confirm progress/ }).click();
  await initiator.waitForURL(taskUrl);
  await executor.locator("dl.fields").getByRole("link", { name: "Bob" }).click();
  await executor.waitForURL(/\/people\//);
  await check(executor, "person");
  const merit = Number(await executor.locator("#merit-total").innerText());
  assert.ok(merit >= 10, `the executor's page shows the merit (${merit})`);

  // 5. An admin edits a category on the configuration page.
  const admin = await person(PC);
  await signIn(admin, ADMIN.email, ADMIN.password);
  await admin.goto(`${base}/configuration`);
  await check(admin, "configuration");
  await admin.getByRole("link", { name: "Customer visit" }).click();
  await check(admin, "category");
  await admin.getByLabel("Name", { exact: true }).fill("Customer visit (edited)");
  await admin.getByRole("button", { name: "Save" }).click();
  await admin.waitForURL(/\/configuration$/);
  await admin.getByRole("link", { name: "Customer visit (edited)" }).waitFor();

  // 6. The Chinese switch shows the same page in Chinese.
  await approver.goto(`${base}/approvals`);
  await approver.getByRole("link", { name: "中文" }).click();
  await approver.waitForURL(/\/approvals$/);
  assert.equal(await approver.getAttribute("html", "lang"), "zh-CN");
  await approver.getByRole("heading", { name: "待我审批" }).waitFor();
  await check(approver, "approvals in Chinese");
  await approver.screenshot({ path: join(shots, "approvals-zh-phone.png") });

  // 7 and 8 ran on every page above; the rest of the pages at both sizes.
  for (const page of [executor, initiator]) {
    for (const path of ["/work", "/approvals", "/notifications", "/people", "/account/password"]) {
      await page.goto(`${base}${path}`);
      await check(page, path);
    }
  }

  for (const path of ["/work", taskUrl.replace(base, ""), "/approvals", "/notifications", "/people"]) {
    await weigh(path);
  }
});

test("the back office, on both phones and a PC", async () => {
  for (const viewport of [SMALL_PHONE, PHONE, PC]) {
    const admin = await person(viewport);
    await signIn(admin, ADMIN.email, ADMIN.password);
    for (const path of [
      "/work",
      "/finance",
      "/configuration",
      "/configuration/accounts/new",
      "/configuration/budgets/new",
      "/configuration/organisation",
      "/configuration/flows/new",
      "/configuration/types/new",
      "/operations",
      "/integrations",
    ]) {
      await admin.goto(`${base}${path}`);
      await check(admin, path);
    }
    // Every primary destination is in the navigation, within thumb reach on a phone.
    const nav = admin.locator("nav.primary");
    for (const name of ["My work", "Approvals", "People", "Finance", "Operations", "Integrations", "Configuration"]) {
      await nav.getByRole("link", { name }).waitFor();
    }
    if (viewport.width <= PHONE.width) {
      const box = await nav.boundingBox();
      assert.ok(box && box.y + box.height >= viewport.height - 1, "the navigation sits at the bottom of a phone");
    }
    await admin.context().close();
  }

  // An app with a key shown once, and an account's ledger.
  const admin = await person(PHONE);
  await signIn(admin, ADMIN.email, ADMIN.password);
  await admin.goto(`${base}/integrations`);
  await admin.getByLabel("Name", { exact: true }).fill("Browser partner");
  await admin.getByLabel("TASKS_READ").check();
  await admin.getByRole("button", { name: "Create" }).click();
  await admin.waitForURL(/\/integrations\/apps\//);
  await check(admin, "app");
  await admin.getByLabel("Key name").fill("browser");
  await admin.getByRole("button", { name: "New key" }).click();
  await admin.locator("#revealed-key").waitFor();
  await check(admin, "app with its new key");
  await admin.goto(`${base}/finance`);
  // The demo's books: the chart, budget bars and a ledger.
  await admin.locator("svg.chart.pnl").waitFor();
  assert.ok((await admin.locator("ul.budgets meter").count()) >= 1, "a budget bar");
  await admin.getByRole("link", { name: "6000 · Travel" }).click();
  await admin.waitForURL(/\/finance\/ledger\/6000/);
  await admin.getByText("Travel for Globex renewal").waitFor();
  await check(admin, "ledger");
  for (const path of ["/finance", "/operations", "/integrations", "/configuration"]) {
    await weigh(path, ADMIN);
  }
});

test("the query page runs a query with no internet", async () => {
  const page = await person(PC);
  const token = await (async () => {
    const response = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        variables: { e: "alice@demo.interlink.local", p: PASSWORD },
      }),
    });
    return (await response.json()).data.login.accessToken;
  })();
  await page.route((url) => !url.href.startsWith(base), (route) => route.abort());
  await page.goto(`${base}/graphiql`);
  await page.locator("#token").fill(token);
  await page.locator("#query").fill("{ me { name } }");
  await page.locator("#run").click();
  await page.locator("#result").getByText("Alice").waitFor({ timeout: WAIT });
  assert.deepEqual(page.outside, []);
});
