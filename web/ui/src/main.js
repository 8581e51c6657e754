// meshtwin UI: subscribes to the live graph and draws it.

import "./style.css";
import { activeRows, renderAnomalies } from "./anomalies.js";
import { loadCauses, renderCauses } from "./causes.js";
import { incidentRows, renderIncidents } from "./incidents.js";
import { millis, percent, rate, time } from "./format.js";
import { GraphView } from "./graph.js";
import { HistoryControl } from "./history.js";
import { GraphStream } from "./stream.js";
import { TracesDrawer } from "./traces.js";

const $ = (id) => document.getElementById(id);
let selected = null;
// The incident picked in the side panel, by id.
let pickedIncident = null;
// The picked incident's ranked causes: {id, result} or {id, error} once
// loaded; and the cause whose path is highlighted, by service.
let causes = null;
let pickedCause = null;
// The past graph on show, or null for the live one.
let shown = null;
const current = () => shown ?? stream;

const view = new GraphView($("graph"), (id) => {
  selected = id;
  if (pickedIncident) {
    pickedIncident = null;
    view.markIncident([]);
    view.markPath([]);
    renderAlarms(stream);
  }
  renderDetails();
});

const scheme = location.protocol === "https:" ? "wss" : "ws";
const stream = new GraphStream(`${scheme}://${location.host}/api/v1/stream`, {
  onChange: render,
  onStatus: (status) => {
    $("status").textContent = status;
    $("status").className = `pill pill-${status}`;
  },
});

// Searches end at the time on show: now, or the past the slider picked.
const traces = new TracesDrawer(
  () => shown?.at ?? stream.at,
  () => {
    view.cy.resize();
    view.fit();
  },
);

const history = new HistoryControl({
  clock: () => stream.at,
  show: (graph, classes) => {
    shown = graph;
    if (graph) {
      $("node-count").textContent = graph.nodes.size;
      $("edge-count").textContent = graph.edges.size;
      view.update(graph, "last_1m");
      view.setClasses(classes);
      renderServices(graph);
      renderDetails();
    } else {
      view.setClasses(new Map());
      render(stream);
    }
  },
});

// A debugging handle: the live cytoscape instance, the stream's state, the
// traces drawer and the time travel control.
window.meshtwin = { cy: view.cy, stream, traces, history };

$("window").addEventListener("change", () => {
  if (!shown) render(stream);
});
$("fit").addEventListener("click", () => view.fit());

function currentWindow() {
  return $("window").value;
}

function render(s) {
  $("version").textContent = s.version;
  $("clock").textContent = time(s.at);
  traces.setServices(
    [...s.nodes.values()].filter((n) => n.kind === "service").map((n) => n.name).sort(),
  );
  if (!history.isLive()) return;
  $("node-count").textContent = s.nodes.size;
  $("edge-count").textContent = s.edges.size;
  view.update(s, currentWindow());
  renderServices(s);
  renderAlarms(s);
  renderDetails();
}

/** A node's or edge's name as the panel shows it. */
function subjectName(s, anomaly) {
  const name = (id) => s.nodes.get(id)?.name ?? id;
  if (anomaly.subject === "node") return name(anomaly.id);
  const [source, target] = anomaly.id.split("->");
  return `${name(source)} → ${name(target)}`;
}

function select(id) {
  selected = id;
  pickedIncident = null;
  view.markIncident([]);
  view.markPath([]);
  view.cy.$(":selected").unselect();
  view.cy.getElementById(id).select();
  renderDetails();
}

function renderAlarms(s) {
  $("anomalies-empty").hidden = s.anomalies.length > 0;
  renderAnomalies($("anomalies"), s.anomalies, (a) => subjectName(s, a), select);
  renderIncidents($("incidents"), s.incidents, (id) => s.nodes.get(id)?.name ?? id, pickedIncident, pickIncident);
  const incident = pickedIncident && s.incidents.get(pickedIncident);
  if (incident) view.markIncident(incident.nodes);
}

function pickIncident(id) {
  pickedIncident = id;
  selected = null;
  view.cy.$(":selected").unselect();
  const incident = stream.incidents.get(id);
  view.markIncident(incident?.nodes ?? []);
  view.markPath([]);
  pickedCause = null;
  causes = { id };
  loadCauses(id).then(
    (result) => {
      if (causes?.id !== id) return;
      causes = { id, result };
      // The top cause's path is shown until another is picked.
      if (result.causes.length) pickCause(result.causes[0]);
      else renderDetails();
    },
    (error) => {
      if (causes?.id === id) causes = { id, error: error.message };
      renderDetails();
    },
  );
  renderAlarms(stream);
  renderDetails();
}

function pickCause(cause) {
  pickedCause = cause.service;
  view.markPath(cause.path);
  renderDetails();
}

function causesSection(id) {
  if (causes?.id !== id || (!causes.result && !causes.error)) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "Ranking causes…";
    return p;
  }
  if (causes.error) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = `No ranking: ${causes.error}`;
    return p;
  }
  return renderCauses(causes.result, pickedCause, pickCause);
}

function renderIncidentDetails(panel, incident) {
  const heading = document.createElement("h2");
  heading.textContent = `Incident #${incident.id}`;
  const table = document.createElement("table");
  const names = (id) => stream.nodes.get(id)?.name ?? id;
  for (const [label, text, subject] of incidentRows(incident, names)) {
    const tr = row(label, text, subject ? "signal" : undefined);
    if (subject) {
      tr.dataset.subject = subject;
      tr.addEventListener("click", () => select(subject));
    }
    table.append(tr);
  }
  panel.replaceChildren(heading, causesSection(incident.id), table);
}

const HEALTH_ORDER = { failing: 0, degraded: 1, healthy: 2, idle: 3 };

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderServices(s) {
  const window = currentWindow();
  const rows = [...s.nodes.values()].sort(
    (a, b) => HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health] || a.name.localeCompare(b.name),
  );
  const body = $("services").tBodies[0];
  body.replaceChildren(
    ...rows.map((node) => {
      const w = node.windows[window];
      const tr = document.createElement("tr");
      tr.dataset.node = node.id;
      tr.append(
        cell(`${node.anomalies?.length ? "⚠ " : ""}${node.name}`, `health-${node.health}`),
        cell(rate(w.rate_per_second)),
        cell(percent(w.error_ratio)),
        cell(millis(w.latency_ms?.p99)),
      );
      tr.addEventListener("click", () => select(node.id));
      return tr;
    }),
  );
}

function row(label, value, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  const th = document.createElement("th");
  th.textContent = label;
  tr.append(th, cell(value));
  return tr;
}

function quantiles(q) {
  return q ? `${millis(q.p50)} / ${millis(q.p90)} / ${millis(q.p99)}` : "–";
}

function renderDetails() {
  const panel = $("details");
  const incident = pickedIncident && stream.incidents.get(pickedIncident);
  if (incident && !shown) {
    renderIncidentDetails(panel, incident);
    return;
  }
  const node = selected && current().nodes.get(selected);
  const edge = selected && current().edges.get(selected);
  const heading = document.createElement("h2");
  const table = document.createElement("table");
  const actions = document.createElement("p");
  actions.className = "actions";
  if (node) {
    heading.textContent = `${node.name} (${node.kind})`;
    table.append(...activeRows(node).map(([label, text]) => row(label, text, "anomaly")));
    for (const [label, key] of [["last 1 min", "last_1m"], ["last 5 min", "last_5m"]]) {
      const w = node.windows[key];
      table.append(
        row(label, `${rate(w.rate_per_second)}, ${percent(w.error_ratio)} errors`),
        row("p50 / p90 / p99", quantiles(w.latency_ms)),
      );
    }
    table.append(
      row("health", node.health),
      row("namespace", node.namespace ?? "–"),
      row("versions", node.versions.join(", ") || "–"),
      row("regions", node.regions.join(", ") || "–"),
      row("instances", String(node.instances)),
      row("total", `${node.total_requests} requests, ${node.total_errors} errors`),
      row("last seen", time(node.last_seen_unix_nanos)),
    );
    if (node.kind === "service") {
      actions.append(button(`traces of ${node.name}`, "traces-of-node", () => traces.searchService(node.name)));
    }
  } else if (edge) {
    heading.textContent = `${edge.source} → ${edge.target}`;
    table.append(...activeRows(edge).map(([label, text]) => row(label, text, "anomaly")));
    for (const [label, key] of [["last 1 min", "last_1m"], ["last 5 min", "last_5m"]]) {
      const w = edge.windows[key];
      table.append(
        row(label, `${rate(w.rate_per_second)}, ${percent(w.error_ratio)} errors`),
        row("client p50/p90/p99", quantiles(w.client_latency_ms)),
        row("server p50/p90/p99", quantiles(w.server_latency_ms)),
      );
    }
    table.append(
      row("connection", edge.connection_type),
      row("health", edge.health),
      row("total", `${edge.total_requests} requests, ${edge.total_failed} failed`),
      row("mTLS", mtlsText(edge)),
      row("last seen", time(edge.last_seen_unix_nanos)),
    );
    const source = current().nodes.get(edge.source);
    const target = current().nodes.get(edge.target);
    if (source && target) {
      const virtual = target.kind !== "service";
      actions.append(
        button("traces on this edge", "traces-on-edge", () => traces.searchEdge(source.name, target.name, virtual)),
      );
    }
  } else {
    heading.textContent = "Details";
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = "Select a node or an edge.";
    panel.replaceChildren(heading, hint);
    return;
  }
  panel.replaceChildren(heading, table, actions);
}

function button(text, id, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = id;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

stream.start();
traces.fromAddress();

/** How much of an edge's traffic was carried over mutual TLS. */
function mtlsText(edge) {
  if (edge.total_requests === 0) return "no calls yet";
  if (edge.total_mtls === edge.total_requests) return "\u{1F512} every call";
  if (edge.total_mtls === 0) return "none (plaintext or unmeshed)";
  return `${edge.total_mtls} of ${edge.total_requests} calls`;
}
