// Draws one trace (GET /api/v1/traces/{id}) as a waterfall: a row per
// span in call-tree order, a bar per span on the trace's time axis, the
// critical path as dark stretches inside the bars. A row opens the
// span's details below.

import { millis, time } from "./format.js";

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#86bcb6", "#bab0ac"];

function colorOf(service, services) {
  return PALETTE[services.indexOf(service) % PALETTE.length];
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Spans in call-tree order (children by start time), with their depth. */
export function treeOrder(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.parent_span_id;
    if (parent && ids.has(parent) && parent !== span.span_id) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(span);
    } else {
      roots.push(span);
    }
  }
  const ordered = [];
  const visited = new Set();
  const stack = roots.slice().reverse().map((span) => [span, 0]);
  while (stack.length > 0) {
    const [span, depth] = stack.pop();
    if (visited.has(span.span_id)) continue;
    visited.add(span.span_id);
    ordered.push({ span, depth });
    const kids = children.get(span.span_id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  // Spans caught in a parent cycle are shown last, unindented.
  for (const span of spans) if (!visited.has(span.span_id)) ordered.push({ span, depth: 0 });
  return ordered;
}

function spanDetails(span) {
  const box = el("div", "span-details");
  box.append(el("h3", null, `${span.service} · ${span.name}`));
  const table = el("table");
  const row = (label, value) => {
    if (value === null || value === undefined || value === "") return;
    const tr = el("tr");
    tr.append(el("th", null, label), el("td", null, String(value)));
    table.append(tr);
  };
  row("span", span.span_id);
  row("parent", span.parent_span_id);
  row("kind", span.kind);
  row("start", time(span.start_unix_nanos));
  row("duration", millis(span.duration_ns / 1e6));
  row("on critical path", millis(span.critical_ns / 1e6));
  row("status", span.status_message ? `${span.status_code}: ${span.status_message}` : span.status_code);
  row("http status", span.http_status);
  row("grpc status", span.grpc_status);
  row("error type", span.error_type);
  row("peer", span.peer);
  row("instance", span.instance);
  row("version", span.version);
  row("region", span.region);
  for (const [key, value] of Object.entries(span.attributes ?? {})) row(key, value);
  box.append(table);
  return box;
}

/** Replaces `container`'s content with the waterfall of `trace`. */
export function renderWaterfall(container, trace) {
  const start = trace.start_unix_nanos;
  const total = Math.max(1, trace.duration_ns);
  const pct = (t) => `${(((t - start) / total) * 100).toFixed(3)}%`;
  const width = (a, b) => `${Math.max(0.15, ((b - a) / total) * 100).toFixed(3)}%`;
  const onPath = trace.spans.filter((s) => s.critical_ns > 0).length;

  const header = el("div", "trace-header");
  header.append(
    el("b", "trace-id", trace.trace_id),
    el("span", null, `${millis(trace.duration_ns / 1e6)} · ${trace.span_count} spans · ${trace.error_count} errors · ${trace.services.length} services`),
    el("span", "critical-legend", `critical path: ${onPath} spans`),
    el("span", "muted", time(trace.start_unix_nanos)),
  );
  if (trace.truncated) header.append(el("span", "warning", "too many spans: the rest were left out"));

  const axis = el("div", "wf-row wf-axis");
  const ticks = el("div", "wf-bars");
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = el("span", "wf-tick", millis((total * f) / 1e6));
    tick.style.left = `${f * 100}%`;
    ticks.append(tick);
  }
  axis.append(el("div", "wf-label"), ticks);

  const rows = el("div", "wf-rows");
  const details = el("div", "wf-details");
  const segments = new Map();
  for (const segment of trace.critical_path) {
    if (!segments.has(segment.span_id)) segments.set(segment.span_id, []);
    segments.get(segment.span_id).push(segment);
  }
  for (const { span, depth } of treeOrder(trace.spans)) {
    const row = el("div", "wf-row wf-span");
    row.dataset.spanId = span.span_id;
    if (span.critical_ns > 0) row.classList.add("critical");
    if (span.error) row.classList.add("error");
    const label = el("div", "wf-label");
    label.style.paddingLeft = `${4 + depth * 12}px`;
    const dot = el("i", "wf-dot");
    dot.style.background = colorOf(span.service, trace.services);
    label.append(dot, el("b", null, span.service), el("span", null, ` ${span.name}`));
    label.title = `${span.service} ${span.name} (${span.kind})`;
    const bars = el("div", "wf-bars");
    const bar = el("div", "wf-bar");
    bar.style.left = pct(span.start_unix_nanos);
    bar.style.width = width(span.start_unix_nanos, span.end_unix_nanos);
    bar.style.background = colorOf(span.service, trace.services);
    bars.append(bar);
    for (const segment of segments.get(span.span_id) ?? []) {
      const stretch = el("div", "wf-critical");
      stretch.style.left = pct(segment.start_unix_nanos);
      stretch.style.width = width(segment.start_unix_nanos, segment.end_unix_nanos);
      bars.append(stretch);
    }
    const duration = el("span", "wf-duration", millis(span.duration_ns / 1e6));
    duration.style.left = pct(span.end_unix_nanos);
    // Near the right edge the label goes inside the bar's end.
    if ((span.end_unix_nanos - start) / total > 0.85) duration.classList.add("inside");
    bars.append(duration);
    row.append(label, bars);
    row.addEventListener("click", () => {
      rows.querySelector(".selected")?.classList.remove("selected");
      row.classList.add("selected");
      details.replaceChildren(spanDetails(span));
    });
    rows.append(row);
  }
  container.replaceChildren(header, axis, rows, details);
}
