/**
 * The page on this device: its service worker (static/sw.js, which keeps the page's files for offline
 * use) and forgetting everything the page keeps here.
 * @module
 */
import { DB_NAME } from "./history.js";

/**
 * Registers the page's service worker, where the browser allows one: on https and on localhost (a
 * plain-http address of another name has none, and the page works as before, online only). Its failure
 * costs offline use, nothing else.
 * @returns {Promise<boolean>} whether a worker is registered
 */
export async function registerWorker() {
  if (!("serviceWorker" in navigator) || !isSecureContext) return false;
  try {
    // Relative: the page may be served under a path (behind a proxy); the worker's scope is the page's folder.
    await navigator.serviceWorker.register("sw.js", { scope: "./" });
    return true;
  } catch (e) {
    console.warn(`chat: no offline use: the service worker was refused (${e})`);
    return false;
  }
}

/**
 * Forgets everything the page keeps on this device: what `localStorage` holds under `prefix` (identities,
 * rooms, the outbox), the rooms' history (IndexedDB), the page's files (Cache Storage) and its service
 * worker. What the server stores is not touched.
 * @param {{ prefix: string, close?: () => void }} opts `close`: closes this page's own database first
 *   (a deletion waits for every connection to it to close)
 */
export async function forgetDevice({ prefix, close }) {
  try {
    for (const key of Object.keys(localStorage)) if (key.startsWith(prefix)) localStorage.removeItem(key);
  } catch { /* no storage to clear */ }
  close?.();
  await Promise.allSettled([
    new Promise((resolve) => {
      if (typeof indexedDB === "undefined") return resolve(undefined);
      const req = indexedDB.deleteDatabase(DB_NAME);
      // Blocked: another tab still has it open; it closes on the version change and the deletion goes on.
      req.onsuccess = req.onerror = () => resolve(undefined);
    }),
    (async () => {
      if (typeof caches === "undefined") return;
      for (const name of await caches.keys()) if (name.startsWith("chat-page-")) await caches.delete(name);
    })(),
    (async () => {
      if (!("serviceWorker" in navigator)) return;
      // Only the page's own: another application on this origin may have a worker of its own.
      const ours = new URL("./", location.href).href;
      for (const reg of await navigator.serviceWorker.getRegistrations()) {
        if (reg.scope === ours) await reg.unregister();
      }
    })(),
  ]);
}
