// The websocket /api/v1/stream: a snapshot, the latest alarms and the
// incidents, then versioned deltas (with the alarms raised and the
// incidents changed since the last).
// Keeps a local copy of the graph and reconnects with backoff.

// Alarms kept in the browser.
const MAX_ANOMALIES = 1000;

export class GraphStream {
  constructor(url, { onChange, onStatus }) {
    this.url = url;
    this.onChange = onChange;
    this.onStatus = onStatus;
    this.version = 0;
    this.at = 0;
    this.nodes = new Map();
    this.edges = new Map();
    // The detectors' latest alarms, oldest first, and the incidents by id.
    this.anomalies = [];
    this.incidents = new Map();
    this.retryMs = 500;
  }

  start() {
    this.onStatus("connecting");
    const socket = new WebSocket(this.url);
    socket.onopen = () => {
      this.retryMs = 500;
      this.onStatus("live");
    };
    socket.onmessage = (event) => this.receive(socket, JSON.parse(event.data));
    socket.onclose = () => {
      this.onStatus("reconnecting");
      setTimeout(() => this.start(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    };
  }

  receive(socket, message) {
    if (message.type === "detections") {
      this.anomalies = message.anomalies;
      this.incidents = new Map(message.incidents.map((i) => [i.id, i]));
      this.onChange(this);
      return;
    }
    if (message.type === "snapshot") {
      this.nodes = new Map(message.nodes.map((n) => [n.id, n]));
      this.edges = new Map(message.edges.map((e) => [e.id, e]));
    } else if (message.type === "delta") {
      if (message.from_version !== this.version) {
        // A gap: the server sends a snapshot on reconnect.
        socket.close();
        return;
      }
      for (const id of message.remove_nodes) this.nodes.delete(id);
      for (const id of message.remove_edges) this.edges.delete(id);
      for (const n of message.upsert_nodes) this.nodes.set(n.id, n);
      for (const e of message.upsert_edges) this.edges.set(e.id, e);
      if (message.anomalies) this.anomalies = this.anomalies.concat(message.anomalies).slice(-MAX_ANOMALIES);
      for (const i of message.incidents ?? []) this.incidents.set(i.id, i);
    } else {
      return;
    }
    this.version = message.type === "snapshot" ? message.version : message.to_version;
    this.at = message.at_unix_nanos;
    this.onChange(this);
  }
}
