// The traces drawer: a search over the span store (GET /api/v1/traces),
// its results, and the waterfall of the trace opened
// (GET /api/v1/traces/{id}). A trace opened is in the address
// (#trace=ID), so it can be shared and reloaded.

import { getJson } from "./api.js";
import { millis, time } from "./format.js";
import { renderWaterfall } from "./waterfall.js";

const $ = (id) => document.getElementById(id);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export class TracesDrawer {
  /**
   * `clock()` is the twin's event time (Unix ns), the end of searches;
   * `onResize()` runs when the drawer opens or closes.
   */
  constructor(clock, onResize) {
    this.clock = clock;
    this.onResize = onResize;
    this.edge = null;
    this.results = [];
    this.trace = null;
    $("traces-toggle").addEventListener("click", () => this.toggle());
    $("traces-close").addEventListener("click", () => this.close());
    $("trace-search").addEventListener("submit", (event) => {
      event.preventDefault();
      this.search();
    });
    $("trace-open").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("trace-id").value.trim();
      if (id) this.open(id);
    });
    $("edge-filter-clear").addEventListener("click", () => {
      this.setEdge(null);
      this.search();
    });
    window.addEventListener("hashchange", () => this.fromAddress());
  }

  toggle() {
    if ($("traces").hidden) this.show();
    else this.close();
  }

  show() {
    if (!$("traces").hidden) return;
    $("traces").hidden = false;
    $("traces-toggle").classList.add("active");
    this.onResize();
  }

  close() {
    $("traces").hidden = true;
    $("traces-toggle").classList.remove("active");
    this.onResize();
    if (location.hash.startsWith("#trace=")) history.replaceState(null, "", location.pathname);
  }

  /** Services offered in the search form, from the live graph. */
  setServices(names) {
    const select = $("trace-service");
    const current = select.value;
    const options = ["", ...names];
    if ([...select.options].map((o) => o.value).join() === options.join()) return;
    select.replaceChildren(
      ...options.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name || "any service";
        return option;
      }),
    );
    select.value = options.includes(current) ? current : "";
  }

  /** Limits the search to calls on one graph edge (or none). */
  setEdge(edge) {
    this.edge = edge;
    $("edge-filter").hidden = !edge;
    $("edge-filter-text").textContent = edge ? `${edge.caller} → ${edge.callee}` : "";
  }

  /** Opens the drawer on the traces of a service. */
  searchService(name) {
    this.setEdge(null);
    $("trace-service").value = name;
    this.show();
    this.search();
  }

  /** Opens the drawer on the calls of an edge; `virtual` callees have no spans. */
  searchEdge(caller, callee, virtual) {
    this.setEdge({ caller, callee, virtual });
    $("trace-service").value = "";
    this.show();
    this.search();
  }

  params() {
    const params = new URLSearchParams();
    const set = (key, value) => {
      if (value !== "" && value !== null && value !== undefined) params.set(key, value);
    };
    if (this.edge?.virtual) {
      set("service", this.edge.caller);
      set("peer", this.edge.callee);
    } else if (this.edge) {
      set("caller", this.edge.caller);
      set("service", this.edge.callee);
    } else {
      set("service", $("trace-service").value);
    }
    set("operation", $("trace-operation").value.trim());
    set("min_duration_ms", $("trace-min-ms").value);
    set("status", $("trace-status").value);
    set("order", $("trace-order").value);
    const clock = this.clock();
    if (clock > 0) {
      const to = clock / 1e9 + 60;
      params.set("to", to.toFixed(3));
      params.set("from", (to - Number($("trace-range").value)).toFixed(3));
    }
    params.set("limit", "50");
    return params;
  }

  async search() {
    const status = $("trace-results-status");
    status.textContent = "searching…";
    try {
      const answer = await getJson(`/api/v1/traces?${this.params()}`);
      this.results = answer.traces;
      status.textContent = `${answer.traces.length} traces, ${time(answer.from_unix_nanos)} – ${time(answer.to_unix_nanos)}`;
      this.renderResults();
    } catch (error) {
      this.results = [];
      this.renderResults();
      status.textContent = `search failed: ${error.message}`;
    }
  }

  renderResults() {
    const body = $("trace-results").tBodies[0];
    body.replaceChildren(
      ...this.results.map((t) => {
        const tr = document.createElement("tr");
        tr.dataset.traceId = t.trace_id;
        if (t.trace_id === this.trace?.trace_id) tr.className = "selected";
        tr.append(
          cell(time(t.start_unix_nanos).slice(11, 19)),
          cell(`${t.root_service}: ${t.root_name}`),
          cell(millis(t.duration_ns / 1e6)),
          cell(millis(t.matched_duration_ns / 1e6)),
          cell(String(t.span_count)),
          cell(String(t.error_count), t.error_count > 0 ? "errors" : ""),
        );
        tr.addEventListener("click", () => this.open(t.trace_id));
        return tr;
      }),
    );
  }

  /** Loads trace `id` into the waterfall. */
  async open(id) {
    this.show();
    const view = $("waterfall");
    view.replaceChildren(document.createTextNode(`loading trace ${id}…`));
    if (location.hash !== `#trace=${id}`) history.replaceState(null, "", `#trace=${id}`);
    try {
      this.trace = await getJson(`/api/v1/traces/${encodeURIComponent(id)}`);
      renderWaterfall(view, this.trace);
      this.renderResults();
    } catch (error) {
      this.trace = null;
      const message = document.createElement("p");
      message.className = "warning";
      message.textContent = error.message;
      view.replaceChildren(message);
    }
  }

  /** Opens the trace the address names, if any. */
  fromAddress() {
    const match = location.hash.match(/^#trace=([0-9a-fA-F]+)$/);
    if (match && match[1] !== this.trace?.trace_id) this.open(match[1]);
  }
}
