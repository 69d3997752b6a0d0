/**
 * Counters for `GET /metrics` in the Prometheus text format. Labels are bounded: error codes come
 * from a fixed list, nothing per room or per user.
 * @module
 */
import type { ErrorCode } from "./protocol.ts";

/** Gauges read at scrape time. */
export interface Gauges {
  /** Connections in the chat (in rooms, holding names). */
  connections: number;
  /**
   * Accepted WebSockets not yet closed by Deno (connections plus those the server is closing), and open
   * fallback (SSE) sessions.
   */
  sockets: number;
  rooms: number;
  people: number;
  pendingMessages: number;
  /** Whether the last durable write succeeded. */
  storeHealthy: boolean;
  /** From `Deno.memoryUsage()`: resident set and V8 heap in use, bytes. */
  memory: { rss: number; heapUsed: number };
}

/** The server's counters. Plain fields so the hot path is an increment. */
export class Metrics {
  connectionsOpened = 0;
  connectionsRefused = 0;
  messagesIn = 0;
  messagesStored = 0;
  framesOut = 0;
  slowConsumerCloses = 0;
  storeBatches = 0;
  storeFailures = 0;
  listenerRestarts = 0;
  searches = 0;
  /** Searches cut off at `--search-timeout` (answered `partial`). */
  searchesPartial = 0;
  /** Messages of the history from before the search index still to index (0 once done). */
  searchIndexBacklog = 0;
  readonly errors = new Map<ErrorCode, number>();

  /** Counts one error frame. */
  error(code: ErrorCode): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** The exposition text. */
  render(g: Gauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, rows: [string, number][]) => {
      lines.push(`# HELP chat_${name} ${help}`, `# TYPE chat_${name} ${type}`);
      for (const [labels, v] of rows) lines.push(`chat_${name}${labels} ${v}`);
    };
    metric("connections", "gauge", "Connections in the chat (WebSockets and fallback sessions).", [[
      "",
      g.connections,
    ]]);
    metric(
      "sockets",
      "gauge",
      "WebSockets still open, with those being closed, and fallback sessions (they count against the connection limits).",
      [["", g.sockets]],
    );
    metric("rooms", "gauge", "Rooms with members.", [["", g.rooms]]);
    metric("people", "gauge", "People online or holding a name.", [["", g.people]]);
    metric("pending_messages", "gauge", "Messages waiting for their durable write.", [[
      "",
      g.pendingMessages,
    ]]);
    metric("store_healthy", "gauge", "1 if the last durable write succeeded, 0 while writes fail.", [[
      "",
      g.storeHealthy ? 1 : 0,
    ]]);
    metric("resident_memory_bytes", "gauge", "Resident set size of the process.", [["", g.memory.rss]]);
    metric("heap_used_bytes", "gauge", "JavaScript heap in use.", [["", g.memory.heapUsed]]);
    metric("connections_opened_total", "counter", "Connections accepted.", [["", this.connectionsOpened]]);
    metric("connections_refused_total", "counter", "Upgrades refused before the handshake.", [[
      "",
      this.connectionsRefused,
    ]]);
    metric("messages_in_total", "counter", "Client frames received.", [["", this.messagesIn]]);
    metric("messages_stored_total", "counter", "Room messages stored and delivered.", [[
      "",
      this.messagesStored,
    ]]);
    metric(
      "frames_out_total",
      "counter",
      "Frames sent: WebSocket frames and fallback events (each may hold several messages).",
      [[
        "",
        this.framesOut,
      ]],
    );
    metric("slow_consumer_closes_total", "counter", "Clients closed for not reading (4001).", [[
      "",
      this.slowConsumerCloses,
    ]]);
    metric("store_batches_total", "counter", "Durable writes (each holds a group of messages).", [[
      "",
      this.storeBatches,
    ]]);
    metric("store_failures_total", "counter", "Durable writes that failed.", [["", this.storeFailures]]);
    metric("listener_restarts_total", "counter", "Times the listener failed and was opened again.", [[
      "",
      this.listenerRestarts,
    ]]);
    metric("searches_total", "counter", "Searches answered.", [["", this.searches]]);
    metric("searches_partial_total", "counter", "Searches cut off by their time limit.", [[
      "",
      this.searchesPartial,
    ]]);
    metric("search_index_backlog", "gauge", "Older messages the search index has still to take in.", [[
      "",
      this.searchIndexBacklog,
    ]]);
    metric(
      "errors_total",
      "counter",
      "Error frames sent, by code.",
      [...this.errors].sort().map(([code, n]) => [`{code="${code}"}`, n]),
    );
    return lines.join("\n") + "\n";
  }
}
