// The detectors' alarms: the latest ones as a list in the side panel
// (newest first; a row selects its node or edge), and a line per signal
// alarming now for the details panel.

import { millis, percent, rate, time } from "./format.js";

const SIGNALS = {
  latency_p50: { label: "p50 latency", format: millis },
  latency_p99: { label: "p99 latency", format: millis },
  error_rate: { label: "error rate", format: percent },
  throughput: { label: "throughput", format: rate },
};

// How many alarms the list shows.
const SHOWN = 50;

function signal(name) {
  return SIGNALS[name] ?? { label: name, format: (v) => String(v) };
}

/** "error rate 52% (expected 0.4%)", "throughput 0.00/s (expected 12/s) drop". */
export function describe(anomaly) {
  const { label, format } = signal(anomaly.signal);
  const how = anomaly.kind === "level_shift" ? "shift" : "spike";
  const way = anomaly.deviation === "above" ? "up" : "down";
  return `${label} ${format(anomaly.value)} (expected ${format(anomaly.expected)}), ${how} ${way}`;
}

/** Detail rows for the signals of a node or edge alarming now. */
export function activeRows(element) {
  return (element.anomalies ?? []).map((a) => [`⚠ ${signal(a.signal).label}`, `${describe(a)} since ${time(a.since_unix_nanos)}`]);
}

/** Fills the anomalies list; `onPick(id)` when a row is clicked. */
export function renderAnomalies(list, anomalies, names, onPick) {
  const body = list.tBodies[0];
  const rows = anomalies.slice(-SHOWN).reverse();
  body.replaceChildren(
    ...rows.map((a) => {
      const tr = document.createElement("tr");
      tr.dataset.subject = a.id;
      tr.dataset.signal = a.signal;
      const when = document.createElement("td");
      when.textContent = time(a.at_unix_nanos).slice(11, 19);
      const where = document.createElement("td");
      where.textContent = names(a);
      const what = document.createElement("td");
      what.textContent = describe(a);
      tr.append(when, where, what);
      tr.addEventListener("click", () => onPick(a.id));
      return tr;
    }),
  );
  document.getElementById("anomaly-count").textContent = anomalies.length ? `(${anomalies.length})` : "";
}
