// Browser tests of the catalog UI: a real `curio standalone` on a copy of the example folder,
// Debian's Chromium driven by playwright-core, every page checked with axe-core.
//
//   CURIO_BIN=target/debug/curio node --test tests/ui/ui.test.mjs
//
// The copy gains a `sandbox` namespace that team-a's viewers may also read (so vera sees the
// namespace picker) holding a hostile catalog: script tags, onerror handlers, javascript: links
// and template-injection strings in every text field it has.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BIN = process.env.CURIO_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.UI_SCREENSHOTS || join(repo, "target/ui-screenshots");

const HOSTILE = [
  "<script>window.__pwned='script'</script>",
  "<img src=x onerror=\"window.__pwned='img'\">",
  "{{constructor.constructor('window.__pwned=1')()}}",
  "${window.__pwned='template'}",
  "<svg onload=alert(1)>",
].join(" ");

const SANDBOX = `
apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewers, namespace: sandbox}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: curio-view}
subjects: [{kind: Group, name: team-a-viewers}]
---
apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata: {name: hostile, namespace: sandbox}
spec:
  interval: 1h
  source:
    inline:
      assets:
        - kind: Model
          name: evil-model
          version: "1"
          displayName: ${JSON.stringify(`Evil ${HOSTILE}`)}
          description: ${JSON.stringify(`Description ${HOSTILE}`)}
          provider: ${JSON.stringify("<b onmouseover=alert(1)>Provider</b>")}
          license: ${JSON.stringify("{{7*7}}")}
          tags: [sandbox]
          labels: {task: text-generation}
          links:
            - {type: weights, uri: "javascript:alert(document.domain)"}
            - {type: card, uri: "data:text/html,<script>alert(1)</script>"}
            - {type: home, uri: "https://example.com/evil?q=<script>"}
          metadata: {note: ${JSON.stringify(HOSTILE)}}
`;

let server;
let base;
let browser;
let workdir;

async function waitFor(check, what, ms = 60000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

async function apiGet(path, token) {
  const response = await fetch(`${base}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: await response.json() };
}

before(async () => {
  assert.ok(BIN, "CURIO_BIN names the curio binary (scripts/test.sh sets it)");
  mkdirSync(SHOTS, { recursive: true });
  workdir = mkdtempSync(join(tmpdir(), "curio-ui-"));
  const manifests = join(workdir, "manifests");
  cpSync(join(repo, "examples/standalone"), manifests, { recursive: true });
  writeFileSync(join(manifests, "sandbox.yaml"), SANDBOX);
  server = spawn(BIN, [
    "standalone", "--manifests", manifests, "--data-dir", join(workdir, "data"),
    "--listen", "127.0.0.1:0", "--https-listen", "off", "--log-format", "json",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  server.stdout.on("data", (d) => { output += d; });
  server.stderr.on("data", (d) => { output += d; });
  await waitFor(() => {
    const match = output.match(/serving (http:\/\/127\.0\.0\.1:\d+)/);
    if (match) base = match[1];
    return Boolean(match);
  }, `the server to start (output: ${output.slice(-2000)})`);
  // Every source applied: both namespaces vera reads hold their catalogs.
  await waitFor(async () => {
    const { body } = await apiGet("/api/v1/namespaces", "vera-token");
    const counts = Object.fromEntries(body.items.map((i) => [i.name, i.counts.Model ?? 0]));
    return counts["team-a"] >= 4 && counts.sandbox >= 1;
  }, "the example catalogs");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  // Remembered for the live-update test, which edits the folder.
  process.env.CURIO_UI_MANIFESTS = manifests;
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

/** A fresh tab that records console errors, page errors, dialogs and CSP violations. */
async function tab({ width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("dialog", async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { context, page, problems };
}

async function signIn(page, token) {
  await page.goto(`${base}/ui/`);
  await page.waitForURL(/\/ui\/signin/);
  await page.getByLabel("Bearer token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** axe-core on the page as it is: no serious or critical violations. */
async function accessible(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${name}: accessibility violations ${JSON.stringify(bad)}`);
}

/** A page is done: screenshot saved, accessible, no console errors, no CSP violations. */
async function check(page, problems, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await accessible(page, name);
  const csp = await page.evaluate(() => window.__csp);
  assert.deepEqual(csp, [], `${name}: CSP violations`);
  assert.deepEqual(problems, [], `${name}: console errors or dialogs`);
}

test("the UI's responses carry the security headers", async () => {
  for (const path of ["/ui/", "/ui/ns/team-a/catalog", "/ui/assets/app.js", "/ui/assets/app.css"]) {
    const response = await fetch(`${base}${path}`);
    assert.equal(response.status, 200, path);
    const csp = response.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(response.headers.get("referrer-policy"), "no-referrer", path);
    // Revalidated, not downloaded again.
    const again = await fetch(`${base}${path}`, { headers: { "If-None-Match": response.headers.get("etag") } });
    assert.equal(again.status, 304, path);
  }
});

test("a viewer signs in, picks a namespace, filters, searches, pages and reads an asset's history", async () => {
  const { context, page, problems } = await tab();
  await page.goto(`${base}/ui/`);
  await page.waitForURL(/\/ui\/signin/);
  await page.getByLabel("Bearer token").waitFor();
  await check(page, problems, "01-sign-in");

  // A wrong token is refused on the page.
  await page.getByLabel("Bearer token").fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#signin-error").filter({ hasText: "not accepted" }).waitFor();
  problems.length = 0; // the refused request's 401 is logged by the browser, as intended

  await page.getByLabel("Bearer token").fill("vera-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  // Two readable namespaces (team-a and sandbox): the picker, without team-b.
  const picker = page.locator("#namespaces");
  await picker.waitFor();
  const offered = await picker.locator("tbody th").allTextContents();
  assert.deepEqual(offered, ["sandbox", "team-a"]);
  await check(page, problems, "02-namespace-picker");

  await picker.getByRole("link", { name: "team-a" }).click();
  await page.waitForURL(/\/ui\/ns\/team-a\/catalog/);
  await page.locator("#assets").waitFor();
  await page.locator("#facets fieldset").first().waitFor();
  const tabs = await page.locator(".tabs a").allTextContents();
  assert.deepEqual(tabs, ["All", "Models", "MCP servers", "Agents"]);
  const all = await page.locator("#assets tbody tr").count();
  assert.equal(all, 9, "team-a's nine assets");
  await check(page, problems, "03-catalog");

  // A facet: provider IBM.
  await page.locator('fieldset[data-field="provider"]').getByLabel(/^IBM/).check();
  await page.waitForURL(/provider=IBM/);
  await waitFor(async () => (await page.locator("#assets tbody tr").count()) === 2, "the IBM filter");
  const providers = await page.locator("#assets tbody tr td:nth-child(4)").allTextContents();
  assert.deepEqual(providers, ["IBM", "IBM"]);
  await check(page, problems, "04-catalog-facet");

  // The back button undoes the filter: the URL is the state.
  await page.goBack();
  await waitFor(async () => (await page.locator("#assets tbody tr").count()) === 9, "back to the whole list");

  // Search.
  await page.getByLabel("Search").fill("llama");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/q=llama/);
  await waitFor(async () => (await page.locator("#assets tbody tr").count()) === 1, "the search");
  assert.match(await page.locator("#assets tbody").textContent(), /Llama 3\.1 8B Instruct/);
  await check(page, problems, "05-catalog-search");

  // Paging with continue tokens: 4 a page, the next page by its link, back by the button.
  await page.goto(`${base}/ui/ns/team-a/catalog?limit=4`);
  await page.locator("#assets").waitFor();
  const first = await page.locator("#assets tbody td.name a").allTextContents();
  assert.equal(first.length, 4);
  await page.locator("#next-page").click();
  await page.waitForURL(/continue=/);
  await waitFor(async () => {
    const second = await page.locator("#assets tbody td.name a").allTextContents();
    return second.length === 4 && !second.some((n) => first.includes(n));
  }, "the second page");
  await check(page, problems, "06-catalog-page-2");
  await page.locator("#next-page").click();
  await waitFor(async () => (await page.locator("#assets tbody tr").count()) === 1, "the last page of one");
  assert.equal(await page.locator("#next-page").count(), 0, "no page after the last");
  await page.goBack();
  await page.goBack();
  await waitFor(async () => {
    const again = await page.locator("#assets tbody td.name a").allTextContents();
    return JSON.stringify(again) === JSON.stringify(first);
  }, "back on the first page");
  await page.goto(`${base}/ui/ns/team-a/catalog`);
  await page.locator("#assets").waitFor();

  // An asset and its history.
  await page.getByRole("link", { name: "Granite 3.1 8B Instruct" }).click();
  await page.waitForURL(/\/assets\/models\//);
  await page.locator("#fields").waitFor();
  const fields = await page.locator("#fields").textContent();
  for (const expected of ["ibm-granite/granite-3.1-8b-instruct", "3.1", "IBM", "apache-2.0", "foundation-models"]) {
    assert.ok(fields.includes(expected), `the asset page shows ${expected}`);
  }
  const weights = page.locator("#links a");
  assert.equal(await weights.getAttribute("href"), "https://huggingface.co/ibm-granite/granite-3.1-8b-instruct");
  await page.locator("#history-table").waitFor();
  const history = await page.locator("#history-table tbody").textContent();
  assert.match(history, /create/);
  assert.match(history, /team-a onboarding/, "the change reason from the annotation");
  await check(page, problems, "07-asset");

  // Sources and the audit trail.
  await page.getByRole("link", { name: "Sources" }).click();
  await page.locator("#source-foundation-models").waitFor();
  assert.match(await page.locator("#source-foundation-models").textContent(), /True/);
  await check(page, problems, "08-sources");
  await page.getByRole("link", { name: "Audit trail" }).click();
  await page.locator("#audit").waitFor();
  await page.getByLabel("Resource").fill("agents");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/resource=agents/);
  await waitFor(async () => {
    const resources = await page.locator("#audit tbody td:nth-child(4)").allTextContents();
    return resources.length > 0 && resources.every((r) => r === "agents");
  }, "the audit filter");
  await check(page, problems, "09-audit");
  await context.close();
});

test("another tenant's namespace is not offered and its URL is a 403 page", async () => {
  const { context, page, problems } = await tab();
  await signIn(page, "vera-token");
  await page.locator("#namespaces").waitFor();
  await page.goto(`${base}/ui/ns/team-b/catalog`);
  await page.locator("#forbidden-message").waitFor();
  const message = await page.locator("#forbidden-message").textContent();
  assert.match(message, /vera/);
  assert.match(message, /team-b/);
  assert.match(message, /list/);
  assert.equal(await page.locator("#assets").count(), 0);
  problems.length = 0; // the browser logs the refused fetch (403) itself
  await check(page, problems, "10-forbidden");
  await context.close();
});

test("the models-only user sees only the Models tab, and no picker", async () => {
  const { context, page, problems } = await tab();
  await signIn(page, "mo-token");
  // One readable namespace: straight to its catalog.
  await page.waitForURL(/\/ui\/ns\/team-a\/catalog/);
  await page.locator("#assets").waitFor();
  const tabs = await page.locator(".tabs a").allTextContents();
  assert.deepEqual(tabs, ["All", "Models"]);
  const kinds = new Set(await page.locator("#assets tbody tr td:nth-child(2)").allTextContents());
  assert.equal(await page.locator("#assets thead th:nth-child(2)").textContent(), "Kind");
  assert.deepEqual([...kinds], ["Model"]);
  // No Sources or Audit links for a role that may not list them.
  assert.equal(await page.getByRole("link", { name: "Sources" }).count(), 0);
  await check(page, problems, "11-models-only");
  await context.close();
});

test("hostile catalog text renders inert", async () => {
  const { context, page, problems } = await tab();
  await signIn(page, "vera-token");
  await page.locator("#namespaces").waitFor();
  await page.goto(`${base}/ui/ns/sandbox/catalog`);
  await page.locator("#assets").waitFor();
  await page.locator("#facets fieldset").first().waitFor();
  await check(page, problems, "12-xss-catalog");
  await page.locator("#assets a").first().click();
  await page.locator("#fields").waitFor();
  await page.locator("#history").waitFor();
  // The texts are shown as text.
  const text = await page.locator("main").textContent();
  assert.ok(text.includes("<script>window.__pwned='script'</script>"), "the script tag is visible text");
  assert.ok(text.includes("{{constructor.constructor("), "the template string is visible text");
  // Nothing ran, nothing became markup, no javascript:/data: link exists.
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("main script, main img, main svg, main b").count(), 0);
  const hrefs = await page.locator("main a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  for (const href of hrefs) assert.doesNotMatch(href, /^(javascript|data):/i, href);
  assert.ok(hrefs.includes("https://example.com/evil?q=%3Cscript%3E"), "the https link stays a link");
  assert.ok(text.includes("javascript:alert(document.domain)"), "the javascript: link is shown as text");
  await check(page, problems, "13-xss-asset");
  await context.close();
});

test("a catalog edit appears on an open page without reloading", async () => {
  const { context, page, problems } = await tab();
  await signIn(page, "vera-token");
  await page.locator("#namespaces").waitFor();
  await page.goto(`${base}/ui/ns/team-a/catalog?kind=Model`);
  await page.locator("#assets").waitFor();
  const before = await page.locator("#assets tbody tr").count();
  await page.evaluate(() => { window.__sameDocument = true; });
  const file = join(process.env.CURIO_UI_MANIFESTS, "team-a/models.yaml");
  const original = readFileSync(file, "utf8");
  assert.match(original, /assets:\n/);
  writeFileSync(file, original.replace(/assets:\n/, `assets:
        - kind: Model
          name: live-update-model
          version: "1"
          displayName: Live Update Model
          provider: team-a
`));
  await page.getByRole("link", { name: "Live Update Model" }).waitFor({ timeout: 30000 });
  assert.equal(await page.locator("#assets tbody tr").count(), before + 1);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await check(page, problems, "14-live-update");
  writeFileSync(file, original);
  // The next test starts on a settled catalog: a re-render under its keyboard focus (the
  // restore arriving mid-test) would move the focus it is walking.
  await waitFor(
    async () => (await page.getByRole("link", { name: "Live Update Model" }).count()) === 0,
    "the restored catalog",
  );
  await context.close();
});

test("the catalog works with the keyboard alone", async () => {
  const { context, page, problems } = await tab();
  await page.goto(`${base}/ui/`);
  await page.waitForURL(/\/ui\/signin/);
  // The token field has the focus; Tab reaches the button; Enter submits.
  await page.keyboard.type("mo-token");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Sign in");
  await page.keyboard.press("Enter");
  await page.locator("#assets").waitFor();
  /** Tabs forward until `selector` has the focus. */
  const tabTo = async (selector) => {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
    }
    assert.fail(`Tab never reached ${selector}`);
  };
  // A filter changes the URL at once and redraws the list, then the filters, when their
  // answers come: keys pressed before that land on elements about to be replaced (a link
  // focused in the old table, then Enter on nothing). The page marks each drawing.
  const drawn = () => page.evaluate(() =>
    ["curio:catalog-rendered", "curio:facets-rendered"].map((m) => performance.getEntriesByName(m).length));
  const redrawn = (before, what) => waitFor(async () => {
    const now = await drawn();
    return now[0] > before[0] && now[1] > before[1];
  }, what);
  await redrawn([0, 0], "the catalog");
  await tabTo("#q");
  await page.keyboard.type("granite");
  let before = await drawn();
  await page.keyboard.press("Enter");
  await page.waitForURL(/q=granite/);
  await redrawn(before, "the search");
  assert.equal(await page.locator("#assets tbody tr").count(), 2, "the search");
  await tabTo('fieldset[data-field="stage"] input');
  before = await drawn();
  await page.keyboard.press("Space");
  await page.waitForURL(/stage=production/);
  await redrawn(before, "the filtered catalog");
  await tabTo("#assets a");
  await page.keyboard.press("Enter");
  await page.locator("#fields").waitFor();
  // The focus is always visible: the focused element draws an outline.
  await tabTo("a");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the catalog is readable at phone width", async () => {
  const { context, page, problems } = await tab({ width: 390, height: 844 });
  await signIn(page, "mo-token");
  await page.locator("#assets").waitFor();
  await page.screenshot({ path: join(SHOTS, "15-phone.png"), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`));
  assert.ok(overflow <= 1, `no horizontal scrolling at 390 px (overflow ${overflow}px: ${wide.join(", ")})`);
  await check(page, problems, "15-phone");
  await context.close();
});
