// Ranked root causes of an incident (GET /api/v1/incidents/{id}/rca): each
// with its score, the evidence behind it, the detectors' alarms on it, the
// path the effect took up the graph, and exemplar traces that open in the
// waterfall.

import { getJson } from "./api.js";

const ms = (x) => `${x.toFixed(2)} ms`;

/** One sentence per piece of evidence, as the API's `describe` says it. */
export function describeEvidence(e) {
  const share = ` (${Math.round(e.share * 100)} % of it)`;
  switch (e.kind) {
    case "error_origin":
      return `${e.errors} errors start in ${e.operation}${e.instance ? ` on ${e.instance}` : ""}, ${e.expected.toFixed(1)} expected${share}`;
    case "self_time":
      return `own time of ${e.operation}${e.instance ? ` on ${e.instance}` : ""} ${ms(e.normal_ms)} → ${ms(e.abnormal_ms)}${share}`;
    case "network_delay":
      return `calls ${e.caller} → ${e.callee} take ${ms(e.normal_ms)} → ${ms(e.abnormal_ms)} outside the callee's spans${share}`;
    case "missing_call":
      return `${e.operation} calls ${e.to} ${e.abnormal_per_request.toFixed(2)}× per request, ${e.normal_per_request.toFixed(2)}× before${share}`;
    case "resilience":
      return `${e.ejections} endpoint ejections, ${e.breaker_open} calls refused by an open breaker, ${e.expected.toFixed(1)} expected${share}`;
    case "retries":
      return `${e.retries} retries of calls to it, ${e.expected.toFixed(1)} expected${share}`;
    case "metric":
      return `${e.metric}${e.instance ? ` on ${e.instance}` : ""} ${e.normal.toPrecision(3)} → ${e.abnormal.toPrecision(3)} (z ${e.z.toFixed(1)})${share}`;
    default:
      return e.kind;
  }
}

/** Fetches the ranking of incident `id`; rejects with the API's reason. */
export function loadCauses(id) {
  return getJson(`/api/v1/incidents/${id}/rca`);
}

/**
 * The ranking as a list; `onPick(cause)` when a cause is clicked (the
 * caller highlights its path). `pickedService` is marked.
 */
export function renderCauses(result, pickedService, onPick) {
  const section = document.createElement("div");
  section.id = "causes";
  const heading = document.createElement("h3");
  heading.textContent = "Likely causes";
  section.append(heading);
  for (const note of result.notes ?? []) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = note;
    section.append(p);
  }
  const list = document.createElement("ol");
  for (const cause of result.causes.slice(0, 5)) {
    const item = document.createElement("li");
    item.className = `cause${cause.service === pickedService ? " picked" : ""}`;
    item.dataset.service = cause.service;
    const title = document.createElement("div");
    title.className = "cause-title";
    const where = [cause.instance, cause.operation].filter(Boolean).join(", ");
    title.textContent = `${cause.service}${where ? ` (${where})` : ""} · score ${cause.score.toFixed(2)}`;
    const evidence = document.createElement("ul");
    for (const e of cause.evidence.slice(0, 4)) {
      const li = document.createElement("li");
      li.textContent = describeEvidence(e);
      evidence.append(li);
    }
    const path = document.createElement("div");
    path.className = "cause-path";
    path.textContent = `path: ${cause.path.join(" → ")}`;
    const alarms = document.createElement("div");
    alarms.className = "cause-alarms";
    const counts = new Map();
    for (const a of cause.alarms ?? []) {
      const key = `${a.signal.replaceAll("_", " ")} ${a.deviation}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    alarms.textContent = counts.size
      ? `alarms: ${[...counts].map(([k, n]) => `${k} ×${n}`).join(", ")}`
      : "alarms: none on its node";
    const traces = document.createElement("div");
    traces.className = "cause-traces";
    traces.append("traces: ");
    for (const id of cause.exemplars) {
      const a = document.createElement("a");
      a.href = `#trace=${id}`;
      a.textContent = id.slice(0, 8);
      a.title = id;
      a.addEventListener("click", (event) => event.stopPropagation());
      traces.append(a, " ");
    }
    if (!cause.exemplars.length) traces.append("none");
    item.append(title, evidence, alarms, path, traces);
    item.addEventListener("click", () => onPick(cause));
    list.append(item);
  }
  if (!result.causes.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "No cause stands out.";
    section.append(p);
  }
  section.append(list);
  return section;
}
