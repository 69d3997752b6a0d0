/**
 * The rooms' history this device keeps between page loads, in IndexedDB: one record per room and
 * identity (a guest's and a signed person's apart), each a {@link RoomSnapshot}, within a budget for the
 * whole device. Past the budget the rooms written least recently go first.
 *
 * The page's settings of it are two `<meta>` tags of `index.html` ({@link settingsFrom}). Where IndexedDB
 * is missing or refused (some private windows), {@link KeptHistory.open} gives undefined and the page
 * works as before, from the server alone.
 * @module
 */
import { snapshotOf } from "../chat-client.js";

/** @typedef {import("../chat-client.js").ChatClient} ChatClient */
/** @typedef {import("../chat-client.js").RoomSnapshot} RoomSnapshot */

/** The database and its stores: whole records, and the size and age of each (read at every write). */
export const DB_NAME = "chat-offline";
const ROOMS = "rooms";
const SIZES = "sizes";

/**
 * @typedef {object} KeptSettings
 * @property {number} budgetBytes what every room's history may take together (UTF-8 bytes of its JSON)
 * @property {number} perRoom newest messages kept of a room
 */

/** @type {Readonly<KeptSettings>} */
export const KEPT_DEFAULTS = Object.freeze({ budgetBytes: 5_000_000, perRoom: 200 });

/**
 * The settings, from `<meta name="chat-history-budget" content="BYTES">` and
 * `<meta name="chat-history-per-room" content="N">` when present (0 keeps nothing); a value that is not
 * a whole number ≥ 0 is reported and the default used.
 * @param {ParentNode} doc
 * @returns {KeptSettings}
 */
export function settingsFrom(doc) {
  /** @param {string} name @param {number} fallback */
  const read = (name, fallback) => {
    const raw = doc.querySelector(`meta[name="${name}"]`)?.getAttribute("content");
    if (raw == null) return fallback;
    const n = Number(raw);
    if (raw.trim() !== "" && Number.isSafeInteger(n) && n >= 0) return n;
    console.warn(
      `chat: <meta name="${name}"> must be a whole number from 0, got "${raw}": using ${fallback}`,
    );
    return fallback;
  };
  return {
    budgetBytes: read("chat-history-budget", KEPT_DEFAULTS.budgetBytes),
    perRoom: read("chat-history-per-room", KEPT_DEFAULTS.perRoom),
  };
}

/** What this device keeps: open one with {@link KeptHistory.open}. */
export class KeptHistory {
  /**
   * @param {IDBDatabase} db
   * @param {KeptSettings} settings
   */
  constructor(db, settings) {
    this.#db = db;
    this.settings = settings;
  }

  #db;

  /**
   * Opens the database, or gives undefined when this browser has no usable IndexedDB (or it does not
   * answer within `timeoutMs`: another tab of an older page may hold it), so the page goes on without.
   * @param {KeptSettings} settings
   * @param {{ timeoutMs?: number }} [opts]
   * @returns {Promise<KeptHistory | undefined>}
   */
  static async open(settings, { timeoutMs = 2000 } = {}) {
    if (settings.budgetBytes === 0 || settings.perRoom === 0 || typeof indexedDB === "undefined") {
      return undefined;
    }
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      const db = await Promise.race([
        new Promise((resolve, reject) => {
          const req = indexedDB.open(DB_NAME, 1);
          req.onupgradeneeded = () => {
            req.result.createObjectStore(ROOMS, { keyPath: "key" });
            req.result.createObjectStore(SIZES, { keyPath: "key" });
          };
          req.onsuccess = () => {
            const db = req.result;
            // "Forget this device" in another tab deletes the database: let it.
            db.onversionchange = () => db.close();
            if (timer === undefined) db.close(); // too late: nobody will use it
            else resolve(db);
          };
          req.onerror = () => reject(req.error);
        }),
        new Promise((_, reject) =>
          timer = setTimeout(() => (timer = undefined, reject(new Error("timeout"))), timeoutMs)
        ),
      ]);
      return new KeptHistory(/** @type {IDBDatabase} */ (db), settings);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
      timer = undefined;
    }
  }

  /**
   * The snapshots kept for `prefix` (an identity's storage prefix).
   * @param {string} prefix
   * @returns {Promise<RoomSnapshot[]>}
   */
  async load(prefix) {
    try {
      const tx = this.#db.transaction(ROOMS, "readonly");
      const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
      /** @type {{ prefix: string, snapshot: RoomSnapshot }[]} */
      const rows = await done(tx.objectStore(ROOMS).getAll(range));
      return rows.filter((r) => r.prefix === prefix).map((r) => r.snapshot);
    } catch {
      return [];
    }
  }

  /**
   * Keeps `snapshot` (at most `perRoom` messages, fewer if the budget says so), then drops the rooms written
   * least recently until everything fits the budget. One transaction: tabs writing at once stay within it.
   * @param {string} prefix
   * @param {RoomSnapshot} snapshot
   * @returns {Promise<void>}
   */
  async save(prefix, snapshot) {
    const { budgetBytes } = this.settings;
    let snap = snapshot;
    let size = sizeOf(snap);
    // A room larger than the whole budget keeps its newest messages that fit.
    while (size > budgetBytes && snap.messages.length > 0) {
      snap = { ...snap, messages: snap.messages.slice(Math.ceil(snap.messages.length / 2)), complete: false };
      size = sizeOf(snap);
    }
    const key = prefix + snap.room;
    try {
      const tx = this.#db.transaction([ROOMS, SIZES], "readwrite");
      const rooms = tx.objectStore(ROOMS);
      const sizes = tx.objectStore(SIZES);
      rooms.put({ key, prefix, snapshot: snap });
      sizes.put({ key, size, at: Date.now() });
      /** @type {{ key: string, size: number, at: number }[]} */
      const all = await done(sizes.getAll());
      let total = all.reduce((n, s) => n + (s.key === key ? size : s.size), 0);
      for (const s of all.filter((s) => s.key !== key).sort((a, b) => a.at - b.at)) {
        if (total <= budgetBytes) break;
        rooms.delete(s.key);
        sizes.delete(s.key);
        total -= s.size;
      }
      await committed(tx);
    } catch { /* storage full or refused: the next save tries again */ }
  }

  /**
   * Forgets what is kept of `room` for `prefix` (the room was left).
   * @param {string} prefix
   * @param {string} room
   */
  async remove(prefix, room) {
    try {
      const tx = this.#db.transaction([ROOMS, SIZES], "readwrite");
      tx.objectStore(ROOMS).delete(prefix + room);
      tx.objectStore(SIZES).delete(prefix + room);
      await committed(tx);
    } catch { /* gone with the database */ }
  }

  /** Closes the database (before deleting it). */
  close() {
    this.#db.close();
  }
}

/**
 * Keeps `client`'s rooms in `kept` as they change: each room a moment after its last change (one write
 * for a burst of messages), and every room waiting when the page is hidden or closed.
 * @param {ChatClient} client
 * @param {KeptHistory} kept
 * @param {string} prefix the identity's storage prefix
 * @param {{ delayMs?: number }} [opts]
 * @returns {{ flush(): Promise<void>, stop(): void }} `stop`: nothing more is written
 */
export function keepRooms(client, kept, prefix, { delayMs = 500 } = {}) {
  /** @type {Set<string>} */
  const due = new Set();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let stopped = false;
  const flush = async () => {
    clearTimeout(timer);
    timer = undefined;
    const rooms = [...due];
    due.clear();
    for (const room of rooms) {
      if (stopped) return;
      const r = client.rooms.get(room);
      const snap = r ? snapshotOf(r, kept.settings.perRoom) : undefined;
      if (snap) await kept.save(prefix, snap);
      else if (!r) await kept.remove(prefix, room);
    }
  };
  /** @param {Event} e */
  const changed = (e) => {
    const room = /** @type {CustomEvent<{ room?: string }>} */ (e).detail?.room;
    if (stopped || typeof room !== "string") return;
    due.add(room);
    timer ??= setTimeout(() => void flush(), delayMs);
  };
  const events = ["joined", "message", "history", "changed", "reactions", "read"];
  for (const type of events) client.addEventListener(type, changed);
  // A room left: its record goes too.
  /** @type {Set<string>} */
  let rooms = new Set(client.rooms.keys());
  const roomsChanged = () => {
    for (const room of rooms) {
      if (!client.rooms.has(room)) changed(new CustomEvent("left", { detail: { room } }));
    }
    rooms = new Set(client.rooms.keys());
  };
  client.addEventListener("rooms", roomsChanged);
  const hidden = () => {
    if (document.visibilityState === "hidden") void flush();
  };
  document.addEventListener("visibilitychange", hidden);
  addEventListener("pagehide", hidden);
  return {
    flush,
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const type of events) client.removeEventListener(type, changed);
      client.removeEventListener("rooms", roomsChanged);
      document.removeEventListener("visibilitychange", hidden);
      removeEventListener("pagehide", hidden);
    },
  };
}

/** @param {RoomSnapshot} snap */
function sizeOf(snap) {
  return new TextEncoder().encode(JSON.stringify(snap)).byteLength;
}

/**
 * @template T
 * @param {IDBRequest<T>} req
 * @returns {Promise<T>}
 */
function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** @param {IDBTransaction} tx */
function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}
