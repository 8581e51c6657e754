// Draws the service graph with cytoscape and the dagre layout.

import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import { millis, percent, rate } from "./format.js";

cytoscape.use(dagre);

const COLORS = {
  healthy: "#2e9e5b",
  degraded: "#d9a400",
  failing: "#d64545",
  idle: "#9aa0a6",
};

const SHAPES = {
  service: "round-rectangle",
  database: "barrel",
  messaging: "diamond",
  external: "hexagon",
};

const STYLE = [
  {
    selector: "node",
    style: {
      shape: "data(shape)",
      width: 150,
      height: 46,
      "background-color": "#ffffff",
      "border-width": 3,
      "border-color": "data(color)",
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "center",
      "font-size": 11,
      "font-family": "system-ui, sans-serif",
      color: "#1f2328",
    },
  },
  {
    selector: "edge",
    style: {
      width: "data(width)",
      "line-color": "data(color)",
      "target-arrow-color": "data(color)",
      "target-arrow-shape": "triangle",
      "curve-style": "bezier",
      label: "data(label)",
      "font-size": 9,
      "font-family": "system-ui, sans-serif",
      color: "#57606a",
      "text-background-color": "#f6f8fa",
      "text-background-opacity": 0.9,
      "text-background-padding": 2,
      "text-rotation": "autorotate",
    },
  },
  // The diff view's verdicts.
  {
    selector: "node.appeared",
    style: { "border-color": "#0969da", "border-width": 5 },
  },
  {
    selector: "edge.appeared",
    style: { "line-color": "#0969da", "target-arrow-color": "#0969da", width: 5 },
  },
  {
    selector: ".vanished",
    style: { "line-style": "dashed", "border-style": "dashed", "border-color": "#9aa0a6", "line-color": "#9aa0a6", "target-arrow-color": "#9aa0a6", opacity: 0.5 },
  },
  {
    selector: ".degraded",
    style: { "underlay-color": "#d64545", "underlay-opacity": 0.35, "underlay-padding": 8 },
  },
  {
    selector: ".improved",
    style: { "underlay-color": "#2e9e5b", "underlay-opacity": 0.3, "underlay-padding": 8 },
  },
  {
    selector: ".surged",
    style: { "underlay-color": "#0969da", "underlay-opacity": 0.2, "underlay-padding": 8 },
  },
  // Signals alarming now (the detectors).
  {
    selector: "node[?anomalous]",
    style: { "underlay-color": "#ff6a00", "underlay-opacity": 0.4, "underlay-padding": 9, "underlay-shape": "round-rectangle" },
  },
  {
    selector: "edge[?anomalous]",
    style: { "underlay-color": "#ff6a00", "underlay-opacity": 0.4, "underlay-padding": 5 },
  },
  // The incident picked in the side panel.
  {
    selector: "[?incident]",
    style: { "overlay-color": "#8250df", "overlay-opacity": 0.18, "overlay-padding": 7 },
  },
  // The propagation path of the cause picked in an incident.
  {
    selector: "node[?path]",
    style: { "border-color": "#d1242f", "border-width": 3 },
  },
  {
    selector: "edge[?path]",
    style: { "line-color": "#d1242f", "target-arrow-color": "#d1242f", width: 4 },
  },
  {
    selector: ":selected",
    style: { "overlay-color": "#0969da", "overlay-opacity": 0.15, "overlay-padding": 6 },
  },
];

function nodeData(node, window) {
  const w = node.windows[window];
  const stats = w.requests > 0
    ? `${rate(w.rate_per_second)} · ${percent(w.error_ratio)} · p99 ${millis(w.latency_ms?.p99)}`
    : node.kind === "service" ? "calls only" : "idle";
  const anomalous = (node.anomalies?.length ?? 0) > 0;
  return {
    id: node.id,
    name: node.name,
    anomalous,
    label: `${anomalous ? "⚠ " : ""}${node.name}\n${stats}`,
    color: COLORS[node.health],
    shape: SHAPES[node.kind] ?? "ellipse",
  };
}

function edgeData(edge, window) {
  const w = edge.windows[window];
  const p99 = w.client_latency_ms?.p99 ?? w.server_latency_ms?.p99;
  const anomalous = (edge.anomalies?.length ?? 0) > 0;
  const stats = w.requests > 0 ? `${rate(w.rate_per_second)} · ${percent(w.error_ratio)} · ${millis(p99)}` : "";
  return {
    id: edge.id,
    source: edge.source,
    target: edge.target,
    anomalous,
    label: anomalous ? `⚠ ${stats}` : stats,
    color: COLORS[edge.health],
    width: 1.5 + Math.min(6, Math.log10(1 + w.rate_per_second) * 3),
  };
}

export class GraphView {
  constructor(container, onSelect) {
    this.cy = cytoscape({
      container,
      style: STYLE,
      wheelSensitivity: 0.3,
      minZoom: 0.2,
      maxZoom: 3,
    });
    this.cy.on("tap", "node, edge", (event) => onSelect(event.target.id()));
    this.cy.on("tap", (event) => {
      if (event.target === this.cy) onSelect(null);
    });
  }

  /** Brings the drawing in line with the stream's copy of the graph. */
  update(stream, window) {
    const cy = this.cy;
    let structureChanged = false;
    cy.batch(() => {
      for (const element of cy.elements()) {
        const id = element.id();
        const gone = element.isNode() ? !stream.nodes.has(id) : !stream.edges.has(id);
        if (gone) {
          element.remove();
          structureChanged = true;
        }
      }
      for (const node of stream.nodes.values()) {
        const existing = cy.getElementById(node.id);
        if (existing.nonempty()) existing.data(nodeData(node, window));
        else {
          cy.add({ group: "nodes", data: nodeData(node, window) });
          structureChanged = true;
        }
      }
      for (const edge of stream.edges.values()) {
        const existing = cy.getElementById(edge.id);
        if (existing.nonempty()) existing.data(edgeData(edge, window));
        else {
          cy.add({ group: "edges", data: edgeData(edge, window) });
          structureChanged = true;
        }
      }
    });
    if (structureChanged) this.layout();
  }

  /** Marks elements by id (`appeared`, `vanished`, a verdict); clears the rest. */
  setClasses(classes) {
    this.cy.batch(() => {
      for (const element of this.cy.elements()) {
        element.classes(classes.get(element.id()) ?? []);
      }
    });
  }

  /** Marks the nodes with these ids, and the edges between two of them. */
  markIncident(nodeIds) {
    const inside = new Set(nodeIds);
    this.cy.batch(() => {
      for (const node of this.cy.nodes()) node.data("incident", inside.has(node.id()));
      for (const edge of this.cy.edges()) {
        edge.data("incident", inside.has(edge.data("source")) && inside.has(edge.data("target")));
      }
    });
  }

  /** Highlights the path through the services named `names`, in order. */
  markPath(names) {
    const ids = names.map((name) => this.cy.nodes().filter((n) => n.data("name") === name).map((n) => n.id())[0]);
    const steps = new Set();
    for (let i = 1; i < ids.length; i++) if (ids[i - 1] && ids[i]) steps.add(`${ids[i - 1]}->${ids[i]}`);
    const onPath = new Set(ids.filter(Boolean));
    this.cy.batch(() => {
      for (const node of this.cy.nodes()) node.data("path", onPath.has(node.id()));
      for (const edge of this.cy.edges()) {
        edge.data("path", steps.has(`${edge.data("source")}->${edge.data("target")}`));
      }
    });
  }

  layout() {
    this.cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 110, fit: true, padding: 30 }).run();
  }

  fit() {
    this.cy.fit(undefined, 30);
  }
}
