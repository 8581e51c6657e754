// Time travel: a slider over the twin's kept snapshots
// (GET /api/v1/graph/history) shows the graph as it was
// (GET /api/v1/graph?at=T); "replay" steps it forward to the present;
// "diff" compares the slider's time with now (GET /api/v1/graph/diff)
// and colours what appeared, vanished, degraded or improved.

import { getJson } from "./api.js";
import { millis, percent, rate, time } from "./format.js";

const $ = (id) => document.getElementById(id);
const REPLAY_STEPS = 120;
const REPLAY_STEP_MS = 500;
const RANGE_REFRESH_MS = 10000;

// Milliseconds rounded up: a snapshot's own time (which a float cannot
// hold to the nanosecond) still finds that snapshot, not the one before.
const seconds = (nanos) => (Math.ceil(nanos / 1e6) / 1e3).toFixed(3);

function quantiles(p50, p90, p99) {
  return p99 === null || p99 === undefined ? null : { p50, p90, p99 };
}

/** A kept node in the live graph's shape (only its last minute is kept). */
function nodeView(n, at) {
  const window = {
    requests: n.requests_1m,
    errors: n.errors_1m,
    rate_per_second: n.rate_per_second,
    error_ratio: n.error_ratio,
    latency_ms: quantiles(n.p50_ms, n.p90_ms, n.p99_ms),
  };
  const list = (text) => (text ? text.split(",") : []);
  return {
    id: n.node,
    name: n.name,
    namespace: n.namespace,
    kind: n.kind,
    health: n.health,
    versions: list(n.versions),
    regions: list(n.regions),
    instances: n.instances,
    total_requests: n.total_requests,
    total_errors: n.total_errors,
    last_seen_unix_nanos: at,
    windows: { last_1m: window, last_5m: window },
  };
}

function edgeView(e) {
  const window = {
    requests: e.requests_1m,
    errors: e.errors_1m,
    rate_per_second: e.rate_per_second,
    error_ratio: e.error_ratio,
    client_latency_ms: quantiles(e.client_p50_ms, e.client_p90_ms, e.client_p99_ms),
    server_latency_ms: quantiles(e.server_p50_ms, e.server_p90_ms, e.server_p99_ms),
  };
  return {
    id: `${e.source}->${e.target}`,
    source: e.source,
    target: e.target,
    connection_type: e.connection_type,
    health: e.health,
    total_requests: e.total_requests,
    total_failed: e.total_failed,
    total_mtls: e.total_mtls,
    windows: { last_1m: window, last_5m: window },
  };
}

/** A kept snapshot as the graph the view draws. */
export function pastGraph(answer) {
  return {
    at: answer.at_unix_nanos,
    nodes: new Map(answer.nodes.map((n) => [n.node, nodeView(n, answer.at_unix_nanos)])),
    edges: new Map(answer.edges.map((e) => [`${e.source}->${e.target}`, edgeView(e)])),
  };
}

function changeText(change) {
  const value = {
    error_ratio: percent,
    p99_ms: millis,
    rate_per_second: rate,
  }[change.metric];
  const metric = { error_ratio: "errors", p99_ms: "p99", rate_per_second: "traffic" }[change.metric];
  return `${change.id}: ${metric} ${value(change.before)} → ${value(change.after)}`;
}

export class HistoryControl {
  /**
   * `show(graph, classes)` draws a past graph (with a class per element
   * id), or the live one when `graph` is null; `clock()` is the twin's
   * event time.
   */
  constructor({ show, clock }) {
    this.show = show;
    this.clock = clock;
    this.mode = "live";
    this.range = null;
    this.rangeFetched = 0;
    this.replaying = null;
    this.diff = null;
    const slider = $("time-slider");
    slider.addEventListener("pointerdown", () => this.refreshRange());
    slider.addEventListener("focus", () => this.refreshRange());
    slider.addEventListener("input", () => this.label(Number(slider.value) * 1e9));
    slider.addEventListener("change", () => this.travel(Number(slider.value) * 1e9));
    $("live").addEventListener("click", () => this.goLive());
    $("replay").addEventListener("click", () => this.replay());
    $("diff-toggle").addEventListener("click", () => this.showDiff());
    this.refreshRange();
  }

  isLive() {
    return this.mode === "live";
  }

  async refreshRange() {
    if (Date.now() - this.rangeFetched < RANGE_REFRESH_MS) return;
    this.rangeFetched = Date.now();
    try {
      this.range = await getJson("/api/v1/graph/history");
    } catch (error) {
      this.range = null;
      $("history").title = `no history: ${error.message}`;
    }
    this.layoutSlider();
  }

  layoutSlider() {
    const slider = $("time-slider");
    const first = this.range?.first_unix_nanos;
    slider.disabled = !first;
    if (!first) return;
    const end = Math.max(this.range.last_unix_nanos, this.clock());
    slider.min = seconds(first);
    slider.max = seconds(end);
    slider.step = "1";
    if (this.isLive()) slider.value = slider.max;
  }

  label(at) {
    $("time-label").textContent = time(at).slice(5);
  }

  setMode(mode, text) {
    this.mode = mode;
    document.body.dataset.mode = mode;
    $("mode-banner").hidden = mode === "live";
    $("mode-text").textContent = text ?? "";
    $("live").classList.toggle("active", mode === "live");
    $("diff-toggle").classList.toggle("active", mode === "diff");
    if (mode === "live") $("time-label").textContent = "live";
  }

  /** Shows the graph as the last snapshot at or before `at` kept it. */
  async travel(at) {
    this.stopReplay();
    return this.load(at);
  }

  async load(at) {
    this.label(at);
    try {
      const answer = await getJson(`/api/v1/graph?at=${seconds(at)}`);
      const graph = pastGraph(answer);
      this.setMode("past", `the graph at ${time(answer.at_unix_nanos)} (the last snapshot kept at or before ${time(at)})`);
      this.show(graph, new Map());
      return graph;
    } catch (error) {
      this.setMode("past", error.message);
      return null;
    }
  }

  goLive() {
    this.stopReplay();
    this.diff = null;
    this.setMode("live");
    $("changes").hidden = true;
    $("time-slider").value = $("time-slider").max;
    this.show(null);
  }

  stopReplay() {
    if (this.replaying) clearTimeout(this.replaying);
    this.replaying = null;
    $("replay").classList.remove("active");
  }

  /** Steps from the slider's time to the present, then goes live. */
  replay() {
    if (this.replaying) return this.stopReplay();
    const slider = $("time-slider");
    if (slider.disabled) return;
    const end = Number(slider.max);
    const step = Math.max(1, (end - Number(slider.min)) / REPLAY_STEPS);
    let at = Number(slider.value) >= end ? Number(slider.min) : Number(slider.value);
    $("replay").classList.add("active");
    const tick = async () => {
      slider.value = String(at);
      await this.load(at * 1e9);
      at += step;
      if (at > end || !this.replaying) {
        if (this.replaying) this.goLive();
        return;
      }
      this.replaying = setTimeout(tick, REPLAY_STEP_MS);
    };
    this.replaying = setTimeout(tick, 0);
  }

  /** The graph now against the graph at the slider's time, coloured. */
  async showDiff() {
    this.stopReplay();
    const slider = $("time-slider");
    if (slider.disabled) return;
    const from = Number(slider.value) * 1e9;
    try {
      const diff = await getJson(`/api/v1/graph/diff?from=${seconds(from)}`);
      const [before, after] = await Promise.all([
        getJson(`/api/v1/graph?at=${seconds(diff.from_snapshot_unix_nanos)}`),
        getJson(`/api/v1/graph?at=${seconds(diff.to_snapshot_unix_nanos)}`),
      ]);
      const merged = pastGraph(after);
      const old = pastGraph(before);
      for (const [id, node] of old.nodes) if (!merged.nodes.has(id)) merged.nodes.set(id, node);
      for (const [id, edge] of old.edges) if (!merged.edges.has(id)) merged.edges.set(id, edge);
      const classes = new Map(Object.entries(diff.verdicts));
      for (const id of diff.nodes_added) classes.set(id, "appeared");
      for (const id of diff.nodes_removed) classes.set(id, "vanished");
      for (const edge of diff.edges_added) classes.set(edge.id, "appeared");
      for (const edge of diff.edges_removed) classes.set(edge.id, "vanished");
      this.diff = diff;
      this.setMode(
        "diff",
        `changes from ${time(diff.from_snapshot_unix_nanos)} to ${time(diff.to_snapshot_unix_nanos)}`,
      );
      this.show(merged, classes);
      this.renderChanges(diff);
    } catch (error) {
      this.setMode("diff", error.message);
    }
  }

  renderChanges(diff) {
    const list = $("changes-list");
    const item = (text, className) => {
      const li = document.createElement("li");
      li.textContent = text;
      li.className = className;
      return li;
    };
    list.replaceChildren(
      ...diff.nodes_added.map((id) => item(`${id} appeared`, "appeared")),
      ...diff.edges_added.map((e) => item(`${e.id} appeared`, "appeared")),
      ...diff.nodes_removed.map((id) => item(`${id} vanished`, "vanished")),
      ...diff.edges_removed.map((e) => item(`${e.id} vanished`, "vanished")),
      ...diff.changes.map((c) => item(changeText(c), c.verdict)),
    );
    if (list.children.length === 0) list.append(item("nothing changed", ""));
    $("changes").hidden = false;
  }
}
