/**
 * What the client keeps across page loads (identity, rooms, outbox), as JSON under prefixed keys of a
 * `localStorage`-like storage. A storage that is full, denied or absent costs persistence, not the session.
 * @module
 */

/** @typedef {import("./types.js").KeyValueStorage} KeyValueStorage */

/** JSON values under `prefix`-ed keys of one storage. */
export class Persisted {
  /**
   * @param {KeyValueStorage | null | undefined} storage `undefined`: the page's `localStorage`, if any
   * @param {string} prefix
   */
  constructor(storage, prefix) {
    /** @type {KeyValueStorage | null} */
    this.storage = storage === undefined ? defaultStorage() : storage;
    this.prefix = prefix;
  }

  /**
   * The value under `key`, or undefined (none, or not JSON).
   * @param {string} key
   * @returns {any}
   */
  load(key) {
    try {
      const raw = this.storage?.getItem(this.prefix + key);
      return raw ? JSON.parse(raw) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * @param {string} key
   * @param {unknown} value
   */
  save(key, value) {
    try {
      this.storage?.setItem(this.prefix + key, JSON.stringify(value));
    } catch { /* storage full or denied: the session still works */ }
  }
}

/** @returns {KeyValueStorage | null} */
function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}
