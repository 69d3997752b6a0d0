// deno-lint-ignore-file
// deno-fmt-ignore-file
// Copied unchanged (only these 4 header lines added) from /work/shared/peers/servers/node_ws.mjs
// (the shared side-by-side harness, read-only). Re-copy it from there rather than editing it here.
// Peer (b): Node + ws. Same protocol as deno_naive.ts. Output serialized once (one Buffer sent to all).
import http from "node:http";
import { createRequire } from "node:module";
const require = createRequire(new URL("../.cache/package.json", import.meta.url));
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] ?? 9002);
const rooms = new Map();
let counter = 0;
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname !== "/ws") { socket.destroy(); return; }
  const room = url.searchParams.get("room") ?? "lobby";
  const name = url.searchParams.get("name") ?? "anon";
  wss.handleUpgrade(req, socket, head, (ws) => {
    let set = rooms.get(room);
    if (!set) rooms.set(room, (set = new Set()));
    set.add(ws);
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let m;
      try { m = JSON.parse(data); } catch { return; }
      const out = Buffer.from(JSON.stringify({ type: "message", room, from: name, text: m.text, ts: Date.now(), id: ++counter }));
      for (const c of set) if (c.readyState === 1) c.send(out, { binary: false });
    });
    ws.on("close", () => { set.delete(ws); if (set.size === 0 && rooms.get(room) === set) rooms.delete(room); });
    ws.on("error", () => {});
  });
});
server.listen(port, "127.0.0.1", 511);
