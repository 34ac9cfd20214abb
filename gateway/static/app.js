// The faas dashboard: polls the gateway's /ui/api, draws with plain DOM and uPlot.
// No build step, no framework: every value from the server goes in through textContent.
"use strict";

const POLL_OVERVIEW_MS = 1000;
const POLL_CALLS_MS = 700;
const POLL_SERIES_MS = 2000;
const HIDDEN_FACTOR = 5; // a tab in the background polls five times less often
const MAX_ROWS = 100; // rows kept in the recent invocations table
const BATCH = 50; // at most this many new calls drawn per poll (under load: the newest)
const HIGHLIGHT_BELOW = 10; // new rows flash only when few arrive at once

const state = {
  selected: null, // the function the chart and the invoke form are about
  cursor: 0, // the newest invocation seen (/ui/api/invocations?since=)
  chart: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) + " ms" : v < 1000 ? v.toFixed(1) + " ms" : (v / 1000).toFixed(2) + " s");
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }) + "." + String(Math.floor((t % 1) * 1000)).padStart(3, "0");

// With FAAS_API_TOKEN set, /ui/api wants it: asked once, kept for this tab only.
const TOKEN_KEY = "faas.apiToken";
let tokenRefused = false;

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function getJSON(path) {
  let response = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (response.status === 401 && !tokenRefused) {
    const token = window.prompt("This faas gateway has an API token (FAAS_API_TOKEN). Token:");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      response = await fetch(path, { cache: "no-store", headers: authHeaders() });
    }
    if (response.status === 401) tokenRefused = true; // no prompt loop: reload the page to try again
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setLive(ok) {
  const live = $("live");
  live.className = "live " + (ok ? "on" : "off");
  live.title = ok ? "live: polling the gateway" : "the gateway does not answer";
}

// Runs fn every `period` ms, never two at once, slower while the tab is hidden.
function every(period, fn) {
  const tick = async () => {
    try { await fn(); } catch (e) { setLive(false); console.warn(e); }
    setTimeout(tick, document.hidden ? period * HIDDEN_FACTOR : period);
  };
  tick();
}

// ---------------------------------------------------------------- functions and environments

function envSummary(envs) {
  const parts = Object.entries(envs || {}).sort().map(([state, n]) => `${n} ${state}`);
  return parts.length ? parts.join(", ") : "none";
}

function renderFunctions(functions) {
  const body = $("functions").tBodies[0];
  body.replaceChildren(...functions.map((f) => {
    const s = f.stats || {};
    const row = el("tr", { "data-function": f.name, class: f.name === state.selected ? "selected" : "" },
      el("td", {}, el("strong", {}, f.name)),
      el("td", {}, f.version),
      el("td", {}, f.runtime),
      el("td", { class: "num" }, `${f.memory} MB`),
      el("td", { class: "num" }, `${f.timeout} s`),
      el("td", { class: "num" }, f.concurrency ?? "–"),
      el("td", { class: "envs" }, envSummary(f.environments)),
      el("td", { class: "num" }, s.calls_per_s !== undefined ? s.calls_per_s.toFixed(1) : "0.0"),
      el("td", { class: "num" }, ms(s.p50_ms)),
      el("td", { class: "num" }, ms(s.p99_ms)),
      el("td", { class: "num" + (s.errors ? " status-error" : "") }, s.errors ?? 0),
      el("td", { class: "num" + (s.throttled ? " status-throttled" : "") }, s.throttled ?? 0));
    row.addEventListener("click", () => select(f.name));
    return row;
  }));
  $("no-functions").hidden = functions.length > 0;
}

function renderInvokeOptions(functions) {
  const select = $("invoke-function");
  const names = functions.map((f) => f.name);
  const current = Array.from(select.options).map((o) => o.value);
  if (names.join("\n") !== current.join("\n")) {
    const keep = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(keep)) select.value = keep;
  }
  if (state.selected && names.includes(state.selected) && document.activeElement !== select) select.value = state.selected;
}

function renderEnvironments(environments) {
  const body = $("environments").tBodies[0];
  const order = { busy: 0, ready: 1, starting: 2, dead: 3 };
  const sorted = [...environments].sort((a, b) =>
    String(a.function).localeCompare(String(b.function)) || (order[a.state] ?? 9) - (order[b.state] ?? 9));
  body.replaceChildren(...sorted.map((e) => el("tr", { "data-env": e.id },
    el("td", {}, el("code", {}, e.id)),
    el("td", {}, e.function ?? "–"),
    el("td", {}, e.version ?? "–"),
    el("td", { class: "state-" + e.state }, e.state),
    el("td", {}, el("code", {}, e.container || "–")),
    el("td", { class: "num" }, e.calls ?? 0),
    el("td", { class: "num" }, e.state === "ready" ? `${e.idle_s} s` : "–"))));
  $("no-environments").hidden = environments.length > 0;
}

// Redraws a part only when what it shows changed: an idle dashboard touches no DOM.
const drawn = {};
function changed(part, value) {
  const key = JSON.stringify(value);
  if (drawn[part] === key) return false;
  drawn[part] = key;
  return true;
}

// A template's routes, served at the gateway's root (and on --api-port's listener).
function renderRoutes(routes, apiPort) {
  const body = $("routes").tBodies[0];
  body.replaceChildren(...routes.map((r) => {
    const link = r.path.includes("{") || r.path === "$default" ? r.path : el("a", { href: r.path, target: "_blank", rel: "noopener" }, r.path);
    return el("tr", {},
      el("td", {}, r.method),
      el("td", {}, el("code", {}, link)),
      el("td", {}, r.function),
      el("td", {}, r.kind),
      el("td", {}, r.api_id),
      el("td", {}, r.stage),
      el("td", { class: "muted" }, r.stack));
  }));
  $("no-routes").hidden = routes.length > 0;
  $("routes-where").textContent = apiPort ? `at this address and on port ${apiPort}` : "at this address";
}

async function pollOverview() {
  const data = await getJSON("/ui/api/overview?window=10");
  setLive(true);
  const names = data.functions.map((f) => f.name);
  if (!state.selected || !names.includes(state.selected)) {
    // Start with the busiest function: the one whose chart has something to show.
    const rank = (f) => [(f.stats && f.stats.calls_per_s) || 0, (f.stats && f.stats.last_call) || 0];
    const busiest = [...data.functions].sort((a, b) => rank(b)[0] - rank(a)[0] || rank(b)[1] - rank(a)[1])[0];
    state.selected = busiest ? busiest.name : null;
  }
  const shown = data.functions.map((f) => ({ ...f, stats: f.stats && { ...f.stats, last_call: 0 } }));
  if (changed("functions", [shown, state.selected])) renderFunctions(data.functions);
  renderInvokeOptions(data.functions);
  const routes = data.routes || [];
  if (changed("routes", [routes, data.api_port])) renderRoutes(routes, data.api_port);
  const envRows = data.environments.map((e) => ({ ...e, idle_s: e.state === "ready" ? Math.round(e.idle_s) : 0 }));
  if (changed("environments", envRows)) renderEnvironments(envRows);
  const rate = data.functions.reduce((sum, f) => sum + ((f.stats && f.stats.calls_per_s) || 0), 0);
  const queue = data.async_queue_depth === null || data.async_queue_depth === undefined ? "" : ` · async queue ${data.async_queue_depth}`;
  const spare = data.environments.filter((e) => !e.function).length;
  const envs = `${data.environments.length} environment(s)` + (spare ? ` (${spare} pre-started)` : "");
  $("totals").textContent = `${names.length} function(s) · ${envs} · ${rate.toFixed(1)} calls/s${queue}`;
}

function select(name) {
  state.selected = name;
  $("invoke-function").value = name;
  for (const row of $("functions").tBodies[0].rows) row.classList.toggle("selected", row.dataset.function === name);
  pollSeries();
}

// ---------------------------------------------------------------- recent invocations

function callRow(c, fresh) {
  const status = el("td", { class: "status-" + c.status }, c.status + (c.error_type && c.status !== "throttled" ? ` (${c.error_type})` : ""));
  const row = el("tr", { class: "call" + (fresh ? " fresh" : ""), "data-request-id": c.request_id || "", "data-seq": c.seq },
    el("td", {}, clock(c.time)),
    el("td", {}, c.function),
    el("td", {}, el("code", {}, c.request_id || "–")),
    status,
    el("td", {}, c.start || "–"),
    el("td", { class: "num" }, ms(c.duration_ms)),
    el("td", { class: "num" }, c.init_duration_ms === null ? "" : ms(c.init_duration_ms)),
    el("td", { class: "num" }, c.max_memory_mb === null ? "" : `${c.max_memory_mb}/${c.memory_mb} MB`));
  row.addEventListener("click", () => {
    const next = row.nextElementSibling;
    if (next && next.classList.contains("logs")) { next.remove(); return; }
    row.after(el("tr", { class: "logs" }, el("td", { colSpan: 8 }, el("pre", {}, c.logs || "(no log)"))));
  });
  return row;
}

async function pollInvocations() {
  const first = state.cursor === 0;
  const data = await getJSON(`/ui/api/invocations?since=${state.cursor}&limit=${BATCH}`);
  state.cursor = data.cursor;
  if (!data.invocations.length) return;
  const body = $("invocations").tBodies[0];
  const flash = !first && data.invocations.length < HIGHLIGHT_BELOW;
  const rows = document.createDocumentFragment();
  for (const c of data.invocations) rows.prepend(callRow(c, flash)); // newest on top
  body.prepend(rows);
  const calls = body.querySelectorAll("tr.call");
  for (let i = MAX_ROWS; i < calls.length; i++) {
    const next = calls[i].nextElementSibling;
    if (next && next.classList.contains("logs")) next.remove();
    calls[i].remove();
  }
  $("no-invocations").hidden = true;
}

// ---------------------------------------------------------------- latency chart

const hhmmss = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

function chartWidth() { return Math.max(300, $("chart").clientWidth || 500); }

function makeChart() {
  const opts = {
    width: chartWidth(),
    height: 240,
    scales: { x: { time: true }, y: { distr: 3 } }, // log scale: a cold start and a warm call fit on one chart
    axes: [{ space: 70, values: (u, ticks) => ticks.map(hhmmss) }, { label: "ms", size: 60 }],
    series: [
      {},
      { label: "p50", stroke: "#2f5bd3", width: 2, spanGaps: false, value: (u, v) => (v === null ? "–" : v.toFixed(2) + " ms") },
      { label: "p99", stroke: "#c62828", width: 1.5, spanGaps: false, value: (u, v) => (v === null ? "–" : v.toFixed(2) + " ms") },
    ],
  };
  return new uPlot(opts, [[], [], []], $("chart"));
}

async function pollSeries() {
  const name = state.selected;
  if (!name || typeof uPlot === "undefined") return;
  const data = await getJSON(`/ui/api/series?function=${encodeURIComponent(name)}&seconds=300`);
  if (name !== state.selected) return;
  if (!state.chart) state.chart = makeChart();
  $("chart-title").textContent = name;
  if (changed("series", [name, data.t[data.t.length - 1], data.p50, data.p99])) state.chart.setData([data.t, data.p50, data.p99]);
}

window.addEventListener("resize", () => { if (state.chart) state.chart.setSize({ width: chartWidth(), height: 240 }); });

// ---------------------------------------------------------------- invoke form

function decodeLog(b64) {
  if (!b64) return "";
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

async function invoke(event) {
  event.preventDefault();
  const name = $("invoke-function").value;
  const payload = $("invoke-payload").value.trim() || "{}";
  const status = $("invoke-status");
  try { JSON.parse(payload); } catch (e) { status.textContent = `payload is not JSON: ${e.message}`; return; }
  $("invoke-button").disabled = true;
  status.textContent = `invoking ${name}…`;
  const started = performance.now();
  try {
    const response = await fetch(`/2015-03-31/functions/${encodeURIComponent(name)}/invocations`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Amz-Log-Type": "Tail" },
      body: payload,
    });
    const text = await response.text();
    const log = decodeLog(response.headers.get("X-Amz-Log-Result"));
    const functionError = response.headers.get("X-Amz-Function-Error");
    const outcome = $("invoke-outcome");
    if (!response.ok) {
      outcome.textContent = `${response.status} ${response.headers.get("x-amzn-ErrorType") || ""}`;
    } else {
      outcome.textContent = functionError ? `${response.status} · ${functionError}` : `${response.status} · ok`;
    }
    outcome.className = "badge" + (!response.ok || functionError ? " failed" : "");
    $("invoke-request-id").textContent = response.headers.get("x-amzn-RequestId") || "";
    $("invoke-payload-out").textContent = pretty(text);
    $("invoke-report").textContent = log.split("\n").filter((l) => l.startsWith("REPORT ")).join("\n");
    $("invoke-log").textContent = log;
    $("invoke-result").hidden = false;
    status.textContent = `${Math.round(performance.now() - started)} ms round trip`;
  } catch (e) {
    status.textContent = `the gateway did not answer: ${e.message}`;
  } finally {
    $("invoke-button").disabled = false;
  }
}

// The sample picker: Lambda's sample events (faas/events/samples.py, as `faas events` prints them).
async function loadSamples() {
  try {
    const data = await getJSON("/ui/api/samples");
    const select = $("invoke-sample");
    for (const s of data.samples) {
      const option = document.createElement("option");
      option.value = `${s.service}/${s.kind}`;
      option.textContent = `${s.service} ${s.kind}: ${s.help}`;
      select.appendChild(option);
    }
  } catch (e) { /* the picker stays empty; the form still works */ }
}

async function pickSample(event) {
  const value = event.target.value;
  if (!value) return;
  const [service, kind] = value.split("/");
  try {
    const sample = await getJSON(`/ui/api/samples?service=${encodeURIComponent(service)}&kind=${encodeURIComponent(kind)}`);
    $("invoke-payload").value = JSON.stringify(sample, null, 2);
  } catch (e) {
    $("invoke-status").textContent = `no sample: ${e.message}`;
  }
}

$("invoke-sample").addEventListener("change", pickSample);
loadSamples();
$("invoke-form").addEventListener("submit", invoke);
$("invoke-function").addEventListener("change", (e) => select(e.target.value));

every(POLL_OVERVIEW_MS, pollOverview);
every(POLL_CALLS_MS, pollInvocations);
every(POLL_SERIES_MS, pollSeries);
