// deno-lint-ignore-file
// deno-fmt-ignore-file
// Copied unchanged (only these 4 header lines added) from /work/shared/peers/servers/bun_pubsub.js
// (the shared side-by-side harness, read-only). Re-copy it from there rather than editing it here.
// Peer (c): Bun.serve with native pub/sub: ws.subscribe(room) + server.publish(room, msg) (sender included).
const port = Number(process.argv[2] ?? 9003);
let counter = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname !== "/ws") return new Response("not found", { status: 404 });
    const room = url.searchParams.get("room") ?? "lobby";
    const name = url.searchParams.get("name") ?? "anon";
    if (server.upgrade(req, { data: { room, name } })) return;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) { ws.subscribe(ws.data.room); },
    message(ws, msg) {
      if (typeof msg !== "string") return;
      let m;
      try { m = JSON.parse(msg); } catch { return; }
      const d = ws.data;
      server.publish(d.room, JSON.stringify({ type: "message", room: d.room, from: d.name, text: m.text, ts: Date.now(), id: ++counter }));
    },
    close(ws) {},
  },
});
