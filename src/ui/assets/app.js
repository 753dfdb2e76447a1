// Curio's catalog browser. Plain DOM, no framework, no build step: served from the binary.
//
// Safety: catalog text is written by tenants and read by others, so nothing here parses HTML.
// Every node is built with createElement and filled with textContent; an href is set only
// for http(s) URLs (see `safeHref`). The server's Content-Security-Policy allows only this
// script and its stylesheet, so even a mistake here could not run injected code.

"use strict";
performance.mark("curio:script");

const TOKEN_KEY = "curio.token";
const KINDS = [
  { kind: "Model", plural: "models", label: "Models" },
  { kind: "McpServer", plural: "mcpservers", label: "MCP servers" },
  { kind: "Agent", plural: "agents", label: "Agents" },
];
const FACETS = [
  ["provider", "Provider"],
  ["license", "License"],
  ["tag", "Tag"],
  ["stage", "Stage"],
  ["approved", "Approved"],
  ["source", "Source"],
  ["labelKey", "Label"],
];
const SORTS = [
  ["namespace", "Kind, name"],
  ["name", "Name A–Z"],
  ["-name", "Name Z–A"],
  ["-updated", "Recently updated"],
  ["updated", "Least recently updated"],
];

// ---------- DOM helpers ----------

/** An element with attributes and children (strings become text nodes, never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "onclick" || key === "onsubmit" || key === "onchange" || key === "oninput") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "href") {
      node.setAttribute("href", value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Only absolute http(s) URLs become links; anything else (javascript:, data:, …) is text. */
function safeHref(raw) {
  if (typeof raw !== "string") return null;
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function externalLink(raw, label) {
  const href = safeHref(raw);
  return href
    ? el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, label ?? raw)
    : el("span", {}, label ?? String(raw), el("span", { class: "muted" }, " (not a web link)"));
}

/** An in-app link: navigates without a reload, keeps the URL the state. */
function link(path, text, attrs = {}) {
  return el("a", {
    href: path,
    ...attrs,
    onclick: (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      go(path);
    },
  }, text);
}

function main() {
  return document.getElementById("main");
}

function render(...children) {
  stopLive();
  const target = main();
  target.replaceChildren(...children.flat().filter(Boolean).map((c) =>
    c instanceof Node ? c : document.createTextNode(String(c))));
}

function announce(text) {
  document.getElementById("live").textContent = text;
}

// One formatter for every time shown: Date.toLocaleString builds a new one per call, which
// costs more than rendering the rest of a page of 50.
const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : TIME_FORMAT.format(date);
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 90) return `${Math.round(seconds)}s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
    credentials: "same-origin",
    signal: options.signal,
  });
  if (response.status === 304) return { notModified: true };
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body && (body.message || body.error)) || `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// Requests started before the document was parsed (see `prefetchPage`), each taken once.
const prefetched = new Map();

function prefetch(path) {
  const promise = api(path);
  promise.catch(() => {}); // handled where it is taken; never an unhandled rejection
  prefetched.set(path, promise);
}

function take(path) {
  const promise = prefetched.get(path);
  prefetched.delete(path);
  return promise || api(path);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---------- navigation ----------

function go(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route();
}

window.addEventListener("popstate", () => route());

let generation = 0;

async function route() {
  const mine = ++generation;
  const url = new URL(location.href);
  const parts = url.pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "signin") return signInPage(url);
    if (parts.length === 0) return await pickerPage(mine);
    if (parts[0] === "ns" && parts[1]) {
      const ns = parts[1];
      const page = parts[2] || "catalog";
      if (page === "catalog") return await catalogPage(mine, ns, url);
      if (page === "assets" && parts[3] && parts[4]) return await assetPage(mine, ns, parts[3], parts.slice(4).join("/"), url);
      if (page === "sources") return await sourcesPage(mine, ns);
      if (page === "audit") return await auditPage(mine, ns, url);
    }
    render(el("h1", {}, "Not found"), el("p", {}, link("/ui/", "Back to the catalog")));
  } catch (error) {
    if (mine !== generation) return;
    failure(error);
  }
}

function failure(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    const next = location.pathname + location.search;
    go(`/ui/signin${query({ next, reason: "expired" })}`, { replace: true });
    return;
  }
  if (error instanceof ApiError && error.status === 403) {
    document.title = "Forbidden · Curio";
    render(
      el("h1", {}, "Forbidden"),
      el("p", {}, "You do not have the permission this page needs."),
      el("p", { class: "error", id: "forbidden-message" }, error.message),
      el("p", {}, "Ask a namespace admin for a RoleBinding that grants it, or ", link("/ui/", "go back to what you can read"), "."),
    );
    return;
  }
  render(el("h1", {}, "Something went wrong"), el("p", { class: "error" }, error.message || String(error)));
}

// ---------- header ----------

function header(ns, active, access) {
  const nav = document.getElementById("nav");
  const items = [];
  if (ns) {
    items.push(el("span", { class: "muted-on-dark" }, "Namespace: ", el("strong", {}, ns)));
    items.push(link(`/ui/ns/${encodeURIComponent(ns)}/catalog`, "Catalog", active === "catalog" ? { "aria-current": "page" } : {}));
    if (!access || may(access, "catalogsources", "list")) {
      items.push(link(`/ui/ns/${encodeURIComponent(ns)}/sources`, "Sources", active === "sources" ? { "aria-current": "page" } : {}));
    }
    if (!access || may(access, "auditevents", "list")) {
      items.push(link(`/ui/ns/${encodeURIComponent(ns)}/audit`, "Audit trail", active === "audit" ? { "aria-current": "page" } : {}));
    }
    if (state.namespaces && state.namespaces.length > 1) items.push(link("/ui/", "All namespaces"));
  }
  nav.replaceChildren(...items);
  const who = document.getElementById("who");
  const user = access && access.user;
  who.replaceChildren(
    user ? el("span", {}, "Signed in as ", el("strong", {}, user)) : "",
    sessionStorage.getItem(TOKEN_KEY)
      ? el("button", { type: "button", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); state.namespaces = null; go("/ui/signin"); } }, "Sign out")
      : "",
  );
}

function may(access, resource, verb) {
  return access.resources.some((r) => r.resource === resource && r.verbs.includes(verb));
}

const state = { namespaces: null, access: new Map() };

async function namespaces() {
  if (!state.namespaces) {
    const list = await api("/api/v1/namespaces");
    state.namespaces = list.items;
  }
  return state.namespaces;
}

function accessPath(ns) {
  return `/api/v1/namespaces/${encodeURIComponent(ns)}/access`;
}

async function accessIn(ns) {
  if (!state.access.has(ns)) state.access.set(ns, await take(accessPath(ns)));
  return state.access.get(ns);
}

// ---------- sign in ----------

function signInPage(url) {
  header(null);
  document.title = "Sign in · Curio";
  const next = url.searchParams.get("next") || "/ui/";
  const reason = url.searchParams.get("reason");
  const message = el("p", { id: "signin-error", class: "error", role: "alert" });
  const input = el("textarea", { id: "token", name: "token", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-help" });
  const form = el("form", {
    class: "signin",
    onsubmit: async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        message.textContent = "Paste a token first.";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      state.namespaces = null;
      state.access.clear();
      try {
        await api("/api/v1/namespaces");
        go(next.startsWith("/ui/") ? next : "/ui/", { replace: true });
      } catch (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        message.textContent = error.status === 401 ? "That token was not accepted." : error.message;
      }
    },
  },
  el("label", { for: "token" }, "Bearer token"),
  input,
  el("p", { id: "token-help", class: "muted" },
    "A Kubernetes ServiceAccount token (kubectl create token …) or another token the API accepts. ",
    "It stays in this browser tab's session storage and is sent only as an Authorization header to this server."),
  el("button", { type: "submit", class: "primary" }, "Sign in"),
  message);
  render(
    el("h1", {}, "Sign in to Curio"),
    reason === "expired" ? el("p", { class: "notice" }, "Your session ended or your token was refused; sign in again.") : null,
    reason === "none" ? el("p", { class: "notice" }, "You are not signed in, or nothing in the catalog is readable without a token.") : null,
    form,
    el("p", { class: "muted" }, "Behind an authenticating proxy (oauth2-proxy or similar) you are signed in already: ", link("/ui/", "open the catalog"), "."),
  );
  input.focus();
}

// ---------- namespace picker ----------

async function pickerPage(mine) {
  const items = await namespaces();
  if (mine !== generation) return;
  if (items.length === 0) {
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      go(`/ui/signin${query({ reason: "none" })}`, { replace: true });
      return;
    }
    header(null);
    render(el("h1", {}, "No catalog to show"), el("p", {}, "There is no namespace in which you may read catalog entries."));
    return;
  }
  if (items.length === 1) {
    // A single readable namespace: straight to its catalog, no picker.
    go(`/ui/ns/${encodeURIComponent(items[0].name)}/catalog`, { replace: true });
    return;
  }
  header(null);
  document.title = "Namespaces · Curio";
  const rows = items.map((item) => el("tr", {},
    el("th", { scope: "row" }, link(`/ui/ns/${encodeURIComponent(item.name)}/catalog`, item.name)),
    KINDS.map((k) => el("td", {}, item.kinds.includes(k.kind) ? String(item.counts[k.kind] ?? 0) : "—")),
  ));
  render(
    el("h1", {}, "Choose a namespace"),
    el("table", { id: "namespaces" },
      el("caption", {}, "Namespaces in which you may read catalog entries, with entries per kind (— : not readable)"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Namespace"), KINDS.map((k) => el("th", { scope: "col" }, k.label)))),
      el("tbody", {}, rows)),
  );
}

// ---------- catalog ----------

const LIST_KEYS = ["kind", "q", "sort", "limit", "continue", "provider", "license", "tag", "stage", "approved", "source", "labelSelector"];
const PAGE_SIZES = ["10", "25", "50", "100"];

function catalogParams(url) {
  return Object.fromEntries(LIST_KEYS.map((k) => [k, url.searchParams.get(k) || ""]));
}

function catalogListPath(ns, params) {
  return `/api/v1/namespaces/${encodeURIComponent(ns)}/assets${query({ ...params, limit: params.limit || 50 })}`;
}

async function catalogPage(mine, ns, url) {
  const params = catalogParams(url);
  const [access, list] = await Promise.all([accessIn(ns), take(catalogListPath(ns, params))]);
  if (mine !== generation) return;
  performance.mark("curio:catalog-data");
  header(ns, "catalog", access);
  // The namespace list (counted over every namespace) only adds the "All namespaces" link:
  // fetched after the results, never in their way.
  if (!state.namespaces) {
    namespaces().then(() => { if (mine === generation) header(ns, "catalog", access); }).catch(() => {});
  }
  document.title = `Catalog · ${ns} · Curio`;
  const listable = KINDS.filter((k) => may(access, k.plural, "list"));
  const here = (changes) => {
    const next = { ...params, ...changes };
    if (!("continue" in changes)) next.continue = "";
    return `/ui/ns/${encodeURIComponent(ns)}/catalog${query(next)}`;
  };

  const tabs = el("ul", { class: "tabs", "aria-label": "Kinds" },
    [{ kind: "", label: "All" }, ...listable].map((k) =>
      el("li", {}, link(here({ kind: k.kind }), k.label, params.kind === k.kind ? { "aria-current": "page" } : {}))));

  const search = el("input", { type: "search", id: "q", name: "q", value: params.q, placeholder: "name, display name or description" });
  const sort = el("select", { id: "sort", name: "sort" },
    SORTS.map(([value, label]) => el("option", { value, selected: (params.sort || "namespace") === value }, label)));
  const sizes = PAGE_SIZES.includes(params.limit || "50") ? PAGE_SIZES : [...PAGE_SIZES, params.limit];
  const size = el("select", { id: "limit", name: "limit" },
    sizes.map((n) => el("option", { value: n, selected: (params.limit || "50") === n }, n)));
  const controls = el("form", {
    class: "controls",
    role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      go(here({
        q: search.value.trim(),
        sort: sort.value === "namespace" ? "" : sort.value,
        limit: size.value === "50" ? "" : size.value,
      }));
    },
  },
  el("div", {}, el("label", { for: "q" }, "Search"), search),
  el("div", {}, el("label", { for: "sort" }, "Sort"), sort),
  el("div", {}, el("label", { for: "limit" }, "Per page"), size),
  el("button", { type: "submit", class: "primary" }, "Apply"));
  sort.addEventListener("change", () => controls.requestSubmit());
  size.addEventListener("change", () => controls.requestSubmit());

  const facets = el("aside", { id: "facets", "aria-label": "Filters" }, el("p", { class: "muted" }, "Loading filters…"));
  const table = assetTable(ns, list.items, params.kind === "");
  const pager = el("div", { class: "pager" },
    params.continue ? link(here({}), "First page") : null,
    list.metadata && list.metadata.continue
      ? link(here({ continue: list.metadata.continue }), "Next page", { id: "next-page", rel: "next" })
      : el("span", { class: "muted" }, "End of list"));
  render(
    el("h1", {}, "Catalog"),
    tabs,
    controls,
    el("div", { class: "layout" }, facets, el("section", { "aria-label": "Results" }, table, pager)),
  );

  // What the first-paint benchmark measures: the page of results is in the document.
  performance.mark("curio:catalog-rendered");
  loadFacets(mine, ns, params, here, facets);
  live(ns, params.kind, list.metadata && list.metadata.resourceVersion, () => {
    announce("The catalog changed; the list was updated.");
    route();
  });
}

function assetTable(ns, items, showKind) {
  if (items.length === 0) return el("p", { id: "empty" }, "No entries match.");
  return el("div", { class: "scroll" }, el("table", { id: "assets" },
    el("caption", {}, `${items.length} entries on this page`),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Name"),
      showKind ? el("th", { scope: "col", class: "wide" }, "Kind") : null,
      el("th", { scope: "col" }, "Version"),
      el("th", { scope: "col", class: "wide" }, "Provider"),
      el("th", { scope: "col" }, "Stage"),
      el("th", { scope: "col" }, "Approved"),
      el("th", { scope: "col", class: "wide" }, "Source"),
      el("th", { scope: "col", class: "wide" }, "Updated"))),
    el("tbody", {}, items.map((a) => {
      const plural = KINDS.find((k) => k.kind === a.kind)?.plural ?? "models";
      const path = `/ui/ns/${encodeURIComponent(ns)}/assets/${plural}/${encodeURIComponent(a.name)}${query({ version: a.version, source: a.source })}`;
      return el("tr", {},
        el("td", { class: "name" }, link(path, a.displayName || a.name), a.displayName ? el("div", { class: "muted" }, a.name) : null),
        showKind ? el("td", { class: "wide" }, a.kind) : null,
        el("td", {}, a.version),
        el("td", { class: "wide" }, a.provider || ""),
        el("td", {}, a.stage || ""),
        el("td", {}, a.approved ? el("span", { class: "ok" }, "yes") : "no"),
        el("td", { class: "wide" }, a.source),
        el("td", { class: "wide" }, el("time", { datetime: a.updatedAt, title: when(a.updatedAt) }, ago(a.updatedAt))));
    }))));
}

async function loadFacets(mine, ns, params, here, target) {
  const filters = {};
  for (const key of ["kind", "q", "provider", "license", "tag", "stage", "approved", "source", "labelSelector"]) filters[key] = params[key];
  let answer;
  try {
    answer = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/assets/facets${query({ ...filters, top: 8 })}`);
  } catch (error) {
    if (mine === generation) {
      target.replaceChildren(el("p", { class: "error" }, `Filters unavailable: ${error.message}`));
      performance.mark("curio:facets-rendered");
    }
    return;
  }
  if (mine !== generation) return;
  const groups = [];
  for (const [field, label] of FACETS) {
    const facet = answer.facets.find((f) => f.field === field);
    if (!facet || facet.values.length === 0) continue;
    const current = field === "labelKey" ? labelKeys(params.labelSelector) : (params[field] || "").split(",").filter(Boolean);
    const boxes = facet.values.map((v, i) => {
      const id = `facet-${field}-${i}`;
      const checked = current.includes(v.value);
      const box = el("input", {
        type: "checkbox", id, checked,
        onchange: () => {
          const next = checked ? current.filter((c) => c !== v.value) : [...current, v.value];
          if (field === "labelKey") go(here({ labelSelector: next.join(",") }));
          else if (field === "approved") go(here({ approved: checked ? "" : v.value }));
          else go(here({ [field]: next.join(",") }));
        },
      });
      return el("label", { for: id }, box, v.value, el("span", { class: "count" }, `(${v.count})`));
    });
    groups.push(el("fieldset", { class: "facet", "data-field": field }, el("legend", {}, label), boxes,
      facet.truncated ? el("span", { class: "muted" }, "… more") : null));
  }
  target.replaceChildren(...(groups.length ? groups : [el("p", { class: "muted" }, "No filters for these entries.")]));
  performance.mark("curio:facets-rendered");
}

/** The keys of a selector made only of `key` (exists) requirements, as the label facet writes. */
function labelKeys(selector) {
  return (selector || "").split(",").map((s) => s.trim()).filter((s) => /^[A-Za-z0-9._\/-]+$/.test(s));
}

// ---------- live updates ----------

let liveController = null;

function stopLive() {
  if (liveController) liveController.abort();
  liveController = null;
}

/**
 * Follows the namespace's change feed (server-sent events over fetch, so the token goes in a
 * header, which EventSource cannot send) and calls `changed` once per burst of changes.
 */
function live(ns, kind, resourceVersion, changed) {
  if (!resourceVersion) return;
  stopLive();
  const controller = new AbortController();
  liveController = controller;
  const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/assets${query({ kind, watch: "true", resourceVersion, timeoutSeconds: 1800 })}`;
  (async () => {
    let timer = null;
    try {
      const response = await fetch(path, { headers: { Accept: "text/event-stream", ...authHeaders() }, signal: controller.signal });
      // 410: the feed was compacted past the list's revision; a fresh list starts again.
      if (response.status === 410) { changed(); return; }
      if (!response.ok || !response.body) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
          if (!data) continue;
          let event;
          try { event = JSON.parse(data); } catch { continue; }
          if (event.type === "BOOKMARK") continue;
          clearTimeout(timer);
          timer = setTimeout(() => { if (liveController === controller) changed(); }, 300);
        }
      }
    } catch {
      // Aborted (the page changed) or the stream broke; the page stays as it is.
      return;
    }
    // The stream ended (its timeout, a server restart): read the page again, which also
    // follows the feed again from the new list's resourceVersion.
    setTimeout(() => { if (liveController === controller) changed(); }, 5000);
  })();
}

/** Polls `path` with its ETag every `ms`, calling `changed` when the answer differs. */
function poll(path, ms, changed) {
  stopLive();
  const controller = new AbortController();
  liveController = controller;
  let etag = null;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(path, { headers: { ...authHeaders(), ...(etag ? { "If-None-Match": etag } : {}) }, signal: controller.signal });
        const tag = response.headers.get("ETag");
        if (response.status === 200 && etag && tag !== etag) {
          changed();
          return;
        }
        etag = tag || etag;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  })();
}

// ---------- asset ----------

async function assetPage(mine, ns, plural, name, url) {
  const kind = KINDS.find((k) => k.plural === plural);
  if (!kind) throw new ApiError(404, "no such kind");
  const version = url.searchParams.get("version") || "";
  const source = url.searchParams.get("source") || "";
  const access = await accessIn(ns);
  const asset = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/${plural}/${encodeURIComponent(name)}${query({ version, source })}`);
  if (mine !== generation) return;
  header(ns, "catalog", access);
  document.title = `${asset.displayName || asset.name} · ${ns} · Curio`;

  const fields = [
    ["Name", asset.name],
    ["Display name", asset.displayName],
    ["Kind", asset.kind],
    ["Version", asset.version],
    ["Description", asset.description],
    ["Provider", asset.provider],
    ["License", asset.license],
    ["Stage", asset.stage],
    ["Approved", asset.approved ? "yes" : "no"],
    ["Source", may(access, "catalogsources", "list") ? link(`/ui/ns/${encodeURIComponent(ns)}/sources#source-${asset.source}`, asset.source) : asset.source],
    ["Namespace", asset.namespace],
    ["Digest", el("code", {}, asset.digest)],
    ["Created", el("time", { datetime: asset.createdAt }, when(asset.createdAt))],
    ["Updated", el("time", { datetime: asset.updatedAt }, when(asset.updatedAt))],
  ];
  const chips = (values) => el("ul", { class: "chips" }, values.map((v) => el("li", { class: "chip" }, v)));
  const labels = Object.entries(asset.labels || {}).map(([k, v]) => `${k}=${v}`);
  const links = (asset.links || []).map((l) => el("li", {}, externalLink(l.uri, l.type ? `${l.type}: ${l.uri}` : l.uri)));

  const details = [];
  if (asset.mcp) details.push(el("h2", {}, "MCP server"), el("pre", { id: "mcp" }, JSON.stringify(asset.mcp, null, 2)));
  if (asset.agent) details.push(el("h2", {}, "Agent"), el("pre", { id: "agent" }, JSON.stringify(asset.agent, null, 2)));
  const metadata = asset.metadata && Object.keys(asset.metadata).length
    ? [el("h2", {}, "Metadata"), el("pre", { id: "metadata" }, JSON.stringify(asset.metadata, null, 2))]
    : [];

  const history = el("section", { id: "history", "aria-labelledby": "history-heading" },
    el("h2", { id: "history-heading" }, "History"));
  render(
    el("p", {}, link(`/ui/ns/${encodeURIComponent(ns)}/catalog${query({ kind: asset.kind })}`, "← Catalog")),
    el("h1", {}, asset.displayName || asset.name),
    el("dl", { class: "fields", id: "fields" }, fields.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("h2", {}, "Tags"), (asset.tags || []).length ? chips(asset.tags) : el("p", { class: "muted" }, "None"),
    el("h2", {}, "Labels"), labels.length ? chips(labels) : el("p", { class: "muted" }, "None"),
    el("h2", {}, "Links"), links.length ? el("ul", { id: "links" }, links) : el("p", { class: "muted" }, "None"),
    details,
    metadata,
    history,
  );

  if (!may(access, "auditevents", "list")) {
    append(history, [el("p", { class: "muted" }, `Hidden: your role may not list auditevents in ${ns}.`)]);
    return;
  }
  try {
    const trail = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/auditevents${query({ resource: plural, name: asset.name, limit: 100 })}`);
    if (mine !== generation) return;
    const events = trail.items.filter((e) => !e.details || !e.details.version || e.details.version === asset.version).reverse();
    append(history, [events.length === 0 ? el("p", { class: "muted" }, "No recorded changes.") : el("table", { id: "history-table" },
      el("caption", {}, "Changes to this entry, newest first"),
      el("thead", {}, el("tr", {}, ["When", "Who", "What", "Why"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, events.map((e) => el("tr", {},
        el("td", {}, el("time", { datetime: e.time }, when(e.time))),
        el("td", {}, e.actor),
        el("td", {}, e.verb),
        el("td", {}, e.reason || "")))))]);
  } catch (error) {
    append(history, [el("p", { class: "error" }, `History unavailable: ${error.message}`)]);
  }
}

// ---------- sources ----------

function condition(object, type) {
  return ((object.status && object.status.conditions) || []).find((c) => c.type === type);
}

async function sourcesPage(mine, ns) {
  const nsPath = `/api/v1/namespaces/${encodeURIComponent(ns)}`;
  const access = await accessIn(ns);
  const [sources, jobs] = await Promise.all([
    api(`${nsPath}/catalogsources?limit=500`),
    may(access, "refreshjobs", "list") ? api(`${nsPath}/refreshjobs?limit=500`) : Promise.resolve(null),
  ]);
  if (mine !== generation) return;
  header(ns, "sources", access);
  document.title = `Sources · ${ns} · Curio`;
  const cards = sources.items.map((s) => {
    const ready = condition(s, "Ready");
    const type = Object.keys((s.spec && s.spec.source) || {})[0] || "";
    const mine = (jobs ? jobs.items : []).filter((j) => j.spec && j.spec.sourceRef && j.spec.sourceRef.name === s.metadata.name);
    return el("article", { class: "card", id: `source-${s.metadata.name}` },
      el("h2", {}, s.metadata.name),
      el("dl", { class: "fields" },
        el("dt", {}, "Type"), el("dd", {}, type || "—"),
        el("dt", {}, "Ready"), el("dd", {}, ready
          ? [el("span", { class: ready.status === "True" ? "status-true" : "status-false" }, ready.status), " ", ready.reason || ""]
          : "Unknown"),
        el("dt", {}, "Assets"), el("dd", {}, String(s.status && s.status.assetCount != null ? s.status.assetCount : "—")),
        el("dt", {}, "Last refresh"), el("dd", {}, s.status && s.status.lastRefreshTime ? el("time", { datetime: s.status.lastRefreshTime }, when(s.status.lastRefreshTime)) : "never"),
        el("dt", {}, "Message"), el("dd", {}, (s.status && s.status.message) || (ready && ready.message) || "")),
      el("h3", {}, "Conditions"),
      el("table", {},
        el("thead", {}, el("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ((s.status && s.status.conditions) || []).map((c) => el("tr", {},
          el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason || ""), el("td", { class: "text" }, c.message || ""),
          el("td", {}, when(c.lastTransitionTime)))))),
      jobs ? [el("h3", {}, "Refresh jobs"), mine.length === 0 ? el("p", { class: "muted" }, "None") : el("table", {},
        el("thead", {}, el("tr", {}, ["Job", "Phase", "Attempts", "Reason", "Outcome", "Completed"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, mine.map((j) => {
          const st = j.status || {};
          const failed = (st.conditions || []).find((c) => c.reason);
          const outcome = st.added != null
            ? `added ${st.added}, updated ${st.updated ?? 0}, removed ${st.removed ?? 0}, unchanged ${st.unchanged ?? 0}`
            : (st.message || "");
          return el("tr", {},
            el("td", {}, j.metadata.name), el("td", {}, st.phase || "Pending"), el("td", {}, String(st.attempts ?? 0)),
            el("td", {}, (j.spec && j.spec.reason) || (failed && failed.reason) || ""), el("td", {}, outcome),
            el("td", {}, when(st.completionTime)));
        })))] : null);
  });
  render(
    el("h1", {}, "Sources"),
    cards.length ? cards : el("p", {}, "No CatalogSources in this namespace."),
  );
  if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  // Source status changes with every refresh: poll with the ETag (sources are not on the
  // asset change feed).
  poll(`${nsPath}/catalogsources?limit=500`, 5000, () => {
    announce("A source changed; the page was updated.");
    route();
  });
}

// ---------- audit ----------

const AUDIT_KEYS = ["since", "until", "actor", "verb", "resource", "continue"];

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function auditPage(mine, ns, url) {
  const params = Object.fromEntries(AUDIT_KEYS.map((k) => [k, url.searchParams.get(k) || ""]));
  const access = await accessIn(ns);
  const trail = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/auditevents${query({ ...params, limit: 50 })}`);
  if (mine !== generation) return;
  header(ns, "audit", access);
  document.title = `Audit trail · ${ns} · Curio`;
  const here = (changes) => `/ui/ns/${encodeURIComponent(ns)}/audit${query({ ...params, continue: "", ...changes })}`;
  const input = (id, label, type, value) => el("div", {}, el("label", { for: id }, label), el("input", { id, name: id, type, value }));
  const form = el("form", {
    class: "controls",
    onsubmit: (event) => {
      event.preventDefault();
      const value = (id) => form.querySelector(`#${id}`).value.trim();
      const time = (id) => (value(id) ? new Date(value(id)).toISOString() : "");
      go(here({ since: time("since"), until: time("until"), actor: value("actor"), verb: value("verb"), resource: value("resource") }));
    },
  },
  input("since", "From", "datetime-local", toLocalInput(params.since)),
  input("until", "To", "datetime-local", toLocalInput(params.until)),
  input("actor", "Actor", "text", params.actor),
  input("verb", "Verb", "text", params.verb),
  input("resource", "Resource", "text", params.resource),
  el("button", { type: "submit", class: "primary" }, "Filter"));
  render(
    el("h1", {}, "Audit trail"),
    form,
    trail.items.length === 0 ? el("p", {}, "No events match.") : el("table", { id: "audit" },
      el("caption", {}, "Oldest first"),
      el("thead", {}, el("tr", {}, ["When", "Actor", "Verb", "Resource", "Name", "Reason"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, trail.items.map((e) => el("tr", {},
        el("td", {}, el("time", { datetime: e.time }, when(e.time))),
        el("td", {}, e.actor), el("td", {}, e.verb), el("td", {}, e.resource), el("td", {}, e.name),
        el("td", {}, e.reason || ""))))),
    el("div", { class: "pager" },
      params.continue ? link(here({}), "First page") : null,
      trail.metadata && trail.metadata.continue ? link(here({ continue: trail.metadata.continue }), "Next page", { rel: "next" }) : el("span", { class: "muted" }, "End of trail")),
  );
}

/** For a catalog page, its two requests, started while the document is still being parsed. */
function prefetchPage() {
  const match = location.pathname.match(/^\/ui\/ns\/([^/]+)\/catalog\/?$/);
  if (!match) return;
  const ns = decodeURIComponent(match[1]);
  prefetch(accessPath(ns));
  prefetch(catalogListPath(ns, catalogParams(new URL(location.href))));
}

prefetchPage();
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => route(), { once: true });
} else {
  route();
}
