// deno-lint-ignore-file
// deno-fmt-ignore-file
// Copied unchanged (only these 4 header lines added) from /work/shared/peers/servers/deno_naive.ts
// (the shared side-by-side harness, read-only). Re-copy it from there rather than editing it here.
// Peer (a): naive Deno chat broadcast server. Deno.serve + Deno.upgradeWebSocket, a Set per room.
// ws://127.0.0.1:PORT/ws?room=R&name=N ; in: {"text":"..."} ; out (to every client in R, sender included):
// {"type":"message","room":R,"from":N,"text":...,"ts":Date.now(),"id":<counter>} serialized once.
const port = Number(Deno.args[0] ?? 9001);
const rooms = new Map<string, Set<WebSocket>>();
let counter = 0;

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
  const url = new URL(req.url);
  if (url.pathname !== "/ws") return new Response("not found", { status: 404 });
  const room = url.searchParams.get("room") ?? "lobby";
  const name = url.searchParams.get("name") ?? "anon";
  const { socket, response } = Deno.upgradeWebSocket(req);
  let set = rooms.get(room);
  if (!set) rooms.set(room, (set = new Set()));
  const members = set;
  socket.onopen = () => members.add(socket);
  socket.onmessage = (e) => {
    if (typeof e.data !== "string") return;
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    const out = JSON.stringify({ type: "message", room, from: name, text: m.text, ts: Date.now(), id: ++counter });
    for (const c of members) if (c.readyState === 1) c.send(out);
  };
  socket.onclose = () => {
    members.delete(socket);
    if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
  };
  socket.onerror = () => {};
  return response;
});
