// Flotilla's dashboard. One page, no build step, no dependencies: it reads the node's /v1 API
// (the same routes as the CLI) with the token a person gives it (kept in sessionStorage, so
// for this tab only), follows the audit log's event stream and re-reads what an event changes.
// Everything shown is built with DOM calls (textContent), never from HTML strings.
"use strict";

/** How often the page re-reads what changes without an event (replicas starting, nodes
 * answering), in milliseconds. */
const REFRESH_EVERY_MS = 2000;
/** How often /metrics is sampled for the traffic charts, in milliseconds. */
const SAMPLE_EVERY_MS = 3000;
/** How much traffic history the charts keep, in milliseconds. */
const TRAFFIC_WINDOW_MS = 5 * 60 * 1000;
/** Wait after an event before re-reading, so a burst of events costs one read. */
const EVENT_SETTLE_MS = 150;
/** First and longest wait before the event stream is opened again after it broke (the wait
 * doubles in between). */
const RECONNECT_FIRST_MS = 250;
const RECONNECT_MAX_MS = 5000;
/** Events the timeline starts with (the newest ones), and the most a tab keeps in memory
 * however long it stays open (the oldest go first). */
const TIMELINE_START = 1000;
const TIMELINE_KEEP = 5000;
/** Most log lines the app page shows. */
const LOG_LINES = 200;
const TOKEN_KEY = "flotilla-token";
/** Colours for apps in bars, in order of first appearance. */
const PALETTE = ["#1d5fa8", "#2f9e6a", "#c26a00", "#8e44ad", "#c0392b", "#16808c", "#7a6b00", "#b0417a"];

// ---------------------------------------------------------------------------------------
// Small helpers

/** Builds an element: h("td", {class: "num"}, "12", child...). Strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c);
  return el;
}

function replace(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** Draws a region again only when what it shows changed: a periodic refresh must not take
 * away the button under a person's pointer or their keyboard focus, nor move the page. */
function redraw(region, data, draw) {
  const key = JSON.stringify([data, session.holder]);
  if (region.drawnFrom === key) return;
  region.drawnFrom = key;
  draw();
}

function time(ms) {
  if (!ms) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

function shortHash(hash) {
  return hash ? hash.slice(0, 12) : "";
}

function badge(text, cls) {
  return h("span", { class: `badge ${cls || text}` }, text);
}

function labelsText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

function chips(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "no labels");
  return entries.map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`));
}

const appColours = new Map();
function colourOf(app) {
  if (!appColours.has(app)) appColours.set(app, PALETTE[appColours.size % PALETTE.length]);
  return appColours.get(app);
}

// ---------------------------------------------------------------------------------------
// The API

/** The node could not be reached at all (refused, reset, or the page went offline). */
class Unreachable extends Error {}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || [];
  }
}

const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(t) { t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY); },
  /** What the token may do (GET /v1/token): {name, scope, apps}. */
  holder: null,

  /** Why the token may not change `app` (null: it may). */
  cannotChange(app) {
    const h = this.holder;
    if (!h) return "log in with an API token";
    if (h.scope === "read") return `token ${h.name} only reads`;
    if (h.scope === "deploy" && h.apps && h.apps.length && !h.apps.includes(app)) return `token ${h.name} may change only ${h.apps.join(", ")}`;
    return null;
  },
};

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  if (session.token) headers["Authorization"] = `Bearer ${session.token}`;
  return headers;
}

/** Calls the API; answers the parsed JSON (or text), throws ApiError with the API's message. */
async function api(path, options) {
  const opts = options || {};
  let response;
  try {
    response = await fetch(path, {
      method: opts.method || "GET",
      headers: authHeaders(opts.headers),
      body: opts.body,
      cache: "no-store",
    });
  } catch (e) {
    throw new Unreachable(String(e));
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && session.token) ui.tokenRefused();
    throw new ApiError(response.status, typeof body === "object" ? body : { message: body });
  }
  return body;
}

/** Reads a server-sent event stream from `path` (through fetch, so that the token travels as
 * a header, which EventSource cannot send) and calls `onData` with each event's parsed JSON
 * data; `onOpen` once the stream is accepted. Answers when the stream ends; throws when it
 * breaks or is refused. */
async function readEvents(path, onData, options) {
  const opts = options || {};
  const response = await fetch(path, {
    headers: authHeaders({ Accept: "text/event-stream" }),
    cache: "no-store",
    signal: opts.signal,
  });
  if (!response.ok || !response.body) throw new Error(`${path}: HTTP ${response.status}`);
  if (opts.onOpen) opts.onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onData(JSON.parse(data)); // frames without data are keep-alive comments
    }
  }
}

// ---------------------------------------------------------------------------------------
// The event feed: the audit log's event stream, opened again from the next index after any
// break.

const feed = {
  next: 1,
  events: [],
  listeners: new Set(),
  connected: false,
  started: false,

  async start(from) {
    if (this.started) return;
    this.started = true;
    this.next = Math.max(1, from);
    let wait = RECONNECT_FIRST_MS;
    for (;;) {
      try {
        await this.follow();
        wait = RECONNECT_FIRST_MS;
      } catch (e) {
        // Broken: show it, then open the stream again from the next index.
      }
      this.setConnected(false);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, RECONNECT_MAX_MS);
    }
  },

  follow() {
    return readEvents(`/v1/events/stream?from=${this.next}`, (record) => this.add(record), {
      onOpen: () => this.setConnected(true),
    });
  },

  add(record) {
    if (record.index < this.next) return;
    this.next = record.index + 1;
    this.events.push(record);
    if (this.events.length > TIMELINE_KEEP) this.events.splice(0, this.events.length - TIMELINE_KEEP);
    for (const listener of this.listeners) listener(record);
  },

  setConnected(on) {
    this.connected = on;
    ui.showLive();
  },
};

// ---------------------------------------------------------------------------------------
// Traffic: /metrics sampled in the background; rates per app from consecutive samples.

const traffic = {
  samples: [], // {at, requests: Map(app → count), errors: Map(app → count)}

  async sample() {
    try {
      const text = await api("/metrics");
      const requests = new Map();
      const errors = new Map();
      for (const line of text.split("\n")) {
        const m = /^flotilla_app_(requests|errors)_total\{app="((?:[^"\\]|\\.)*)"\} ([0-9.e+]+)$/.exec(line);
        if (!m) continue;
        const app = m[2].replace(/\\(.)/g, "$1");
        (m[1] === "requests" ? requests : errors).set(app, Number(m[3]));
      }
      const now = Date.now();
      this.samples.push({ at: now, requests, errors });
      while (this.samples.length && this.samples[0].at < now - TRAFFIC_WINDOW_MS) this.samples.shift();
    } catch (e) {
      // The node is not answering: the banner says so; the chart keeps its history.
    }
  },

  /** When the newest sample was taken (0: none yet). */
  newest() {
    return this.samples.length ? this.samples[this.samples.length - 1].at : 0;
  },

  /** [{at, rps, eps}] for one app over the window. */
  rates(app) {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const seconds = (b.at - a.at) / 1000;
      const delta = (m) => Math.max(0, (b[m].get(app) || 0) - (a[m].get(app) || 0)) / seconds;
      out.push({ at: b.at, rps: delta("requests"), eps: delta("errors") });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------
// Views. Each has render(main, params) once when shown, and refresh() to re-read its data; a
// refresh replaces only the data regions, never a form a person is typing in.

const overview = {
  groupBy: "zone",

  render(main) {
    this.regions = {
      raft: h("section", { class: "panel", "aria-labelledby": "raft-h" }),
      summary: h("div", { id: "hosts-summary" }),
      pager: h("div", { id: "hosts-pager", class: "row" }),
      hosts: h("div", { id: "hosts" }),
      apps: h("section", { class: "panel", "aria-labelledby": "apps-h" }),
    };
    const select = h("select", { id: "group-by", onchange: (e) => { this.groupBy = e.target.value; this.draw(); } });
    this.select = select;
    replace(main,
      h("h1", {}, "Cluster"),
      this.regions.raft,
      h("section", { class: "panel", "aria-labelledby": "hosts-h" },
        h("div", { class: "row" },
          h("h2", { id: "hosts-h", style: "margin:0" }, "Hosts"),
          h("label", { for: "group-by" }, "Group by"), select),
        this.regions.summary,
        this.regions.pager,
        this.regions.hosts),
      this.regions.apps);
  },

  async refresh() {
    // One page of hosts (only they are asked for their replicas), with the counts of all.
    const after = this.pageAfter ? `&after=${encodeURIComponent(this.pageAfter)}` : "";
    const [inventory, apps, nodes] = await Promise.all([
      api(`/v1/inventory?stale=true&limit=${HOSTS_PAGE}${after}`), api("/v1/apps?stale=true"), api("/v1/cluster/nodes"),
    ]);
    this.data = { inventory, apps, nodes };
    this.draw();
  },

  draw() {
    if (!this.data) return;
    const { inventory, apps, nodes } = this.data;
    const names = hostsByAddr(inventory);
    redraw(this.regions.raft, [nodes, [...names]], () => drawRaft(this.regions.raft, nodes, names));
    // Group-by choices: every label key any host has.
    const keys = [...new Set(inventory.hosts.flatMap((h) => Object.keys(h.labels)))].sort();
    if (!keys.includes(this.groupBy) && this.groupBy !== "") keys.unshift(this.groupBy);
    const options = [h("option", { value: "" }, "(none)"), ...keys.map((k) => h("option", { value: k }, k))];
    if (this.select.options.length !== options.length || [...this.select.options].some((o, i) => o.value !== options[i].value)) {
      replace(this.select, options);
    }
    this.select.value = this.groupBy;
    const roles = rolesByHost(nodes, names);
    redraw(this.regions.summary, [inventory.summary], () => drawSummary(this.regions.summary, inventory.summary));
    redraw(this.regions.pager, [inventory.hosts.length, inventory.next, this.pageAfter || null, inventory.summary.hosts],
      () => drawPager(this.regions.pager, inventory, this.pageAfter, (after) => { this.pageAfter = after; this.refresh(); }));
    redraw(this.regions.hosts, [inventory.hosts, [...roles], this.groupBy], () => drawHosts(this.regions.hosts, inventory, roles, this.groupBy));
    const everyHost = !inventory.next && !this.pageAfter;
    redraw(this.regions.apps, [apps.apps, inventory.hosts, everyHost], () => drawApps(this.regions.apps, apps, inventory, everyHost));
  },
};

/** Hosts shown per page: only they are asked what they run. */
const HOSTS_PAGE = 100;

/** Every host counted by zone and state: what a fleet of thousands shows first. */
function drawSummary(region, summary) {
  if (!summary || summary.hosts <= HOSTS_PAGE) {
    replace(region);
    return;
  }
  const states = [...new Set(Object.values(summary.by_zone).flatMap((s) => Object.keys(s)))].sort();
  replace(region,
    h("div", { class: "table-wrap" },
      h("table", { id: "hosts-by-zone" },
        h("thead", {}, h("tr", {}, [summary.zone_label || "zone", ...states, "hosts"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, Object.entries(summary.by_zone).map(([zone, counts]) => h("tr", { "data-zone": zone },
          h("td", {}, zone || "–"),
          ...states.map((state) => h("td", { class: "num" }, counts[state] || 0)),
          h("td", { class: "num" }, Object.values(counts).reduce((a, b) => a + b, 0))))))));
}

/** Which page of hosts is shown, and the way to the next. */
function drawPager(region, inventory, after, go) {
  if (!inventory.next && !after) {
    replace(region);
    return;
  }
  replace(region,
    h("span", { class: "muted" }, `${inventory.hosts.length} of ${inventory.summary.hosts} hosts` + (after ? ` after ${after}` : "")),
    after ? h("button", { type: "button", onclick: () => go(null) }, "First page") : null,
    inventory.next ? h("button", { type: "button", id: "hosts-next", onclick: () => go(inventory.next) }, "Next page") : null);
}

/** Host names by API address (a node that does not answer is named by its host record). */
function hostsByAddr(inventory) {
  return new Map(inventory.hosts.filter((h) => h.api).map((h) => [h.api, h.host]));
}

/** The host a member of the Raft cluster runs as. Node ids are never shown: they are random
 * 64-bit numbers, which JavaScript cannot hold exactly. */
function nodeName(n, names) {
  return n.view ? n.view.host : names.get(n.addr) || n.addr;
}

/** Role of each host by name, from every node's own answer: Leader, Follower, Learner, … */
function rolesByHost(nodes, names) {
  const roles = new Map();
  for (const n of nodes.nodes) {
    roles.set(nodeName(n, names), { role: n.view ? n.view.state : "unreachable", voter: n.voter });
  }
  return roles;
}

function drawRaft(region, nodes, names) {
  const views = nodes.nodes.filter((n) => n.view);
  const leader = views.find((n) => n.view.state === "Leader");
  // Hash agreement: nodes at the same applied index must have the same state hash.
  const byIndex = new Map();
  for (const n of views) {
    const set = byIndex.get(n.view.applied_index) || new Set();
    set.add(n.view.state_hash);
    byIndex.set(n.view.applied_index, set);
  }
  const split = [...byIndex.values()].some((s) => s.size > 1);
  const top = Math.max(0, ...views.map((n) => n.view.applied_index));
  const atTop = views.filter((n) => n.view.applied_index === top);
  const agreement = split
    ? h("span", { class: "error", id: "hash-agreement" }, "state hashes DIFFER at the same index")
    : h("span", { class: "ok", id: "hash-agreement" },
      `state hash equal on ${atTop.length} of ${nodes.nodes.length} nodes at index ${top}` +
      (atTop.length < nodes.nodes.length ? " (others catching up or not answering)" : ""));
  replace(region,
    h("h2", { id: "raft-h", style: "margin-top:0" }, "Raft"),
    h("p", { class: "row" },
      h("span", {}, "Leader: ", h("strong", {}, leader ? leader.view.host : "none known")),
      h("span", {}, "Term: ", h("strong", { class: "num" }, leader ? leader.view.term : "–")),
      h("span", {}, "Applied: ", h("strong", { class: "num" }, top)),
      agreement),
    h("div", { class: "table-wrap" },
      h("table", { id: "raft-nodes" },
        h("thead", {}, h("tr", {}, ["Host", "Role", "Vote", "Term", "Applied", "State hash", "Certificate expires", "Address"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, [...nodes.nodes].sort((a, b) => nodeName(a, names).localeCompare(nodeName(b, names))).map((n) => h("tr", {},
          h("td", {}, nodeName(n, names)),
          h("td", {}, n.view ? badge(n.view.state) : badge("unreachable")),
          h("td", {}, n.voter ? "voter" : "standby"),
          h("td", { class: "num" }, n.view ? n.view.term : ""),
          h("td", { class: "num" }, n.view ? n.view.applied_index : ""),
          h("td", { class: "mono" }, n.view ? shortHash(n.view.state_hash) : (n.error || "")),
          h("td", { class: "num", "data-cert-expires": "" }, n.view && n.view.certificate ? time(n.view.certificate.expires_at) : ""),
          h("td", { class: "mono" }, n.addr)))))));
}

function drawHosts(region, inventory, roles, groupBy) {
  const groups = new Map();
  for (const host of inventory.hosts) {
    const key = groupBy ? (host.labels[groupBy] !== undefined ? `${groupBy}=${host.labels[groupBy]}` : `no ${groupBy}`) : "all hosts";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(host);
  }
  const most = Math.max(1, ...inventory.hosts.map((h) => h.components.reduce((n, c) => n + c.replicas, 0)));
  const sections = [...groups.keys()].sort().map((key) => {
    const hosts = groups.get(key);
    return h("div", { class: "group", "data-group": key },
      h("h3", {}, `${key} (${hosts.length} host${hosts.length === 1 ? "" : "s"})`),
      h("div", { class: "grid" }, hosts.map((host) => hostCard(host, roles.get(host.host), most))));
  });
  replace(region, sections.length ? sections : h("p", { class: "muted" }, "No hosts yet."));
}

function hostCard(host, role, most) {
  const total = host.components.reduce((n, c) => n + c.replicas, 0);
  const answering = role && role.role !== "unreachable";
  const roleText = !role ? "plain host" : !answering ? "not answering" : role.role === "Leader" ? "leader" : role.voter ? "voter" : "standby";
  return h("article", { class: "host", "data-state": host.state, "data-host": host.host, "data-replicas": total, "aria-label": `host ${host.host}` },
    h("header", {},
      h("span", { class: "name" }, host.host),
      badge(host.state),
      h("span", { class: `badge ${answering ? role.role : "unreachable"}`, "data-role": roleText }, roleText)),
    h("div", {}, chips(host.labels)),
    h("div", { class: "muted mono" }, host.api || ""),
    h("div", { class: "bar", role: "img", "aria-label": `${total} replicas` },
      host.components.map((c) => h("span", {
        style: `width:${(100 * c.replicas) / most}%;background:${colourOf(c.app)}`,
        title: `${c.app}/${c.component}: ${c.replicas}`,
      }))),
    h("div", { class: "legend" }, total === 0 ? h("span", { class: "muted" }, "no replicas") :
      host.components.map((c) => h("div", { "data-app": c.app, "data-component": c.component, "data-count": c.replicas },
        h("span", { class: "swatch", style: `background:${colourOf(c.app)}` }),
        h("a", { href: `#/apps/${encodeURIComponent(c.app)}` }, c.app), `/${c.component} `,
        h("span", { class: "num" }, `${c.replicas}`),
        c.running !== null && c.running !== undefined && c.running !== c.replicas ? h("span", { class: "muted" }, ` (${c.running} running)`) : null,
        c.version ? h("span", { class: "muted" }, ` ${c.version}`) : null))));
}

/** The apps; what runs is counted from the hosts listed, so only when they are every host. */
function drawApps(region, apps, inventory, everyHost) {
  const running = new Map();
  for (const host of inventory.hosts) {
    for (const c of host.components) running.set(c.app, (running.get(c.app) || 0) + (c.running || 0));
  }
  replace(region,
    h("h2", { id: "apps-h", style: "margin-top:0" }, "Apps"),
    apps.apps.length === 0 ? h("p", { class: "muted" }, "No apps yet. ", h("a", { href: "#/deploy" }, "Deploy one.")) :
      h("div", { class: "table-wrap" },
        h("table", { id: "apps" },
          h("thead", {}, h("tr", {}, ["App", "Status", "Desired", "Serving", "Running / placed", "Versions", "Deployed at"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, apps.apps.map((a) => h("tr", { "data-app": a.app },
            h("td", {}, h("a", { href: `#/apps/${encodeURIComponent(a.app)}` }, a.app)),
            h("td", {}, badge(a.status || "Undeployed")),
            h("td", {}, a.desired),
            h("td", {}, a.serving || "–"),
            h("td", { class: "num" }, everyHost ? `${running.get(a.app) || 0} / ${a.replicas}` : `– / ${a.replicas}`),
            h("td", { class: "num" }, a.versions),
            h("td", {}, time(a.deployed_at))))))));
}

// ---------------------------------------------------------------------------------------

const appPage = {
  render(main, params) {
    this.app = params[0];
    this.logsFollow = null;
    this.regions = {
      head: h("div", {}),
      spreads: h("section", { class: "panel", "aria-labelledby": "spreads-h" }),
      hosts: h("section", { class: "panel", "aria-labelledby": "runtime-h" }),
      traffic: h("section", { class: "panel", "aria-labelledby": "traffic-h" }),
      history: h("section", { class: "panel", "aria-labelledby": "history-h" }),
      logs: h("section", { class: "panel", "aria-labelledby": "logs-h" }),
    };
    replace(main, this.regions.head, this.regions.spreads,
      h("div", { class: "split" }, this.regions.hosts, this.regions.traffic),
      this.regions.history, this.regions.logs);
    this.drawLogsFrame();
  },

  leave() {
    if (this.logsFollow) this.logsFollow.abort();
  },

  async refresh() {
    const app = encodeURIComponent(this.app);
    let status, versions;
    try {
      [status, versions] = await Promise.all([api(`/v1/apps/${app}?stale=true`), api(`/v1/apps/${app}/versions?stale=true`)]);
    } catch (e) {
      if (e.status === 404) {
        replace(this.regions.head, h("h1", {}, this.app), h("p", { class: "error" }, e.message));
        return;
      }
      throw e;
    }
    this.status = status;
    const { applied_index, ...shown } = status;
    const r = this.regions;
    redraw(r.head, [shown.status, shown.desired, shown.undeployed, shown.placement, shown.runtime_failures, shown.warnings, shown.capabilities, shown.links, shown.roles, shown.runtime], () => this.drawHead(status));
    redraw(r.spreads, [shown.placement, shown.spreads], () => this.drawSpreads(status));
    redraw(r.hosts, shown.runtime, () => this.drawRuntime(status));
    redraw(r.traffic, traffic.newest(), () => this.drawTraffic());
    redraw(r.history, [versions, shown.desired, shown.undeployed], () => this.drawHistory(status, versions));
    if (!this.logsLoaded) this.loadLogs();
  },

  drawHead(s) {
    const p = s.placement;
    const why = session.cannotChange(s.app);
    const writable = !why;
    const messages = [...(p.messages || []), ...(s.runtime_failures || [])];
    replace(this.regions.head,
      h("h1", { class: "row" }, h("span", {}, s.app), h("span", { id: "app-status" }, badge(s.status))),
      h("p", { class: "row" },
        h("span", {}, "Desired: ", h("strong", { id: "desired-version" }, s.desired)),
        h("span", {}, "Serving: ", h("strong", { id: "serving-version" }, p.serving_version || "nothing")),
        h("span", { style: "margin-left:auto" },
          h("button", { type: "button", id: "undeploy", disabled: !writable || s.undeployed, title: why, onclick: () => this.undeploy() }, "Undeploy"), " ",
          h("button", { type: "button", id: "delete", class: "danger", disabled: !writable, title: why, onclick: () => this.remove() }, "Delete"))),
      messages.length ? h("ul", { class: "messages", id: "app-messages" }, messages.map((m) => h("li", {}, m))) : null,
      (s.warnings || []).length ? h("ul", { class: "warnings", id: "app-warnings" }, s.warnings.map((m) => h("li", {}, "warning: " + m))) : null,
      Object.keys(s.capabilities || {}).length ? h("p", { class: "muted", id: "app-capabilities" },
        Object.entries(s.capabilities).map(([name, served], i) => h("span", { class: "capability" }, `${i ? "; " : ""}${name}: ${served}`))) : null,
      (s.links || []).length ? h("ul", { class: "links muted", id: "app-links" }, s.links.map((l) => this.drawLink(s, l))) : null,
      this.drawRoles(s));
  },

  // What each component does in the app: the HTTP it serves, whom it calls, who calls it.
  drawRoles(s) {
    const parts = (role) => [
      role.http && role.http.length ? "HTTP " + role.http.join(", ") : null,
      role.calls && role.calls.length ? "calls " + role.calls.join(", ") : null,
      role.called_by && role.called_by.length ? "called by " + role.called_by.join(", ") : null,
      role.invoked_by && role.invoked_by.length ? "invoked by " + role.invoked_by.join(", ") : null,
    ].filter(Boolean);
    const roles = Object.entries(s.roles || {}).filter(([, role]) => parts(role).length);
    if (!roles.length) return null;
    return h("ul", { class: "roles", id: "app-roles" },
      roles.map(([name, role]) => h("li", {}, h("strong", {}, name), ": " + parts(role).join("; "))));
  },

  // A link, and, for a component's link to a capability, how its backend fares on each host
  // that used it (its last call there).
  drawLink(s, line) {
    const [source, rest] = line.split(" → ");
    const target = (rest || "").split(" (")[0];
    const capabilities = s.capabilities || {};
    if (Object.prototype.hasOwnProperty.call(capabilities, source)) return h("li", {}, line);
    // A component's link to another component is served in process beside it.
    if (!Object.prototype.hasOwnProperty.call(capabilities, target)) return h("li", {}, line, h("span", { class: "muted" }, " — in process"));
    const states = [];
    for (const [host, r] of Object.entries(s.runtime || {})) {
      for (const l of r.links || []) {
        if (line.startsWith(`${l.component} → ${l.target} (`) && line.endsWith(`[${l.link}]`)) {
          states.push({ host, failure: l.failure });
        }
      }
    }
    const failing = states.filter((x) => x.failure);
    const health = states.length === 0 ? h("span", { class: "muted" }, " — not used yet")
      : failing.length ? h("span", { class: "error link-health" }, " — failing: " + failing.map((x) => `${x.host}: ${x.failure}`).join("; "))
      : h("span", { class: "link-health" }, ` — ok on ${states.map((x) => x.host).join(", ")}`);
    return h("li", {}, line, health);
  },

  drawSpreads(s) {
    const components = Object.entries(s.placement.components);
    replace(this.regions.spreads,
      h("h2", { id: "spreads-h", style: "margin-top:0" }, "Placement by spread",
        s.placement.serving_version ? h("span", { class: "muted" }, ` (version ${s.placement.serving_version})`) : null),
      components.length === 0 ? h("p", { class: "muted" }, "Nothing placed.") :
        components.map(([name, cp]) => {
          const spreads = (s.spreads || {})[name] || [];
          for (const sp of spreads) sp.placed_sum = Object.values(sp.hosts).reduce((a, b) => a + b, 0);
          const placedAll = spreads.reduce((n, sp) => n + sp.placed_sum, 0) || 1;
          return h("div", { class: "component", "data-component": name },
            h("h3", {}, `${name} `, badge(cp.status)),
            (cp.messages || []).length ? h("ul", { class: "messages" }, cp.messages.map((m) => h("li", {}, m))) : null,
            spreads.length ? h("div", { class: "spread-bar", role: "img", "aria-label": spreads.map((sp) => `${sp.name} ${sp.placed_sum}`).join(", ") },
              spreads.filter((sp) => sp.placed_sum > 0).map((sp, i) => h("span", {
                style: `width:${(100 * sp.placed_sum) / placedAll}%;background:${PALETTE[i % PALETTE.length]}`,
                title: `${sp.name}: ${sp.placed_sum}`,
              }, `${sp.name} ${sp.placed_sum}`))) : null,
            h("div", { class: "table-wrap" }, h("table", { class: "spreads" },
              h("thead", {}, h("tr", {}, ["Spread", "Weight", "Requires", "Requested", "Placed", "Hosts"].map((t) => h("th", { scope: "col" }, t)))),
              h("tbody", {}, spreads.map((sp) => h("tr", { "data-spread": sp.name, "data-requested": sp.requested, "data-placed": sp.placed_sum },
                h("td", {}, sp.name),
                h("td", { class: "num" }, sp.weight === null || sp.weight === undefined ? "daemon" : sp.weight),
                h("td", {}, Object.keys(sp.requirements).length ? chips(sp.requirements) : h("span", { class: "muted" }, "any host")),
                h("td", { class: "num" }, sp.requested),
                h("td", { class: sp.placed_sum < sp.requested ? "num error" : "num" }, sp.placed_sum),
                h("td", {}, Object.entries(sp.hosts).map(([host, n]) => h("span", { class: "chip" }, `${host}: ${n}`)))))))));
        }));
  },

  drawRuntime(s) {
    const rows = [];
    for (const [host, r] of Object.entries(s.runtime)) {
      for (const run of r.running) rows.push(h("tr", {}, h("td", {}, host), h("td", {}, run.component), h("td", {}, run.version), h("td", { class: "num" }, run.replicas), h("td", { class: "num" }, run.in_use), h("td", {}, run.tier || "")));
      for (const f of r.failed) rows.push(h("tr", {}, h("td", {}, host), h("td", {}, f.component), h("td", { class: "error", colspan: 4 }, f.reason)));
    }
    replace(this.regions.hosts,
      h("h2", { id: "runtime-h", style: "margin-top:0" }, "Running on hosts"),
      rows.length ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Host", "Component", "Version", "Replicas", "In use", "Code"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))) : h("p", { class: "muted" }, "No replicas running."));
  },

  drawTraffic() {
    const rates = traffic.rates(this.app);
    const last = rates[rates.length - 1] || { rps: 0, eps: 0 };
    const width = 600;
    const height = 90;
    const top = Math.max(1, ...rates.map((r) => r.rps));
    const x = (at) => width - ((Date.now() - at) / TRAFFIC_WINDOW_MS) * width;
    const y = (v) => height - 4 - (v / top) * (height - 10);
    const line = (key) => rates.map((r, i) => `${i ? "L" : "M"}${x(r.at).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
    replace(this.regions.traffic,
      h("h2", { id: "traffic-h", style: "margin-top:0" }, "Traffic through this node"),
      h("p", { class: "row" },
        h("span", {}, "requests/s ", h("strong", { class: "num", id: "rps" }, last.rps.toFixed(1))),
        h("span", {}, "5xx/s ", h("strong", { class: `num ${last.eps > 0 ? "error" : ""}`, id: "eps" }, last.eps.toFixed(1))),
        h("span", { class: "muted" }, `last ${TRAFFIC_WINDOW_MS / 60000} minutes, peak ${top.toFixed(1)}/s`)),
      svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": "requests and 5xx per second" },
        rates.length > 1 ? svg("path", { d: line("rps"), fill: "none", stroke: "#1d5fa8", "stroke-width": 2 }) : null,
        rates.length > 1 ? svg("path", { d: line("eps"), fill: "none", stroke: "#b3261e", "stroke-width": 2 }) : null));
  },

  drawHistory(s, versions) {
    const why = session.cannotChange(s.app);
    const writable = !why;
    const byVersion = new Map(versions.versions.map((v) => [v.version, v]));
    replace(this.regions.history,
      h("h2", { id: "history-h", style: "margin-top:0" }, "Versions and history"),
      h("div", { class: "table-wrap" }, h("table", { id: "history" },
        h("thead", {}, h("tr", {}, ["Event", "Version", "Who", "When (UTC)", "Image", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, [...versions.history].reverse().map((d) => {
          const v = byVersion.get(d.version) || { images: {}, digests: {} };
          const image = Object.entries(v.images).map(([c, r]) => `${c}: ${r}`).concat(
            Object.entries(v.digests).filter(([c]) => !v.images[c]).map(([c, dg]) => `${c}: sha256:${shortHash(dg)}`)).join(", ");
          const current = d.version === s.desired && !s.undeployed;
          return h("tr", { "data-version": d.version },
            h("td", { class: "num" }, h("a", { href: `#/events/${d.index}` }, d.index)),
            h("td", {}, d.version, current ? " " : null, current ? badge("desired", "kind") : null),
            h("td", {}, d.who),
            h("td", {}, time(d.at)),
            h("td", { class: "mono" }, image),
            h("td", {}, current ? null : h("button", {
              type: "button", "data-rollback": d.version, disabled: !writable,
              title: why,
              onclick: () => this.rollback(d.version),
            }, s.undeployed && d.version === s.desired ? "Deploy again" : "Roll back to this")));
        })))));
  },

  async rollback(version) {
    if (!(await confirmDialog(`Deploy version ${version} of ${this.app} again?`, "Deploy"))) return;
    await act(() => api(`/v1/apps/${encodeURIComponent(this.app)}/versions/${encodeURIComponent(version)}/deploy?who=${encodeURIComponent(ui.who())}`, { method: "POST" }),
      (r) => `deployed ${this.app} version ${version} again (event ${r.index})`);
  },

  async undeploy() {
    if (!(await confirmDialog(`Undeploy ${this.app}? Its replicas stop on every host; its versions and history are kept.`, "Undeploy"))) return;
    await act(() => api(`/v1/apps/${encodeURIComponent(this.app)}/undeploy?who=${encodeURIComponent(ui.who())}`, { method: "POST" }),
      (r) => `undeployed ${this.app} (event ${r.index})`);
  },

  async remove() {
    if (!(await confirmDialog(`Delete ${this.app} from the state? Its events stay in the audit log.`, "Delete"))) return;
    const ok = await act(() => api(`/v1/apps/${encodeURIComponent(this.app)}?who=${encodeURIComponent(ui.who())}`, { method: "DELETE" }),
      (r) => `deleted ${this.app} (event ${r.index})`);
    if (ok) location.hash = "#/";
  },

  drawLogsFrame() {
    this.logsBody = h("tbody", {});
    this.logsNote = h("p", { class: "muted" });
    const follow = h("input", { type: "checkbox", id: "logs-follow", onchange: (e) => (e.target.checked ? this.followLogs() : this.leave()) });
    replace(this.regions.logs,
      h("div", { class: "row" },
        h("h2", { id: "logs-h", style: "margin:0" }, "Logs"),
        h("label", {}, follow, " follow"),
        h("button", { type: "button", onclick: () => this.loadLogs() }, "Reload")),
      this.logsNote,
      h("div", { class: "logs" }, h("table", {}, this.logsBody)));
  },

  logRow(l) {
    return h("tr", {}, h("td", {}, time(l.at)), h("td", { class: l.level === "error" ? "error" : "" }, l.level.toUpperCase()),
      h("td", {}, l.host), h("td", {}, l.component), h("td", {}, l.message));
  },

  async loadLogs() {
    this.logsLoaded = true;
    if (!session.token) {
      this.logsNote.textContent = "Log in with an API token to read the app's logs.";
      return;
    }
    try {
      const logs = await api(`/v1/apps/${encodeURIComponent(this.app)}/logs?limit=${LOG_LINES}`);
      replace(this.logsBody, logs.lines.map((l) => this.logRow(l)));
      this.logsNote.textContent = logs.lines.length ? ((logs.unreachable || []).length ? `not reached: ${logs.unreachable.join(", ")}` : "") : "No lines yet.";
    } catch (e) {
      this.logsNote.textContent = e.message;
    }
  },

  async followLogs() {
    if (!session.token) return;
    this.logsFollow = new AbortController();
    try {
      await readEvents(`/v1/apps/${encodeURIComponent(this.app)}/logs?follow=true&since=${Date.now()}`, (line) => {
        this.logsBody.append(this.logRow(line));
        while (this.logsBody.rows.length > LOG_LINES) this.logsBody.deleteRow(0);
      }, { signal: this.logsFollow.signal });
    } catch (e) {
      if (e.name !== "AbortError") this.logsNote.textContent = e.message;
    }
  },
};

// ---------------------------------------------------------------------------------------

const deployPage = {
  render(main) {
    this.pins = new Map();
    this.checked = null;
    this.text = h("textarea", { id: "manifest", spellcheck: "false", "aria-describedby": "manifest-help",
      placeholder: "apiVersion: core.oam.dev/v1beta1\nkind: Application\n…", oninput: () => this.invalidate() });
    const file = h("input", { type: "file", id: "manifest-file", accept: ".yaml,.yml,.json,text/yaml,application/json",
      onchange: async (e) => { const f = e.target.files[0]; if (f) { this.text.value = await f.text(); this.invalidate(); } } });
    this.result = h("div", { id: "deploy-result", "aria-live": "polite" });
    this.checkButton = h("button", { type: "button", id: "dry-run", class: "primary", onclick: () => this.check() }, "Check placement");
    this.deployButton = h("button", { type: "button", id: "deploy", disabled: true, onclick: () => this.deploy() }, "Deploy");
    replace(main,
      h("h1", {}, "Deploy"),
      h("section", { class: "panel" },
        h("p", { id: "manifest-help", class: "muted" },
          "Paste a wadm manifest (YAML or JSON) or load a file. Check it first: errors show at their line, then the placement it would get. Nothing is deployed until you confirm."),
        h("div", { class: "row" }, h("label", { for: "manifest-file" }, "Load a file"), file),
        h("label", { for: "manifest", class: "visually-hidden" }, "Manifest"),
        this.text,
        h("div", { class: "row", style: "margin-top:.6em" }, this.checkButton, this.deployButton,
          session.cannotChange(null) ? h("span", { class: "muted" }, `${session.cannotChange(null)}: a deploy or admin token checks and deploys.`) : null)),
      this.result);
  },

  refresh() {},

  invalidate() {
    this.checked = null;
    this.deployButton.disabled = true;
  },

  query() {
    const pins = [...this.pins.entries()].map(([c, d]) => `${c}:${d}`).join(",");
    return `who=${encodeURIComponent(ui.who())}${pins ? `&pin=${encodeURIComponent(pins)}` : ""}`;
  },

  async check() {
    this.invalidate();
    replace(this.result, h("p", { class: "muted" }, "Checking…"));
    try {
      const answer = await api(`/v1/apps?dry_run=true&${this.query()}`, { method: "POST", body: this.text.value, headers: { "Content-Type": "application/yaml" } });
      this.showDryRun(answer);
    } catch (e) {
      this.showError(e);
    }
    this.result.scrollIntoView({ block: "nearest" });
  },

  showError(e) {
    replace(this.result, h("section", { class: "panel", id: "deploy-errors" },
      h("h2", { class: "error", style: "margin-top:0" }, e.message),
      e.details.length ? h("ul", { class: "messages" }, e.details.map((d) => {
        const where = d.position ? `line ${d.position.line}, column ${d.position.column}` : "";
        return h("li", { class: "diag", tabindex: 0, "data-line": d.position ? d.position.line : "",
          onclick: () => this.goToLine(d.position), onkeydown: (ev) => { if (ev.key === "Enter") this.goToLine(d.position); } },
        h("span", { class: "where" }, where), d.path ? h("span", { class: "mono" }, `${d.path}: `) : null, d.message);
      })) : null));
  },

  goToLine(position) {
    if (!position) return;
    const lines = this.text.value.split("\n");
    let start = 0;
    for (let i = 0; i < position.line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[position.line - 1] || "").length;
    this.text.focus();
    this.text.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(this.text).lineHeight) || 18;
    this.text.scrollTop = Math.max(0, (position.line - 3) * lineHeight);
  },

  showDryRun(answer) {
    const p = answer.placement;
    const uploads = answer.uploads || [];
    const pending = () => uploads.filter((u) => !this.pins.has(u.component));
    const uploadRows = uploads.map((u) => {
      const state = h("span", { class: "muted" }, this.pins.has(u.component) ? `sha256:${shortHash(this.pins.get(u.component))}` : "not uploaded");
      const input = h("input", { type: "file", accept: ".wasm,application/wasm", "data-upload": u.component, "aria-label": `component ${u.component} file`,
        onchange: async (e) => {
          const f = e.target.files[0];
          if (!f) return;
          state.textContent = "uploading…";
          try {
            const up = await api("/v1/blobs", { method: "POST", body: f, headers: { "Content-Type": "application/wasm" } });
            this.pins.set(u.component, up.digest.replace(/^sha256:/, ""));
            this.check();
          } catch (err) {
            state.textContent = err.message;
          }
        } });
      const reuse = u.previous ? h("button", { type: "button", onclick: () => { this.pins.set(u.component, u.previous); this.check(); } },
        `use the deployed sha256:${shortHash(u.previous)}`) : null;
      return h("li", { class: "info" }, `component ${u.component}: file://${u.path} `, input, " ", reuse, " ", state);
    });
    const components = p ? Object.entries(p.components) : [];
    replace(this.result, h("section", { class: "panel", id: "dry-run-result" },
      h("h2", { style: "margin-top:0" }, `${answer.app} version ${answer.version}: `,
        answer.accepted ? (p ? badge(p.status) : badge("accepted", "Deployed")) : badge("would be ignored", "Failed")),
      answer.ignored ? h("p", { class: "error" }, answer.ignored) : null,
      uploads.length ? h("div", {}, h("h3", {}, "Components to upload"), h("ul", { class: "messages" }, uploadRows)) : null,
      p && (p.messages || []).length ? h("ul", { class: "messages" }, p.messages.map((m) => h("li", {}, m))) : null,
      (answer.warnings || []).length ? h("ul", { class: "messages" }, answer.warnings.map((w) => h("li", { class: "info" },
        w.position ? `line ${w.position.line}: ` : "", w.message))) : null,
      components.length ? h("div", { class: "table-wrap" }, h("table", { id: "would-place" },
        h("thead", {}, h("tr", {}, ["Component", "Status", "Host", "Replicas"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, components.flatMap(([name, cp]) => {
          const hosts = Object.entries(cp.hosts);
          if (!hosts.length) return [h("tr", {}, h("td", {}, name), h("td", {}, badge(cp.status)), h("td", { class: "muted" }, "none"), h("td", { class: "num" }, 0))];
          return hosts.map(([host, n]) => h("tr", {}, h("td", {}, name), h("td", {}, badge(cp.status)), h("td", {}, host), h("td", { class: "num" }, n)));
        })))) : null));
    this.checked = answer.accepted && pending().length === 0 ? answer : null;
    this.deployButton.disabled = !this.checked;
    this.deployButton.textContent = this.checked ? `Deploy ${answer.app} ${answer.version}` : "Deploy";
  },

  async deploy() {
    if (!this.checked) return;
    const app = this.checked.app;
    try {
      const r = await api(`/v1/apps?${this.query()}`, { method: "POST", body: this.text.value, headers: { "Content-Type": "application/yaml" } });
      ui.toast(`deployed ${app} version ${r.version} (event ${r.index})`);
      location.hash = `#/apps/${encodeURIComponent(app)}`;
    } catch (e) {
      this.showError(e);
    }
  },
};

// ---------------------------------------------------------------------------------------

/** One line of what an event says, for the timeline. */
function eventSummary(e) {
  const parts = [];
  if (e.app) parts.push(`app ${e.app}`);
  if (e.version) parts.push(`version ${e.version}`);
  if (e.host) parts.push(`host ${e.host}`);
  if (e.name) parts.push(`secret ${e.name}`);
  if (e.labels && Object.keys(e.labels).length) parts.push(labelsText(e.labels));
  if (e.who) parts.push(`by ${e.who}`);
  return parts.join(" · ");
}

/** Changed leaves between two JSON values: [{path, before, after}]. */
function diff(before, after, path, out) {
  const isObj = (v) => v !== null && typeof v === "object";
  if (isObj(before) && isObj(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const k of [...keys].sort()) diff(before[k], after[k], path ? `${path}.${k}` : k, out);
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push({ path, before, after });
  }
  return out;
}

const eventsPage = {
  render(main, params) {
    this.selected = params[0] ? Number(params[0]) : null;
    // Filters outlive a click on an event (which changes the address, so renders again).
    this.filters = this.filters || { kind: "", app: "", host: "" };
    const filter = (name, label) => {
      const el = h("select", { id: `filter-${name}`, onchange: (e) => { this.filters[name] = e.target.value; this.drawList(); } }, h("option", { value: "" }, "all"));
      if (this.filters[name]) el.append(h("option", { value: this.filters[name] }, this.filters[name]));
      el.value = this.filters[name];
      return [h("label", { for: `filter-${name}` }, label), el];
    };
    this.kindFilter = filter("kind", "Kind");
    this.appFilter = filter("app", "App");
    this.hostFilter = filter("host", "Host");
    this.list = h("ol", { class: "timeline", id: "timeline", reversed: true, "aria-label": "events, newest first" });
    this.detail = h("section", { class: "panel", id: "event-detail", "aria-live": "polite" }, h("p", { class: "muted" }, "Choose an event to see the state it made."));
    replace(main,
      h("h1", {}, "Events"),
      h("section", { class: "panel" }, h("div", { class: "row" }, this.kindFilter, this.appFilter, this.hostFilter,
        h("span", { class: "muted", id: "event-count" }))),
      h("div", { class: "split" }, h("section", { class: "panel" }, this.list), this.detail));
    this.drawList();
    if (this.selected) this.show(this.selected);
    this.unlisten = onEvent(() => this.drawList());
  },

  leave() {
    if (this.unlisten) this.unlisten();
  },

  /** Another event chosen: the list stays as it is (and where it was scrolled to). */
  update(params) {
    this.selected = params[0] ? Number(params[0]) : null;
    for (const li of this.list.children) li.setAttribute("aria-selected", Number(li.dataset.index) === this.selected ? "true" : "false");
    if (this.selected) this.show(this.selected);
  },

  refresh() {},

  matches(record) {
    const e = record.event;
    return (!this.filters.kind || e.kind === this.filters.kind) &&
      (!this.filters.app || e.app === this.filters.app) &&
      (!this.filters.host || e.host === this.filters.host);
  },

  drawList() {
    const fill = (select, values) => {
      const el = select[1];
      const have = [...el.options].map((o) => o.value);
      for (const v of [...values].sort()) if (!have.includes(v)) el.append(h("option", { value: v }, v));
    };
    fill(this.kindFilter, new Set(feed.events.map((r) => r.event.kind)));
    fill(this.appFilter, new Set(feed.events.map((r) => r.event.app).filter(Boolean)));
    fill(this.hostFilter, new Set(feed.events.map((r) => r.event.host).filter(Boolean)));
    const shown = feed.events.filter((r) => this.matches(r)).reverse();
    replace(this.list, shown.map((r) => h("li", {
      tabindex: 0, "data-index": r.index, "data-kind": r.event.kind, "aria-selected": r.index === this.selected ? "true" : "false",
      onclick: () => { location.hash = `#/events/${r.index}`; },
      onkeydown: (ev) => { if (ev.key === "Enter") location.hash = `#/events/${r.index}`; },
    },
    h("span", { class: "num" }, r.index), h("span", { class: "at muted" }, time(r.event.at)),
    h("span", {}, badge(r.event.kind, "kind")), h("span", {}, eventSummary(r.event)))));
    document.getElementById("event-count").textContent = `${shown.length} of ${feed.events.length} events`;
  },

  async show(index) {
    replace(this.detail, h("p", { class: "muted" }, `Reading the state at event ${index}…`));
    try {
      const [after, before] = await Promise.all([api(`/v1/state?at=${index}`), index > 1 ? api(`/v1/state?at=${index - 1}`) : Promise.resolve({ state: {}, placements: {} })]);
      const record = feed.events.find((r) => r.index === index);
      const changes = diff({ state: before.state, placements: before.placements }, { state: after.state, placements: after.placements }, "", []);
      const cell = (v) => (v === undefined ? "" : JSON.stringify(v));
      replace(this.detail,
        h("h2", { style: "margin-top:0" }, `Event ${index}`, record ? h("span", {}, " ", badge(record.event.kind, "kind")) : null),
        h("p", { class: "muted" }, `state hash after it: `, h("span", { class: "mono", id: "state-hash-at" }, shortHash(after.state_hash))),
        record ? h("pre", { class: "json" }, JSON.stringify(record.event, null, 2)) : null,
        h("h3", {}, `What it changed (${changes.length})`),
        h("div", { class: "table-wrap" }, h("table", { class: "diff", id: "state-diff" },
          h("thead", {}, h("tr", {}, ["Path", "Before", "After"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, changes.map((c) => h("tr", {}, h("td", { class: "mono" }, c.path), h("td", { class: "before" }, cell(c.before)), h("td", { class: "after" }, cell(c.after))))))));
    } catch (e) {
      replace(this.detail, h("p", { class: "error" }, e.message));
    }
  },
};

// ---------------------------------------------------------------------------------------
// The shell: routing, login, the live indicator, refreshing, confirmations.

const eventListeners = new Set();
function onEvent(listener) {
  eventListeners.add(listener);
  return () => eventListeners.delete(listener);
}

async function confirmDialog(text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

/** Runs a change, says what happened, refreshes. */
async function act(call, said) {
  try {
    const r = await call();
    ui.toast(said(r));
    ui.refreshSoon();
    return true;
  } catch (e) {
    ui.toast(e.message, true);
    return false;
  }
}

const routes = [
  [/^#?\/?$/, overview, "overview"],
  [/^#\/apps\/(.+)$/, appPage, "overview"],
  [/^#\/deploy$/, deployPage, "deploy"],
  [/^#\/events(?:\/(\d+))?$/, eventsPage, "events"],
];

const ui = {
  view: null,
  refreshing: false,
  pending: null,

  start() {
    document.getElementById("login").addEventListener("submit", (e) => {
      e.preventDefault();
      this.login(document.getElementById("token-input").value.trim());
    });
    // Logging out forgets everything the page read with the token.
    document.getElementById("logout").addEventListener("click", () => { session.token = ""; location.reload(); });
    window.addEventListener("hashchange", () => this.route());
    this.showSession();
    if (session.token) this.login(session.token);
    else this.askToLogIn();
  },

  /** Every read needs a token: until there is one, the page says how to get one. */
  askToLogIn(why) {
    this.view = null;
    replace(document.getElementById("main"),
      h("h1", {}, "Log in"),
      h("section", { class: "panel", id: "login-needed" },
        why ? h("p", { class: "error" }, why) : null,
        h("p", {}, "Every page of the dashboard reads the cluster through its API, which needs a token: paste one in the field above."),
        h("ul", {},
          h("li", {}, "On a host's machine, the admin token is in ", h("span", { class: "mono" }, "DATA_DIR/api-token"), "."),
          h("li", {}, "A token that only reads: ", h("span", { class: "mono" }, "flotilla token create --scope read --name dashboard"), "."),
          h("li", {}, "One that deploys one app: ", h("span", { class: "mono" }, "flotilla token create --scope deploy --app APP"), ".")),
        h("p", { class: "muted" }, "The token stays in this browser tab only.")));
    document.getElementById("token-input").focus();
  },

  async login(token) {
    if (!token) return;
    session.token = token;
    try {
      session.holder = await api("/v1/token");
    } catch (e) {
      session.token = "";
      session.holder = null;
      this.showSession();
      this.askToLogIn(e.status === 401 ? `That token is refused: ${e.message}` : e.message);
      return;
    }
    this.showSession();
    this.begin();
  },

  /** Starts following the cluster, once logged in. */
  begin() {
    if (!this.started) {
      this.started = true;
      setInterval(() => this.refresh(), REFRESH_EVERY_MS);
      setInterval(() => traffic.sample(), SAMPLE_EVERY_MS);
      traffic.sample();
      onEvent(() => this.refreshSoon());
      feed.listeners.add((record) => { for (const l of eventListeners) l(record); });
      api("/v1/cluster").then((c) => feed.start(c.applied_index - TIMELINE_START + 1)).catch(() => feed.start(1));
    }
    this.route();
  },

  tokenRefused() {
    session.token = "";
    session.holder = null;
    this.showSession();
    this.askToLogIn("The token was refused (revoked, expired or rotated): log in again.");
  },

  who() {
    return "dashboard";
  },

  showSession() {
    const on = !!session.token;
    document.getElementById("login").hidden = on;
    document.getElementById("logged-in").hidden = !on;
    document.getElementById("token-input").value = "";
    const h = session.holder;
    document.getElementById("holder").textContent = h ? `${h.name} (${h.scope}${h.apps && h.apps.length ? `: ${h.apps.join(", ")}` : ""})` : "";
  },

  showLive() {
    const el = document.getElementById("live");
    el.textContent = feed.connected ? "live" : "reconnecting…";
    el.className = `feed-state ${feed.connected ? "up" : "down"}`;
  },

  route() {
    if (!session.holder) return;
    const hash = location.hash || "#/";
    for (const [pattern, view, nav] of routes) {
      const m = pattern.exec(hash);
      if (!m) continue;
      const params = m.slice(1).filter((x) => x !== undefined).map(decodeURIComponent);
      if (this.view === view && view.update) {
        view.update(params);
        return;
      }
      if (this.view && this.view.leave) this.view.leave();
      this.view = view;
      for (const a of document.querySelectorAll("[data-nav]")) {
        if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      const main = document.getElementById("main");
      view.render(main, params);
      this.refresh();
      return;
    }
    location.hash = "#/";
  },

  refreshSoon() {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh(), EVENT_SETTLE_MS);
  },

  async refresh() {
    if (this.refreshing || !this.view) return;
    this.refreshing = true;
    const banner = document.getElementById("banner");
    try {
      await this.view.refresh();
      banner.hidden = true;
    } catch (e) {
      banner.textContent = e instanceof Unreachable ? `This node (${location.host}) is not answering; retrying…`
        : e instanceof ApiError ? e.message : `The page could not show this: ${e}`;
      banner.title = String(e);
      banner.hidden = false;
    } finally {
      this.refreshing = false;
    }
  },

  toast(text, bad) {
    const banner = document.getElementById("banner");
    banner.textContent = text;
    banner.className = bad ? "banner" : "banner info";
    banner.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { banner.hidden = true; banner.className = "banner"; }, 6000);
  },
};

document.addEventListener("DOMContentLoaded", () => ui.start());
