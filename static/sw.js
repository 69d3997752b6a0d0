/**
 * The page's service worker: it keeps the page's own files so the page opens with the server down (or
 * the network off), and says so itself (app.js). Nothing else goes through it: the WebSocket, `/ws/info`,
 * `/healthz`, `/metrics` and the API are not the page's files and reach the server as before.
 *
 * Network first: while the server answers, the page gets what it serves (as it did before this worker:
 * every file is revalidated), and the copy kept here is refreshed; only when the server does not answer
 * within {@link NETWORK_WAIT_MS} does the page get the kept copy. The server fills in `BUILD` when it
 * serves this file (lib/static.ts): a new release or any changed file changes this file's bytes, the
 * browser installs the new worker, which keeps the new files under a new cache and drops the old ones.
 *
 * Browsers run service workers only on https and on localhost: on a plain-http address of another name
 * the page works as before, without offline use.
 * @module
 */

// The server replaces this line; "dev" with no files is what a copy served some other way gets.
const BUILD = { version: "dev", files: [] };

/** Caches of this worker are named with this prefix (and the version), so old ones can be found. */
const CACHE_PREFIX = "chat-page-";
const CACHE = `${CACHE_PREFIX}${BUILD.version}`;
/** How long a request waits for the server before the kept copy is used (a network that hangs). */
const NETWORK_WAIT_MS = 3000;

/**
 * What this module uses of the worker's global scope (the page's type-checking knows the DOM, not workers).
 * @typedef {object} WorkerScope
 * @property {{ scope: string }} registration
 * @property {() => Promise<void>} skipWaiting
 * @property {{ claim(): Promise<void> }} clients
 * @property {(type: string, listener: (e: any) => void) => void} addEventListener
 */
/**
 * @typedef {Event & { waitUntil(p: Promise<unknown>): void }} ExtendableEvent
 * @typedef {ExtendableEvent & { request: Request, respondWith(r: Promise<Response>): void }} FetchEvent
 */

const worker = /** @type {WorkerScope} */ (/** @type {unknown} */ (self));
/** @type {readonly string[]} */
const FILES = BUILD.files;
const scope = new URL(worker.registration.scope);
/** The kept files by their path on this origin (the page itself under the scope's own path). */
const kept = new Set(FILES.map((f) => new URL(f, scope).pathname));

worker.addEventListener("install", (/** @type {ExtendableEvent} */ e) => {
  e.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // `no-cache`: the files of this version, not what the HTTP cache held of the last.
    await cache.addAll(FILES.map((f) => new Request(new URL(f, scope), { cache: "no-cache" })));
    // The page holds no state the new files could not read (its state is in storage): take over now.
    await worker.skipWaiting();
  })());
});

worker.addEventListener("activate", (/** @type {ExtendableEvent} */ e) => {
  e.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await worker.clients.claim();
  })());
});

worker.addEventListener("fetch", (/** @type {FetchEvent} */ e) => {
  const req = e.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== scope.origin) return;
  // Any address of the page (`?tokenUrl=…`, a hash) is the page: one kept copy of it.
  const key = req.mode === "navigate" ? scope.pathname : url.pathname;
  if (!kept.has(key)) return;
  e.respondWith(networkFirst(req, new URL(key, scope).href));
});

/**
 * The server's answer (kept for later) when it comes in time, else the kept copy; the server's late
 * answer still refreshes the copy.
 * @param {Request} req
 * @param {string} key
 * @returns {Promise<Response>}
 */
async function networkFirst(req, key) {
  const cache = await caches.open(CACHE);
  const fromNetwork = fetch(req).then(async (res) => {
    if (res.ok && res.type === "basic") await cache.put(key, res.clone());
    return res;
  });
  // Answered from the copy, the page no longer waits for this one: its failure is nobody's error.
  fromNetwork.catch(() => {});
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const late = new Promise((resolve) => timer = setTimeout(resolve, NETWORK_WAIT_MS));
  try {
    const first = await Promise.race([fromNetwork, late]);
    if (first instanceof Response) return first;
    const copy = await cache.match(key);
    return copy ?? await fromNetwork;
  } catch (err) {
    const copy = await cache.match(key);
    if (copy) return copy;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
