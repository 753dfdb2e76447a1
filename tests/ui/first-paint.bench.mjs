// How fast the catalog page paints its first page of 50 with 100,000 assets in the namespace.
// Prints one `name: value unit` line per figure.
//
//   cargo build --release --bin curio
//   (cd tests/ui && npm ci) && CURIO_BIN=$CARGO_TARGET_DIR/release/curio node tests/ui/first-paint.bench.mjs
//
// A `curio standalone` on a throwaway PostgreSQL database (psql on PATH; PGHOST/PGPORT/PGUSER
// as scripts/test.sh uses them) loads one namespace of 100,000 models through ten URL sources of
// 10,000 each, served from its own files/ folder. Then headless Chromium opens the catalog page
// (signed in with a token) and records when the results table is in the document and the next
// frame has been produced: with the response cache off (every list read from PostgreSQL, the
// baseline) and on (the default); the first load after the server started, ten loads each in a
// new browser context, and ten loads of the page in one tab; beside them the sign-in page (no
// request at all) in the same tab, the floor this browser on this machine sets for any page.

import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.CURIO_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PG = { host: process.env.PGHOST || "127.0.0.1", port: process.env.PGPORT || "5432", user: process.env.PGUSER || "postgres" };
const SOURCES = 10;
const PER_SOURCE = 10000;
const WARM_LOADS = 10;

if (!BIN) throw new Error("CURIO_BIN names the curio binary (a release build)");

function psql(sql) {
  execFileSync("psql", ["-h", PG.host, "-p", PG.port, "-U", PG.user, "-d", "postgres", "-qAtc", sql]);
}

function catalog(source) {
  const lines = ["apiVersion: curio.dev/v1alpha1", "kind: Catalog", "assets:"];
  for (let i = 0; i < PER_SOURCE; i++) {
    const n = source * PER_SOURCE + i;
    lines.push(
      `  - kind: Model`,
      `    name: org-${n % 50}/model-${n}`,
      `    version: "1.${n % 7}"`,
      `    displayName: Model ${n}`,
      `    description: Benchmark model number ${n} for the first-paint measurement.`,
      `    provider: provider-${n % 13}`,
      `    license: ${["apache-2.0", "mit", "llama3.1", "gemma"][n % 4]}`,
      `    tags: [bench, t${n % 17}]`,
      `    labels: {task: ${["text-generation", "embedding", "asr"][n % 3]}}`,
    );
  }
  return lines.join("\n") + "\n";
}

function manifests(dir) {
  mkdirSync(join(dir, "files/bench"), { recursive: true });
  writeFileSync(join(dir, "tokens.csv"), "reader-token,reader,1,\"readers\"\n");
  const docs = [
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}",
    `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: curio-view}
rules:
  - apiGroups: [curio.dev]
    resources: [catalogsources, refreshjobs, auditevents, models, mcpservers, agents]
    verbs: [get, list, watch]`,
    `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: bench}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: curio-view}
subjects: [{kind: Group, name: readers}]`,
  ];
  for (let s = 0; s < SOURCES; s++) {
    writeFileSync(join(dir, `files/bench/catalog-${s}.yaml`), catalog(s));
    docs.push(`apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata: {name: models-${s}, namespace: bench}
spec:
  interval: 24h
  source:
    url: {url: "\${CURIO_URL}/files/bench/catalog-${s}.yaml"}`);
  }
  writeFileSync(join(dir, "bench.yaml"), docs.join("\n---\n") + "\n");
}

async function start(dir, database, cacheBytes) {
  const server = spawn(BIN, [
    "standalone", "--manifests", dir, "--database-url", database, "--listen", "127.0.0.1:0",
    "--https-listen", "off", "--log-format", "json", "--response-cache-bytes", String(cacheBytes),
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  server.stdout.on("data", (d) => { output += d; });
  server.stderr.on("data", () => {});
  const deadline = Date.now() + 60000;
  for (;;) {
    const match = output.match(/serving (http:\/\/127\.0\.0\.1:\d+)/);
    if (match) return { server, base: match[1] };
    if (Date.now() > deadline) throw new Error(`the server did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function models(base) {
  const response = await fetch(`${base}/api/v1/namespaces`, { headers: { Authorization: "Bearer reader-token" } });
  const body = await response.json();
  return body.items.find((i) => i.name === "bench")?.counts.Model ?? 0;
}

/** Marks, in every document of `context`, when the results table entered the DOM and the
 * next frame was produced, and when the facets arrived. */
async function observe(context) {
  await context.addInitScript(() => {
    sessionStorage.setItem("curio.token", "reader-token");
    const observer = new MutationObserver(() => {
      // The sign-in form needs no request: how soon this browser paints any page of ours.
      if (document.querySelector("#token") && !window.__floor) {
        window.__floor = "pending";
        requestAnimationFrame(() => setTimeout(() => { window.__floor = performance.now(); }, 0));
      }
      if (document.querySelector("#assets tbody tr") && !window.__painted) {
        window.__painted = "pending";
        requestAnimationFrame(() => setTimeout(() => { window.__painted = performance.now(); }, 0));
      }
      if (document.querySelector("#facets fieldset") && !window.__facets) window.__facets = performance.now();
    });
    observer.observe(document, { childList: true, subtree: true });
  });
}

/** Milliseconds from navigation start to the painted results, and to the facets. */
async function load(page, base) {
  await page.goto(`${base}/ui/ns/bench/catalog`);
  await page.waitForFunction(() => typeof window.__painted === "number" && window.__facets, null, { timeout: 60000 });
  const figures = await page.evaluate(() => ({ paint: window.__painted, facets: window.__facets, rows: document.querySelectorAll("#assets tbody tr").length }));
  if (figures.rows !== 50) throw new Error(`expected 50 rows, got ${figures.rows}`);
  return figures;
}

/** A load in a browser context of its own (no connections, no cached files). */
async function freshLoad(browser, base) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await observe(context);
  const figures = await load(await context.newPage(), base);
  await context.close();
  return figures;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const work = mkdtempSync(join(tmpdir(), "curio-first-paint-"));
const dbName = `curio_bench_ui_${process.pid}`;
psql(`CREATE DATABASE ${dbName}`);
const database = `postgres://${PG.user}@${PG.host}:${PG.port}/${dbName}`;
let running;
try {
  manifests(work);
  const loadStarted = Date.now();
  running = await start(work, database, 0);
  while ((await models(running.base)) < SOURCES * PER_SOURCE) {
    if (Date.now() - loadStarted > 900000) throw new Error("the catalog did not load in 15 minutes");
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`ui_bench_assets: ${SOURCES * PER_SOURCE} count`);
  console.log(`ui_bench_load_s: ${((Date.now() - loadStarted) / 1000).toFixed(1)} s`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  for (const [label, cacheBytes] of [["uncached", 0], ["cached", 64 << 20]]) {
    if (cacheBytes !== 0) {
      running.server.kill("SIGTERM");
      await new Promise((r) => running.server.once("exit", r));
      running = await start(work, database, cacheBytes);
      while ((await models(running.base)) < SOURCES * PER_SOURCE) await new Promise((r) => setTimeout(r, 200));
    }
    const cold = await freshLoad(browser, running.base);
    const fresh = [];
    for (let i = 0; i < WARM_LOADS; i++) fresh.push(await freshLoad(browser, running.base));
    // A user moving around: the same tab loads the page again (kept-alive connections,
    // revalidated files).
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await observe(context);
    const tab = await context.newPage();
    await load(tab, running.base);
    const again = [];
    for (let i = 0; i < WARM_LOADS; i++) again.push(await load(tab, running.base));
    // The floor: the sign-in page, which makes no request, in the same tab.
    const floor = [];
    for (let i = 0; i < WARM_LOADS; i++) {
      await tab.goto(`${running.base}/ui/signin`);
      await tab.waitForFunction(() => typeof window.__floor === "number");
      floor.push(await tab.evaluate(() => window.__floor));
    }
    await context.close();
    console.log(`ui_signin_paint_${label}_same_tab_p50_ms: ${median(floor).toFixed(0)} ms`);
    console.log(`ui_first_paint_${label}_cold_ms: ${cold.paint.toFixed(0)} ms`);
    console.log(`ui_first_paint_${label}_new_context_p50_ms: ${median(fresh.map((w) => w.paint)).toFixed(0)} ms`);
    console.log(`ui_first_paint_${label}_new_context_max_ms: ${Math.max(...fresh.map((w) => w.paint)).toFixed(0)} ms`);
    console.log(`ui_first_paint_${label}_same_tab_p50_ms: ${median(again.map((w) => w.paint)).toFixed(0)} ms`);
    console.log(`ui_first_paint_${label}_same_tab_max_ms: ${Math.max(...again.map((w) => w.paint)).toFixed(0)} ms`);
    console.log(`ui_facets_${label}_same_tab_p50_ms: ${median(again.map((w) => w.facets)).toFixed(0)} ms`);
  }
  await browser.close();
} finally {
  running?.server.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 500));
  psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  rmSync(work, { recursive: true, force: true });
}
