// Incidents: alarms grouped by time and graph neighbourhood. A list in the
// side panel (open first, then newest), and the details of one: its
// lifecycle, its nodes and the signals that alarmed.

import { describe } from "./anomalies.js";
import { time } from "./format.js";

const SHOWN = 30;

function clock(unixNanos) {
  return time(unixNanos).slice(11, 19);
}

function nodeNames(incident, names) {
  const all = incident.nodes.map(names);
  return all.length > 3 ? `${all.slice(0, 3).join(", ")} +${all.length - 3}` : all.join(", ");
}

/** Fills the incidents list; `onPick(id)` when a row is clicked. */
export function renderIncidents(list, incidents, names, selectedId, onPick) {
  const rows = [...incidents.values()]
    .sort((a, b) => (a.state === b.state ? b.id - a.id : a.state === "open" ? -1 : 1))
    .slice(0, SHOWN);
  list.tBodies[0].replaceChildren(
    ...rows.map((incident) => {
      const tr = document.createElement("tr");
      tr.dataset.incident = String(incident.id);
      tr.className = `incident-${incident.state}${incident.id === selectedId ? " picked" : ""}`;
      const cells = [
        `#${incident.id}`,
        incident.state,
        clock(incident.opened_unix_nanos),
        nodeNames(incident, names),
        `${incident.anomalies} alarms`,
      ];
      tr.append(
        ...cells.map((text) => {
          const td = document.createElement("td");
          td.textContent = text;
          return td;
        }),
      );
      tr.addEventListener("click", () => onPick(incident.id));
      return tr;
    }),
  );
  const open = [...incidents.values()].filter((i) => i.state === "open").length;
  document.getElementById("incident-count").textContent = incidents.size ? `(${open} open, ${incidents.size} kept)` : "";
  document.getElementById("incidents-empty").hidden = incidents.size > 0;
}

/** Rows [label, text, subjectId?] describing one incident. */
export function incidentRows(incident, names) {
  const rows = [
    ["state", incident.state],
    ["opened", time(incident.opened_unix_nanos)],
    ["latest alarm", time(incident.updated_unix_nanos)],
  ];
  if (incident.resolved_unix_nanos) rows.push(["resolved", time(incident.resolved_unix_nanos)]);
  rows.push(["nodes", incident.nodes.map(names).join(", ")], ["alarms", String(incident.anomalies)]);
  const signals = [...incident.signals].sort((a, b) => a.first_unix_nanos - b.first_unix_nanos || b.alarms - a.alarms);
  for (const s of signals) {
    const where = s.subject === "node" ? names(s.id) : s.id.split("->").map(names).join(" → ");
    const text = describe({ ...s, value: s.worst_value });
    rows.push([where, `${text}; ${s.alarms}× from ${clock(s.first_unix_nanos)}`, s.id]);
  }
  return rows;
}
