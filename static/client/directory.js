/**
 * The room directory: asks the server for a page of the rooms anyone may find (`rooms {q?, after?,
 * limit?}`, docs/protocol.md "Room directory") and hands back its answer. Answers carry the `q` and
 * `after` they answer, so several requests may be out at once (a search box sends one per pause in
 * typing) and each gets its own; so do the server's refusals (`error` with the request's `q`, `after`).
 * @module
 */
import { ROOM_NAME_RE, ROOM_PREFIX_RE } from "../shared/rooms.js";

/** How long an answer may take before its request fails (ms): a frame lost with its connection, say. */
const ANSWER_TIMEOUT_MS = 10_000;

/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").DirectoryPage} DirectoryPage */

/**
 * @typedef {object} Waiting
 * @property {(page: DirectoryPage) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

/** The requests of the room directory on one client. */
export class RoomDirectory {
  /** @type {Context} */
  #ctx;
  /** @type {Map<string, Waiting[]>} by `q` and `after`, oldest first */
  #waiting = new Map();

  /** @param {Context} ctx */
  constructor(ctx) {
    this.#ctx = ctx;
  }

  /**
   * Asks for one page: rooms whose name starts with `q` (any case), after the room `after` (the `next`
   * of the page before), at most `limit` (the server caps it).
   * @param {{ q?: string, after?: string, limit?: number }} [query]
   * @returns {Promise<DirectoryPage>} rejects with the server's sentence and its `code` when it refuses
   */
  find(query = {}) {
    const q = (query.q ?? "").trim().replace(/^#/, "").toLowerCase();
    const after = query.after?.toLowerCase();
    if (!ROOM_PREFIX_RE.test(q)) {
      return Promise.reject(
        new RangeError(`Room names have only letters, digits, "_", "-" and "." (at most 64)`),
      );
    }
    if (after !== undefined && !ROOM_NAME_RE.test(after)) {
      return Promise.reject(new RangeError(`"after" must be the next of an earlier page`));
    }
    if (query.limit !== undefined && !(Number.isSafeInteger(query.limit) && query.limit >= 1)) {
      return Promise.reject(new RangeError(`"limit" must be a whole number of 1 or more`));
    }
    if (!this.#ctx.client.live) return Promise.reject(new RangeError("Not connected: try again when live"));
    if (!this.#ctx.takeToken()) {
      return Promise.reject(new RangeError("Too many requests: try again in a moment"));
    }
    /** @type {Record<string, unknown>} */
    const frame = { type: "rooms", q };
    if (after !== undefined) frame.after = after;
    if (query.limit !== undefined) frame.limit = query.limit;
    const key = keyOf(q, after);
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(key) ?? [];
      this.#waiting.set(key, waiting);
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#drop(key, w);
          reject(new Error("The server did not answer the room directory in time"));
        }, ANSWER_TIMEOUT_MS),
      };
      waiting.push(w);
      if (!this.#ctx.send(frame)) {
        this.#drop(key, w);
        clearTimeout(w.timer);
        reject(new RangeError("Not connected: try again when live"));
      }
    });
  }

  /**
   * A `rooms` line: the answer to the oldest request it matches.
   * @param {Record<string, any>} m
   */
  answer(m) {
    if (typeof m.q !== "string" || !Array.isArray(m.items)) return;
    const key = keyOf(m.q, typeof m.after === "string" ? m.after : undefined);
    const w = this.#waiting.get(key)?.[0];
    if (!w) return;
    this.#drop(key, w);
    clearTimeout(w.timer);
    /** @type {DirectoryPage} */
    const page = {
      q: m.q,
      items: m.items.filter(isItem).map((r) => ({ room: r.room, topic: r.topic, members: r.members })),
    };
    if (typeof m.next === "string") page.next = m.next;
    w.resolve(page);
  }

  /**
   * An `error` naming a `q`: the server refused the oldest request it matches (its `code` and sentence).
   * @param {Record<string, any>} m
   */
  refused(m) {
    if (typeof m.q !== "string") return;
    const key = keyOf(m.q, typeof m.after === "string" ? m.after : undefined);
    const w = this.#waiting.get(key)?.[0];
    if (!w) return;
    this.#drop(key, w);
    clearTimeout(w.timer);
    w.reject(Object.assign(new Error(String(m.message ?? m.code)), { code: m.code }));
  }

  /** The connection closed: nothing out will be answered. */
  closed() {
    const all = [...this.#waiting.values()].flat();
    this.#waiting.clear();
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(new Error("The connection closed before the room directory answered"));
    }
  }

  /**
   * @param {string} key
   * @param {Waiting} w
   */
  #drop(key, w) {
    const list = this.#waiting.get(key)?.filter((x) => x !== w) ?? [];
    if (list.length > 0) this.#waiting.set(key, list);
    else this.#waiting.delete(key);
  }
}

/**
 * @param {string} q
 * @param {string | undefined} after
 */
function keyOf(q, after) {
  return `${q}\n${after ?? ""}`;
}

/**
 * @param {unknown} r
 * @returns {r is { room: string, topic: string, members: number }}
 */
function isItem(r) {
  const o = /** @type {Record<string, unknown>} */ (r);
  return typeof o?.room === "string" && typeof o.topic === "string" && typeof o.members === "number";
}
