import assert from "node:assert/strict";
import { Hub, type HubOptions, type Peer } from "../../lib/hub.ts";
import { pageOf } from "../../lib/sharing.ts";

class FakePeer implements Peer {
  static next = 1;
  readonly id = FakePeer.next++;
  readonly got: Record<string, unknown>[] = [];
  send(line: string): boolean {
    this.got.push(JSON.parse(line));
    return true;
  }
  close(): void {}
  of(type: string): Record<string, unknown>[] {
    return this.got.filter((m) => m.type === type);
  }
}

/** A hub whose rooms are big above 3 people, with its presence and count flushes counted. */
function bigHub(opts: Partial<HubOptions> = {}) {
  const due = { presence: 0, counts: 0 };
  const h = new Hub({
    maxRoomsPerConnection: 5,
    maxRooms: 100,
    nameHoldMs: 1000,
    bigRoom: 3,
    onPresenceQueued: () => due.presence++,
    onCountQueued: () => due.counts++,
    ...opts,
  });
  const enter = (name: string) => {
    const p = new FakePeer();
    h.connect(p, `k-${name}`, name, 0);
    h.join(p.id, "hall");
    return p;
  };
  return { h, due, enter };
}

Deno.test("Hub.join() above bigRoom tells no one of each arrival, and queues one count per flush", () => {
  const { h, due, enter } = bigHub();
  const first = [enter("a"), enter("b"), enter("c")];
  h.flushPresence();
  assert.equal(h.isBig("hall"), false, "3 people is not above 3");
  assert.deepEqual(first[0].of("presence").map((m) => m.name), ["b", "c"], "a small room tells each join");
  const later = ["d", "e", "f", "g", "h"].map(enter);
  h.flushPresence();
  assert.equal(h.isBig("hall"), true);
  assert.deepEqual(first[0].of("presence").map((m) => m.name), ["b", "c"], "no line about d..h");
  assert.equal(later[0].of("presence").length, 0);
  assert.equal(due.counts, 1, "the owner is called once, however many joined");
  assert.deepEqual(h.countsDue(), ["hall"]);
  assert.deepEqual(h.countsDue(), [], "once each");
  h.tellCount("hall", h.sortedMembers("hall").length);
  for (const p of [...first, ...later]) {
    assert.deepEqual(p.of("count"), [{ type: "count", room: "hall", members: 8 }]);
  }
});

Deno.test("Hub.watch() tells a member of big-room presence only about the names it looks at", () => {
  const { h, enter } = bigHub();
  const ps = ["a", "b", "c", "d", "e"].map(enter);
  h.flushPresence();
  const [a, b] = ps;
  h.watch(a.id, "hall", ["d", "zed"]);
  const before = a.got.length;
  h.leave(ps[3].id, "hall"); // d
  h.leave(ps[4].id, "hall"); // e
  const zed = enter("zed");
  h.flushPresence();
  assert.deepEqual(
    a.got.slice(before).filter((m) => m.type === "presence").map((m) => [m.event, m.name]),
    [["leave", "d"], ["join", "zed"]],
  );
  assert.equal(b.of("presence").filter((m) => m.name === "d" || m.name === "zed").length, 0);
  // A new page replaces the old one; leaving forgets it.
  h.watch(a.id, "hall", ["b"]);
  h.leave(zed.id, "hall");
  h.flushPresence();
  assert.equal(a.of("presence").filter((m) => m.name === "zed").length, 1, "only the join, from before");
  h.leave(a.id, "hall");
  h.leave(b.id, "hall");
  h.flushPresence();
  assert.equal(a.of("presence").filter((m) => m.name === "b").length, 0, "a left: not told of b");
});

/** The `[event, name]` of the presence lines `p` got after its first `from` lines. */
function presenceSince(p: FakePeer, from: number): string[][] {
  return p.got.slice(from).filter((m) => m.type === "presence").map((
    m,
  ) => [m.event as string, m.name as string]);
}

Deno.test("Hub.watchPartners() tells a member of its partners in big rooms: who is there now, then joins and leaves", () => {
  const { h, enter } = bigHub();
  const ps = ["a", "b", "c", "d", "e"].map(enter);
  h.flushPresence();
  const [a, b] = ps;
  const from = a.got.length;
  h.watchPartners("k-a", ["d", "zed"], true);
  assert.deepEqual(presenceSince(a, from), [["join", "d"]], "d is here now; zed is not");
  h.leave(ps[3].id, "hall"); // d
  const zed = enter("zed");
  h.flushPresence();
  assert.deepEqual(presenceSince(a, from), [["join", "d"], ["leave", "d"], ["join", "zed"]]);
  assert.equal(
    b.of("presence").filter((m) => m.name === "d" || m.name === "zed").length,
    0,
    "b asked for no one",
  );
  // A replace drops the old partners; a partner joining a member's later big room is told at its settle.
  h.watchPartners("k-a", ["b"], true);
  h.leave(zed.id, "hall");
  h.flushPresence();
  assert.equal(a.of("presence").filter((m) => m.name === "zed").length, 1, "zed is no partner now");
  const late = new FakePeer();
  h.connect(late, "k-late", "late", 0);
  h.watchPartners("k-late", ["b"]);
  h.join(late.id, "hall", true);
  assert.equal(late.of("presence").length, 0, "nothing before its joined answer");
  h.settle(late.id, "hall", 0);
  assert.deepEqual(presenceSince(late, 0), [["join", "b"]]);
  // Disconnecting forgets them.
  h.disconnect(a.id, 0);
  h.leave(b.id, "hall");
  h.flushPresence();
  assert.equal(a.of("presence").filter((m) => m.event === "leave" && m.name === "b").length, 0);
});

Deno.test("Hub.watchPartners() keeps at most maxPartners, the least recently added dropped first", () => {
  const { h, enter } = bigHub({ maxPartners: 2 });
  const ps = ["a", "b", "c", "d", "e"].map(enter);
  h.flushPresence();
  h.watchPartners("k-a", ["b", "c"], true);
  h.watchPartners("k-a", ["b"]); // b is newest now
  h.watchPartners("k-a", ["d"]); // c goes
  const from = ps[0].got.length;
  for (const p of ps.slice(1, 4)) h.leave(p.id, "hall");
  h.flushPresence();
  assert.deepEqual(presenceSince(ps[0], from), [["leave", "b"], ["leave", "d"]]);
});

Deno.test("Hub.rename() in a big room tells only who watches that person, and they watch the new name", () => {
  const { h, enter } = bigHub();
  const ps = ["a", "b", "c", "d", "e"].map(enter);
  h.flushPresence();
  const [a, b, c, d] = ps;
  h.watch(a.id, "hall", ["a", "b", "d"]);
  h.watchPartners("k-c", ["d"]);
  h.rename("k-d", "dan", 0);
  for (const [p, told] of [[a, true], [b, false], [c, true], [d, true], [ps[4], false]] as const) {
    assert.equal(p.of("nick").length, told ? 1 : 0, `nick to ${p.id}`);
  }
  // Both watch "dan" now: its leave reaches them; another rename reaches them again.
  h.rename("k-d", "dave", 0);
  assert.equal(a.of("nick").length, 2);
  assert.equal(c.of("nick").length, 2);
  const [fromA, fromC] = [a.got.length, c.got.length];
  h.leave(d.id, "hall");
  h.flushPresence();
  assert.deepEqual(presenceSince(a, fromA), [["leave", "dave"]]);
  assert.deepEqual(presenceSince(c, fromC), [["leave", "dave"]]);
  // A rename told from another process follows the same rule.
  h.tellRooms(["hall"], JSON.stringify({ type: "nick", old: "b", name: "bea" }), { old: "b", name: "bea" });
  assert.deepEqual(a.of("nick").map((m) => m.name), ["dan", "dave", "bea"]);
  assert.equal(c.of("nick").length, 2, "c watches no b");
  assert.equal(ps[4].of("nick").length, 0);
});

Deno.test("Hub.rename() in a small room tells every member", () => {
  const { h, enter } = bigHub();
  const ps = ["a", "b", "c"].map(enter);
  h.rename("k-c", "cy", 0);
  for (const p of ps) assert.equal(p.of("nick").length, 1);
});

Deno.test("Hub.typing() names at most maxTypers in a big room until a place frees", () => {
  const { h, enter } = bigHub({ maxTypers: 2, typingWindowMs: 1000 });
  const ps = ["a", "b", "c", "d", "e"].map(enter);
  const line = (name: string) => JSON.stringify({ type: "typing", room: "hall", name });
  assert.equal(h.typing("hall", "a", line("a"), 0), true);
  assert.equal(h.typing("hall", "b", line("b"), 10), true);
  assert.equal(h.typing("hall", "c", line("c"), 20), false, "two typers named already");
  assert.equal(h.typing("hall", "a", line("a"), 500), true, "a typer keeps its place");
  assert.equal(h.typing("hall", "c", line("c"), 1010), true, "b's place has passed");
  h.leave(ps[0].id, "hall"); // a leaves: its place frees at once
  assert.equal(h.typing("hall", "d", line("d"), 1020), true);
  assert.deepEqual(ps[4].of("typing").map((m) => m.name), ["a", "b", "a", "c", "d"]);
});

Deno.test("Hub.typing() in a small room names everyone", () => {
  const { h, enter } = bigHub({ maxTypers: 1 });
  const [a] = ["a", "b", "c"].map(enter);
  for (const n of ["a", "b", "c"]) {
    assert.equal(h.typing("hall", n, JSON.stringify({ type: "typing", room: "hall", name: n }), 0), true);
  }
  assert.equal(a.of("typing").length, 3);
});

Deno.test("Hub.sortedMembers() stays sorted through joins, renames and leaves", () => {
  const { h, enter } = bigHub();
  const ps = ["mia", "al", "zoe", "Bo"].map(enter);
  assert.deepEqual(h.sortedMembers("hall"), ["Bo", "al", "mia", "zoe"]);
  h.rename("k-zoe", "ann", 0);
  assert.deepEqual(h.sortedMembers("hall"), ["Bo", "al", "ann", "mia"]);
  h.leave(ps[1].id, "hall");
  assert.deepEqual(h.members("hall"), ["Bo", "ann", "mia"]);
});

Deno.test("pageOf() pages by cursor and filters by prefix of a name or display name, any case", () => {
  const names = Array.from({ length: 25 }, (_, i) => `u${String(i).padStart(2, "0")}`);
  const shown = (n: string) => (n === "u24" ? "Zed Ulm" : undefined);
  const p1 = pageOf(names, shown, { limit: 10 });
  assert.deepEqual(p1.names, names.slice(0, 10));
  assert.equal(p1.next, "u09");
  assert.equal(p1.count, 25);
  const p3 = pageOf(names, shown, { limit: 10, after: "u19" });
  assert.deepEqual(p3.names, names.slice(20));
  assert.equal(p3.next, undefined);
  assert.deepEqual(p3.displays, { u24: "Zed Ulm" });
  assert.deepEqual(pageOf(names, shown, { limit: 10, prefix: "U1" }).names, names.slice(10, 20));
  assert.deepEqual(pageOf(names, shown, { limit: 10, prefix: "zed" }).names, ["u24"]);
  assert.deepEqual(
    pageOf(names, shown, { limit: 10, after: "u095" }).names[0],
    "u10",
    "a cursor not in the list",
  );
});
