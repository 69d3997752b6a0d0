/**
 * Message search: `search {q, room?, conv?, from?, before?, limit?, order?}` answered `search {q,
 * results, next?, partial?}`. This module decides where a person may look (the rooms they are in, and
 * their direct conversations; one named room if they may join it, by the same check as `join`) and
 * how often; the query language is lib/search_text.ts's, the index the engine's. An engine without
 * one (Redis), or a server run with `--search off`, answers `unsupported`.
 * @module
 */
import type { ChatMessage } from "../domain.ts";
import type { SearchRequest } from "../engine.ts";
import { roomAllowedByClaim } from "../identity.ts";
import { type Bucket, fullBucket, takeToken } from "../limits.ts";
import { forbidden } from "../moderation.ts";
import { normalizeRoom, ProtocolError, type SearchFrame } from "../protocol.ts";
import { fold, matchRanges, parseQuery, QueryError, type SearchQuery } from "../search_text.ts";
import {
  encode,
  type SearchResult,
  type ServerMessage,
  wireConvMessage,
  wireMessage,
} from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import { accessOf, type ChatContext } from "./context.ts";
import { engineError } from "./errors.ts";
import { mustBeInConversation } from "./read_state.ts";

/**
 * Direct conversations a search without `room` or `conv` looks in: the person's most recent ones. A
 * person with more finds older ones by naming the conversation (`conv`).
 */
export const SEARCH_CONVERSATIONS = 500;

/** The answer to a store without a text index. */
export const SEARCH_UNSUPPORTED = new ProtocolError(
  "unsupported",
  "Search is not available on this server: its Redis store keeps no text index " +
    "(a server with the embedded SQLite or memory store has one)",
);

/** The answer of a server run with `--search off`. */
export const SEARCH_OFF = new ProtocolError(
  "unsupported",
  "Search is not available on this server: it runs with --search off and keeps no text index",
);

/** Whether this server answers searches, and the error that says why not. */
export function searchRefusal(ctx: Pick<ChatContext, "engine" | "cfg">): ProtocolError | undefined {
  if (!ctx.engine.search) return SEARCH_UNSUPPORTED;
  if (ctx.cfg.search === "off") return SEARCH_OFF;
  return undefined;
}

/** The `search` answer. */
export type SearchAnswer = Extract<ServerMessage, { type: "search" }>;

/** Where and what to search, checked: the request for the engine, and the query for highlighting. */
export interface CheckedSearch {
  query: SearchQuery;
  order: "newest" | "best";
  cursor?: string;
  limit: number;
}

/**
 * Parses and checks a search's query and paging against the settings (the part the socket and the
 * server API share).
 * @throws {ProtocolError} `bad_query` for a query that cannot run, `bad_message` for a cursor of the
 * other order.
 */
export function checkSearch(
  msg: Omit<SearchFrame, "type">,
  limits: { maxQueryChars: number; page: number },
): CheckedSearch {
  let query: SearchQuery;
  try {
    query = parseQuery(msg.q, limits.maxQueryChars);
  } catch (e) {
    if (e instanceof QueryError) throw new ProtocolError("bad_query", e.message);
    throw e;
  }
  if (msg.from !== undefined) query.from = fold(msg.from);
  const order = msg.order ?? "newest";
  if (msg.before !== undefined && msg.before.startsWith("r") !== (order === "best")) {
    throw new ProtocolError("bad_message", `"before" is the "next" of a search in the same order`);
  }
  const out: CheckedSearch = { query, order, limit: Math.min(msg.limit ?? limits.page, limits.page) };
  if (msg.before !== undefined) out.cursor = msg.before;
  return out;
}

/** A page of found messages as `search` results: each with the ranges of its text that matched. */
export function searchResults(messages: readonly ChatMessage[], query: SearchQuery): SearchResult[] {
  return messages.map((m) => {
    const wire = m.room.startsWith("@") ? wireConvMessage(m) : wireMessage(m);
    return { ...wire, matches: matchRanges(m.text, query) };
  });
}

/** The search feature. */
export class Search {
  readonly #ctx: ChatContext;
  /** Each person's search allowance; a full one is dropped at the next sweep. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /** `search`: answered `search` or an error frame (a refused search names no room it was not given). */
  search(conn: Conn, msg: SearchFrame): void {
    const { cfg, conns, log } = this.#ctx;
    const refused = searchRefusal(this.#ctx);
    if (refused) throw refused;
    const checked = checkSearch(msg, { maxQueryChars: cfg.searchMaxQueryChars, page: cfg.searchPage });
    this.#take(conn.key);
    const id = conn.peer.id;
    const about = msg.room !== undefined
      ? { room: msg.room }
      : msg.conv !== undefined
      ? { conv: msg.conv }
      : {};
    this.#scope(conn, msg, checked.query)
      .then((rooms) => this.#run(msg.q, checked, rooms))
      .then((answer) => void (conns.alive(conn) && conn.peer.send(encode(answer))))
      .catch((e) => {
        if (!conns.alive(conn)) return;
        if (e instanceof ProtocolError) return conns.refuse(id, e, about);
        log.error("search failed", { error: (e as Error).message });
        conns.answer(conn.peer, engineError("search", e), about);
      });
  }

  /**
   * A search for the server API: in every room and conversation, or the one `room`, `in:` or `conv`
   * names (the host application may read them all).
   * @throws {ProtocolError} `unsupported`, `bad_query`, `bad_message`, `store_failed`, `unavailable`.
   */
  async find(msg: Omit<SearchFrame, "type">): Promise<SearchAnswer> {
    const { cfg } = this.#ctx;
    const refused = searchRefusal(this.#ctx);
    if (refused) throw refused;
    const checked = checkSearch(msg, { maxQueryChars: cfg.searchMaxQueryChars, page: cfg.searchPage });
    const named = checked.query.in === undefined ? undefined : normalizeRoom(checked.query.in);
    if (named !== undefined && msg.room !== undefined && named !== msg.room) {
      throw new ProtocolError("bad_query", `"in:${checked.query.in}" names another room than "${msg.room}"`);
    }
    const one = msg.conv ?? msg.room ?? named;
    try {
      return await this.#run(msg.q, checked, one === undefined ? undefined : [one]);
    } catch (e) {
      throw engineError("search", e);
    }
  }

  /** Runs a checked search in `rooms` (every one when undefined) within the time limit. */
  async #run(q: string, checked: CheckedSearch, rooms: string[] | undefined): Promise<SearchAnswer> {
    const { engine, cfg, metrics } = this.#ctx;
    const request: SearchRequest = {
      ...checked,
      bestWindow: cfg.searchBestWindow,
      deadline: performance.now() + cfg.searchTimeoutMs,
    };
    if (rooms !== undefined) request.rooms = rooms;
    const page = await engine.search!(request);
    metrics.searches++;
    if (page.partial) metrics.searchesPartial++;
    const answer: SearchAnswer = { type: "search", q, results: searchResults(page.messages, checked.query) };
    if (page.next !== undefined) answer.next = page.next;
    if (page.partial) answer.partial = true;
    return answer;
  }

  /**
   * The rooms and conversations `msg` may look in: the one it names (`room`, `in:`, `conv`) if the
   * person may read it, else the rooms this connection is in and the person's recent conversations.
   */
  async #scope(conn: Conn, msg: SearchFrame, query: SearchQuery): Promise<string[]> {
    const { hub, engine, moderation, now } = this.#ctx;
    if (msg.conv !== undefined) {
      if (query.in !== undefined) {
        throw new ProtocolError("bad_query", `"in:" names a room: a search in a conversation has none`);
      }
      await mustBeInConversation(this.#ctx, conn, msg.conv);
      return [msg.conv];
    }
    let room = msg.room;
    if (query.in !== undefined) {
      const named = normalizeRoom(query.in);
      if (room !== undefined && named !== room) {
        throw new ProtocolError("bad_query", `"in:${query.in}" names another room than "${room}"`);
      }
      room = named;
    }
    if (room !== undefined) {
      if (hub.isMember(conn.peer.id, room)) return [room];
      if (!roomAllowedByClaim(conn.identity!, room)) throw forbidden(room);
      moderation.check(conn.identity!, room, await accessOf(this.#ctx, conn, room), now());
      return [room];
    }
    const convs = await engine.conversations(conn.key, Number.MAX_SAFE_INTEGER, SEARCH_CONVERSATIONS);
    return [...hub.roomsOf(conn.peer.id), ...convs.map((c) => c.conv)];
  }

  /** Takes one search from `key`'s allowance. @throws {ProtocolError} `rate_limited` when it is spent. */
  #take(key: string): void {
    const perMinute = this.#ctx.cfg.searchesPerMinute;
    const cap = Math.max(1, Math.ceil(perMinute / 4));
    const t = performance.now();
    if (this.#buckets.size > 1024) {
      for (const [k, b] of this.#buckets) {
        if (b.tokens + (t - b.at) * perMinute / 60_000 >= cap) this.#buckets.delete(k);
      }
    }
    let b = this.#buckets.get(key);
    if (!b) this.#buckets.set(key, b = fullBucket(cap, t));
    if (!takeToken(b, t, perMinute / 60, cap)) {
      throw new ProtocolError(
        "rate_limited",
        `Searches are limited to ${perMinute} a minute; wait a few seconds and search again`,
      );
    }
  }
}
