/**
 * Static files: everything under `static/` is read once at start-up (through an `import.meta` URL,
 * so a compiled binary serves its embedded copy) and served from memory. Only those files exist:
 * no path can reach outside.
 *
 * The page's service worker (`/sw.js`) is the one file not served as it is on disk: its `BUILD` line is
 * filled in with the release and a digest of every other file, and the list of files to keep. A browser
 * installs a new worker only when the worker's own bytes change, so this is what makes a new release (or
 * any changed file) replace the copy of the page a browser keeps for offline use.
 * @module
 */
import { RELEASE } from "./version.ts";

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  webmanifest: "application/manifest+json",
};

/**
 * Pages run only our own scripts: a message that slipped into markup still could not run. `trusted`
 * origins (a host application's) may embed the page in a frame and answer its token requests.
 */
function csp(trusted: readonly string[]): string {
  const extra = trusted.map((o) => ` ${o}`).join("");
  return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    `connect-src 'self'${extra}; object-src 'none'; base-uri 'none'; ` +
    `frame-ancestors ${trusted.length ? trusted.join(" ") : "'none'"}`;
}

/** Files never served: the type-checking config of the client lives beside it. */
const HIDDEN = new Set(["/deno.json", "/deno.jsonc"]);

/** The service worker, and the line of it the server fills in (see the module's comment). */
const WORKER = "/sw.js";
const BUILD_LINE = 'const BUILD = { version: "dev", files: [] };';

/**
 * Fills in the worker's `BUILD` line: the release and a digest of the other files' ETags (so a changed file
 * makes a new worker too), and the paths it keeps, relative to the worker's scope ("" is the page itself).
 */
async function stampWorker(assets: Map<string, Asset>): Promise<void> {
  const worker = assets.get(WORKER);
  if (!worker) return;
  const text = new TextDecoder().decode(worker.body);
  if (!text.includes(BUILD_LINE)) {
    throw new Error(
      `Cannot serve ${WORKER}: it must contain the line ${BUILD_LINE} for the server to fill in`,
    );
  }
  const others = [...assets.keys()].filter((p) => p !== WORKER).sort();
  const tags = new TextEncoder().encode(others.map((p) => `${p} ${assets.get(p)!.etag}`).join("\n"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", tags));
  const version = `${RELEASE}+${
    [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
  const files = ["", ...others.map((p) => p.slice(1))];
  const body = new TextEncoder().encode(
    text.replace(BUILD_LINE, `const BUILD = ${JSON.stringify({ version, files })};`),
  );
  assets.set(WORKER, { ...worker, body, etag: await etagOf(body) });
}

async function etagOf(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return `"${[...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

/** Serves the files of one directory. */
export class StaticFiles {
  readonly #assets: Map<string, Asset>;
  readonly #csp: string;

  private constructor(assets: Map<string, Asset>, csp: string) {
    this.#assets = assets;
    this.#csp = csp;
  }

  /**
   * Reads every file under `root` (a directory URL ending in `/`). Pages may be framed by, and fetch
   * from, `trustedOrigins` (exact origins; a `*` in it is ignored: it would let any site frame them).
   */
  static async load(root: URL, opts: { trustedOrigins?: readonly string[] } = {}): Promise<StaticFiles> {
    const assets = new Map<string, Asset>();
    const walk = async (dir: URL, prefix: string) => {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.startsWith(".")) continue;
        const path = `${prefix}/${entry.name}`;
        if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir), path);
        else if (entry.isFile && !HIDDEN.has(path)) {
          const body = await Deno.readFile(new URL(entry.name, dir));
          const etag = await etagOf(body);
          const ext = entry.name.slice(entry.name.lastIndexOf(".") + 1).toLowerCase();
          assets.set(path, { body, etag, type: TYPES[ext] ?? "application/octet-stream" });
        }
      }
    };
    await walk(root, "");
    await stampWorker(assets);
    return new StaticFiles(assets, csp((opts.trustedOrigins ?? []).filter((o) => o !== "*")));
  }

  /** Answers a GET or HEAD for `pathname` (as in the URL, still percent-encoded). */
  serve(req: Request, pathname: string): Response {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    let path: string;
    try {
      path = decodeURIComponent(pathname);
    } catch {
      return new Response("Bad request: malformed percent-encoding in the path\n", { status: 400 });
    }
    // Decoding may produce what the URL parser already resolved away: refuse it outright.
    if (/[\0\\]/.test(path) || path.split("/").includes("..")) {
      return new Response("Bad request: the path has a forbidden character or segment\n", { status: 400 });
    }
    if (path.endsWith("/")) path += "index.html";
    const asset = this.#assets.get(path);
    if (!asset) return new Response("Not found\n", { status: 404, headers: { "content-type": TYPES.txt } });
    const headers: Record<string, string> = {
      "content-type": asset.type,
      etag: asset.etag,
      // Plain ES modules with stable names: always revalidate, which the ETag makes cheap.
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    };
    if (asset.type.startsWith("text/html")) headers["content-security-policy"] = this.#csp;
    const inm = req.headers.get("if-none-match");
    if (inm && inm.split(",").some((t) => t.trim() === asset.etag || t.trim() === "*")) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(req.method === "HEAD" ? null : asset.body, {
      headers: { ...headers, "content-length": String(asset.body.byteLength) },
    });
  }
}
