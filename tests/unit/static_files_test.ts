import assert from "node:assert/strict";
import { StaticFiles } from "../../lib/static.ts";
import { RELEASE } from "../../lib/version.ts";

async function files(): Promise<{ files: StaticFiles; dir: string }> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/root/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/root/index.html`, "<!doctype html><p>home");
  await Deno.writeTextFile(`${dir}/root/app.js`, "export const x = 1;");
  await Deno.writeTextFile(`${dir}/root/style.css`, "p{}");
  await Deno.writeTextFile(`${dir}/root/sub/index.html`, "<p>sub");
  await Deno.writeTextFile(`${dir}/root/deno.json`, "{}");
  await Deno.writeTextFile(`${dir}/root/.secret`, "hidden");
  await Deno.writeTextFile(`${dir}/outside.txt`, "must never be served");
  return { files: await StaticFiles.load(new URL(`file://${dir}/root/`)), dir };
}

function get(f: StaticFiles, rawPath: string, init?: RequestInit): Response {
  // The handler gets `new URL(req.url).pathname`: reproduce what the URL parser does to the path.
  const url = new URL(`http://x${rawPath}`);
  return f.serve(new Request(url, init), url.pathname);
}

Deno.test("StaticFiles.serve() answers files with their content type, ETag, cache and security headers", async () => {
  const { files: f, dir } = await files();
  const home = get(f, "/");
  assert.equal(home.status, 200);
  assert.equal(home.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(home.headers.get("content-security-policy")!, /script-src 'self'/);
  assert.equal(home.headers.get("cache-control"), "no-cache");
  assert.match(home.headers.get("etag")!, /^"[0-9a-f]{24}"$/);
  assert.equal(await home.text(), "<!doctype html><p>home");
  const js = get(f, "/app.js");
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  await js.body?.cancel();
  const css = get(f, "/style.css");
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  await css.body?.cancel();
  assert.equal(await get(f, "/sub/").text(), "<p>sub");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("StaticFiles.serve() answers 304 for a matching If-None-Match and no body for HEAD", async () => {
  const { files: f, dir } = await files();
  const etag = get(f, "/app.js").headers.get("etag")!;
  const again = get(f, "/app.js", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  assert.equal(again.body, null);
  const head = get(f, "/app.js", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.equal(head.headers.get("content-length"), "19");
  const post = get(f, "/app.js", { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("StaticFiles.serve() never reaches outside its directory nor serves deno.json or dotfiles", async () => {
  const { files: f, dir } = await files();
  const cases: [string, number][] = [
    ["/../outside.txt", 404], // the URL parser resolves it to /outside.txt, which is not ours
    ["/%2e%2e/outside.txt", 404],
    ["/..%2foutside.txt", 400],
    ["/sub/..%2f..%2foutside.txt", 400],
    ["/%2e%2e%2foutside.txt", 400],
    ["/..%5coutside.txt", 400],
    ["/app.js%00.html", 400],
    ["/%ff", 400],
    ["/%E0%A4%A", 400],
    ["/deno.json", 404],
    ["/.secret", 404],
    ["/missing.js", 404],
  ];
  for (const [path, status] of cases) {
    const res = get(f, path);
    const body = await res.text();
    assert.equal(res.status, status, path);
    assert.ok(!body.includes("must never be served"), path);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("StaticFiles.load() of static/ serves every module the page imports, nested ones too", async () => {
  const f = await StaticFiles.load(new URL("../../static/", import.meta.url));
  // Follow the page's imports from app.js: a module the server did not serve would break the page.
  const seen = new Set<string>();
  const queue = ["/app.js"];
  while (queue.length) {
    const path = queue.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const res = get(f, path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8", path);
    for (const [, spec] of (await res.text()).matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g)) {
      queue.push(new URL(spec, `http://x${path}`).pathname);
    }
  }
  assert.ok(seen.has("/views/thread.js"), [...seen].join(", "));
  assert.ok(seen.has("/chat-client.js"));
  // The client's parts and the rules the page shares with the server, two levels down from app.js.
  for (const nested of ["/client/client.js", "/client/outbox.js", "/shared/rooms.js", "/shared/quote.js"]) {
    assert.ok(seen.has(nested), `${nested} in ${[...seen].join(", ")}`);
  }
});

Deno.test("StaticFiles.load() fills in the service worker's BUILD line: the release, a digest, every file", async () => {
  const { dir } = await files();
  const worker = 'const BUILD = { version: "dev", files: [] };\nself.addEventListener("fetch", () => {});\n';
  await Deno.writeTextFile(`${dir}/root/sw.js`, worker);
  const load = () => StaticFiles.load(new URL(`file://${dir}/root/`));
  const build = async (f: StaticFiles) => {
    const res = get(f, "/sw.js");
    assert.equal(res.status, 200);
    // Served from the root, so its scope is the whole page, as JavaScript (a worker of another type is refused).
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
    const text = await res.text();
    return {
      build: JSON.parse(text.split("\n")[0].match(/^const BUILD = (.*);$/)![1]),
      etag: res.headers.get("etag"),
    };
  };
  const first = await build(await load());
  assert.match(first.build.version, new RegExp(`^${RELEASE.replaceAll(".", "\\.")}\\+[0-9a-f]{12}$`));
  assert.deepEqual(first.build.files, ["", "app.js", "index.html", "style.css", "sub/index.html"]);
  // A changed file makes a new worker (its bytes differ), so browsers take the new page.
  await Deno.writeTextFile(`${dir}/root/app.js`, "export const x = 2;");
  const second = await build(await load());
  assert.notEqual(second.build.version, first.build.version);
  assert.notEqual(second.etag, first.etag);
  // A worker without the line would keep its first copy of the page for good: refused at start-up.
  await Deno.writeTextFile(`${dir}/root/sw.js`, "self.addEventListener('fetch', () => {});");
  await assert.rejects(load, /Cannot serve \/sw\.js: it must contain the line const BUILD/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("StaticFiles.load() of static/ serves the worker stamped and the manifest as a manifest", async () => {
  const f = await StaticFiles.load(new URL("../../static/", import.meta.url));
  const sw = await get(f, "/sw.js").text();
  assert.ok(!sw.includes('version: "dev"'), "stamped");
  const files: string[] = JSON.parse(sw.match(/^const BUILD = (.*);$/m)![1]).files;
  for (const must of ["", "app.js", "offline/history.js", "manifest.webmanifest", "favicon.svg"]) {
    assert.ok(files.includes(must), must);
  }
  assert.ok(!files.includes("sw.js"), "the worker does not keep itself");
  const manifest = get(f, "/manifest.webmanifest");
  assert.equal(manifest.headers.get("content-type"), "application/manifest+json");
  const m = await manifest.json();
  assert.equal(m.display, "standalone");
  assert.equal(m.start_url, "./");
  const home = get(f, "/");
  // The policy lets the page register its worker and read its manifest: both are the page's own origin.
  assert.match(home.headers.get("content-security-policy")!, /default-src 'self'/);
  assert.match(await home.text(), /<link rel="manifest" href="manifest.webmanifest">/);
});
