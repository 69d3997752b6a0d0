import assert from "node:assert/strict";
import { Hub, type HubOptions, type Peer } from "../../lib/hub.ts";
import { ProtocolError } from "../../lib/protocol.ts";

class FakePeer implements Peer {
  static next = 1;
  readonly id = FakePeer.next++;
  readonly got: Record<string, unknown>[] = [];
  closedWith?: [number, string];
  send(line: string): boolean {
    this.got.push(JSON.parse(line));
    return true;
  }
  close(code: number, reason: string): void {
    this.closedWith ??= [code, reason];
  }
  types(): unknown[] {
    return this.got.map((m) => m.type);
  }
}

function hub(opts: Partial<HubOptions> = {}) {
  return new Hub({ maxRoomsPerConnection: 5, maxRooms: 100, nameHoldMs: 1000, ...opts });
}

Deno.test("Hub.publish() reaches members of the room and no one else", () => {
  const h = hub();
  const [a, b, c] = [new FakePeer(), new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.connect(c, "kc", "carol", 0);
  h.join(a.id, "lobby");
  h.join(b.id, "lobby");
  h.join(c.id, "other");
  a.got.length = b.got.length = c.got.length = 0;
  h.publish("lobby", JSON.stringify({ type: "x" }));
  assert.deepEqual(a.types(), ["x"]);
  assert.deepEqual(b.types(), ["x"]);
  assert.deepEqual(c.types(), []);
});

Deno.test("Hub.join() announces a person once however many tabs they open, leave() on the last tab", () => {
  const h = hub();
  const watcher = new FakePeer();
  h.connect(watcher, "kw", "watcher", 0);
  h.join(watcher.id, "r");
  const [t1, t2] = [new FakePeer(), new FakePeer()];
  h.connect(t1, "ka", "alice", 0);
  h.connect(t2, "ka", "alice", 0);
  h.join(t1.id, "r");
  h.join(t2.id, "r");
  // The joiner learns the members from its `joined`; presence is for the others.
  assert.deepEqual(watcher.got.filter((m) => m.type === "presence"), [
    { type: "presence", room: "r", event: "join", name: "alice" },
  ]);
  assert.deepEqual(h.members("r"), ["alice", "watcher"]);
  h.leave(t1.id, "r");
  assert.equal(watcher.got.filter((m) => m.event === "leave").length, 0);
  h.disconnect(t2.id, 0);
  assert.deepEqual(watcher.got.at(-1), { type: "presence", room: "r", event: "leave", name: "alice" });
  assert.deepEqual(h.members("r"), ["watcher"]);
});

Deno.test("Hub.leave() deletes a room when it empties and says so", () => {
  const h = hub();
  const a = new FakePeer();
  h.connect(a, "ka", "alice", 0);
  assert.deepEqual(h.join(a.id, "r"), { added: true, created: true, firstTab: true });
  assert.deepEqual(h.join(a.id, "r"), { added: false, created: false });
  assert.equal(h.size.rooms, 1);
  assert.deepEqual(h.leave(a.id, "r"), { removed: true, deleted: true, lastTab: true });
  assert.deepEqual(h.leave(a.id, "r"), { removed: false, deleted: false });
  assert.equal(h.size.rooms, 0);
  assert.equal(h.hasRoom("r"), false);
});

Deno.test("Hub.disconnect() is idempotent and returns the rooms that emptied", () => {
  const h = hub();
  const [a, b] = [new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.join(a.id, "x");
  h.join(a.id, "y");
  h.join(b.id, "y");
  assert.deepEqual(h.disconnect(a.id, 0), ["x"]);
  assert.deepEqual(h.disconnect(a.id, 0), []);
  assert.equal(h.size.clients, 1);
});

Deno.test("Hub.join() refuses past the per-connection and server room limits", () => {
  const h = hub({ maxRoomsPerConnection: 2, maxRooms: 3 });
  const [a, b] = [new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.join(a.id, "r1");
  h.join(a.id, "r2");
  assert.throws(() => h.join(a.id, "r3"), (e) => e instanceof ProtocolError && e.code === "too_many_rooms");
  h.join(b.id, "r3");
  assert.throws(
    () => h.join(b.id, "r4"),
    (e) => e instanceof ProtocolError && e.code === "server_rooms_full",
  );
  h.join(b.id, "r1"); // an existing room is still fine
});

Deno.test("Hub names are unique case-insensitively across people, shared by one person's tabs", () => {
  const h = hub();
  h.connect(new FakePeer(), "ka", "Alice", 0);
  h.connect(new FakePeer(), "ka", "Alice", 0);
  assert.equal(h.freeName("kb", "alice", 0), "alice-2");
  assert.throws(
    () => h.connect(new FakePeer(), "kb", "ALICE", 0),
    (e) => e instanceof ProtocolError && e.code === "name_taken",
  );
  assert.equal(h.personByName("aLiCe"), "ka");
});

Deno.test("Hub names are unique by lookalike too: a shared confusable key is a taken name", () => {
  const h = hub({ nameHoldMs: 1000 });
  const a = new FakePeer();
  h.connect(a, "ka", "Ian", 0);
  assert.equal(h.freeName("kb", "lan", 0), "lan-2", "a capital I looks like l");
  assert.equal(h.freeName("kb", "ian", 0), "ian-2", "and Ian is ian in another case");
  assert.equal(h.freeName("kb", "lia", 0), "lia");
  assert.throws(
    () => h.connect(new FakePeer(), "kb", "lan", 0),
    (e) => e instanceof ProtocolError && e.code === "name_taken" && /looks like "Ian"/.test(e.message),
  );
  assert.equal(h.personByName("lan"), "ka");
  assert.equal(h.personByName("IAN"), "ka");
  h.rename("ka", "alice", 0);
  assert.equal(h.personByName("lan"), undefined, "both keys of the old name were let go");
  assert.equal(h.freeName("kb", "lan", 0), "lan");
  h.disconnect(a.id, 10);
  assert.equal(h.freeName("kb", "al\u0131ce", 500), "al\u0131ce-2", "held: dotless i");
  h.connect(new FakePeer(), "kb", "al\u0131ce", 1100);
  assert.equal(h.nameOf("ka"), undefined, "the past-hold holder of the lookalike is forgotten");
  assert.equal(h.personByName("alice"), "kb");
});

Deno.test("Hub.freeName() cuts a long name by code point before its number, never inside a pair", () => {
  const h = hub();
  const long = "a" + "\u{20000}".repeat(31); // 32 code points, 63 UTF-16 units
  h.connect(new FakePeer(), "ka", long, 0);
  const second = h.freeName("kb", long, 0);
  assert.equal(second, "a" + "\u{20000}".repeat(29) + "-2");
  assert.ok(second.isWellFormed());
  assert.equal(h.freeName("kb", "short", 0), "short");
});

Deno.test("Hub holds a name for its person after the last tab closes, then frees it", () => {
  const h = hub({ nameHoldMs: 1000 });
  const a = new FakePeer();
  h.connect(a, "ka", "alice", 0);
  h.disconnect(a.id, 100);
  assert.equal(h.freeName("kb", "alice", 500), "alice-2");
  assert.equal(h.nameOf("ka"), "alice");
  assert.equal(h.freeName("kb", "alice", 1100), "alice");
  h.connect(new FakePeer(), "kb", "alice", 1100);
  assert.equal(h.personByName("alice"), "kb");
  assert.equal(h.nameOf("ka"), undefined);
  assert.equal(h.sweep(5000), 0, "the new holder is online");
});

Deno.test("Hub.sweep() forgets offline people past the hold", () => {
  const h = hub({ nameHoldMs: 1000 });
  const a = new FakePeer();
  h.connect(a, "ka", "alice", 0);
  h.disconnect(a.id, 0);
  assert.equal(h.sweep(999), 0);
  assert.equal(h.sweep(1000), 1);
  assert.equal(h.size.people, 0);
});

Deno.test("Hub.rename() tells everyone sharing a room once, and refuses a taken name", () => {
  const h = hub();
  const [a, b, c] = [new FakePeer(), new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.connect(c, "kc", "carol", 0);
  for (const r of ["x", "y"]) h.join(a.id, r), h.join(b.id, r);
  h.rename("ka", "alicia", 0);
  assert.deepEqual(b.got.filter((m) => m.type === "nick"), [{ type: "nick", old: "alice", name: "alicia" }]);
  assert.deepEqual(a.got.filter((m) => m.type === "nick").length, 1);
  assert.deepEqual(c.got.filter((m) => m.type === "nick"), []);
  assert.throws(() => h.rename("ka", "BOB", 0), (e) => e instanceof ProtocolError && e.code === "name_taken");
  assert.deepEqual(h.members("x"), ["alicia", "bob"]);
});

Deno.test("Hub.closeAll() closes every peer", () => {
  const h = hub();
  const [a, b] = [new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.closeAll(1001, "server restarting");
  assert.deepEqual(a.closedWith, [1001, "server restarting"]);
  assert.deepEqual(b.closedWith, [1001, "server restarting"]);
});

Deno.test("Hub with onPresenceQueued holds presence until flushPresence(), each line for who was there", () => {
  let queued = 0;
  const h = hub({ onPresenceQueued: () => queued++ });
  const [w, a, b] = [new FakePeer(), new FakePeer(), new FakePeer()];
  h.connect(w, "kw", "watcher", 0);
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.join(w.id, "r");
  h.join(a.id, "r");
  h.join(b.id, "r");
  h.leave(a.id, "r");
  assert.equal(queued, 1, "the owner is asked once for a flush");
  assert.deepEqual([w.got, a.got, b.got], [[], [], []], "nothing goes out before the flush");
  h.flushPresence();
  const seen = (p: FakePeer) => p.got.map((m) => `${m.event} ${m.name}`);
  assert.deepEqual(seen(w), ["join alice", "join bob", "leave alice"]);
  assert.deepEqual(seen(b), ["leave alice"], "bob gets what happened after he joined, not his own join");
  assert.deepEqual(seen(a), [], "alice left before the flush: nothing for a room she is not in");
  h.flushPresence();
  assert.equal(w.got.length, 3, "a flush sends a line once");
});

Deno.test("Hub.flushPresence(now, interval) holds a room that sent presence less than interval ago", () => {
  let asked = 0;
  const h = hub({ onPresenceQueued: () => asked++ });
  const [w, v, a, b, c] = [new FakePeer(), new FakePeer(), new FakePeer(), new FakePeer(), new FakePeer()];
  h.connect(w, "kw", "watcher", 0);
  h.connect(v, "kv", "viewer", 0);
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.connect(c, "kc", "carol", 0);
  h.join(w.id, "r");
  h.join(a.id, "r");
  assert.equal(h.flushPresence(1000, 1000), undefined, "nothing else is held");
  assert.deepEqual(w.got.map((m) => m.name), ["alice"]);
  h.join(b.id, "r");
  h.join(v.id, "q");
  h.join(c.id, "q");
  assert.equal(asked, 3, "the owner hears of each room that begins holding presence");
  assert.equal(h.flushPresence(1500, 1000), 2000, "r sent at 1000: held until 2000");
  assert.deepEqual(w.got.map((m) => m.name), ["alice"], "r holds bob's join");
  assert.deepEqual(v.got.map((m) => m.name), ["carol"], "q had sent nothing: it goes at once");
  assert.equal(h.flushPresence(2000, 1000), undefined);
  assert.deepEqual(w.got.map((m) => m.name), ["alice", "bob"]);
  h.join(c.id, "r");
  assert.equal(h.flushPresence(2100, 1000), 3000, "r sent at 2000");
  h.flushPresence();
  assert.deepEqual(
    w.got.map((m) => m.name),
    ["alice", "bob", "carol"],
    "without an interval, every room's go",
  );
  // A message in the room still sends the held presence first, whatever the interval.
  h.leave(b.id, "r");
  h.publish("r", JSON.stringify({ type: "message", room: "r", seq: 1 }), 1);
  assert.deepEqual(w.got.map((m) => `${m.type} ${m.event ?? ""}`), [
    "presence join",
    "presence join",
    "presence join",
    "presence leave",
    "message ",
  ]);
});

Deno.test("Hub.publish() and rename() send a room's held presence first, so order is kept", () => {
  const h = hub({ onPresenceQueued: () => {} });
  const [w, a] = [new FakePeer(), new FakePeer()];
  h.connect(w, "kw", "watcher", 0);
  h.connect(a, "ka", "alice", 0);
  h.join(w.id, "r");
  h.join(a.id, "r");
  h.publish("r", JSON.stringify({ type: "message", from: "alice" }));
  assert.deepEqual(w.types(), ["presence", "message"], "alice joins before she speaks");
  h.leave(a.id, "r");
  h.join(a.id, "r");
  h.rename("ka", "alicia", 0);
  assert.deepEqual(w.got.slice(2).map((m) => m.type === "nick" ? `nick ${m.name}` : `${m.event} ${m.name}`), [
    "leave alice",
    "join alice",
    "nick alicia",
  ]);
});

Deno.test("Hub.knownSeq() is the newer of the room's last delivery and the member's joined answer, until a restart", () => {
  const h = hub();
  const [a, b] = [new FakePeer(), new FakePeer()];
  h.connect(a, "ka", "alice", 0);
  h.connect(b, "kb", "bob", 0);
  h.join(a.id, "r", true);
  h.settle(a.id, "r", 0); // a new, empty room: nobody's answer is ahead
  assert.equal(h.knownSeq(a.id, "r"), 0);
  h.publish("r", JSON.stringify({ type: "message", seq: 3 }), 3);
  assert.equal(h.knownSeq(a.id, "r"), 3);
  // b's history read found seq 7, stored while nothing was delivered here yet: b has up to 7, a up to 3.
  h.join(b.id, "r", true);
  h.settle(b.id, "r", 7);
  assert.equal(h.knownSeq(b.id, "r"), 7);
  assert.equal(h.knownSeq(a.id, "r"), 3);
  h.publish("r", JSON.stringify({ type: "message", seq: 8 }), 8);
  assert.equal(h.knownSeq(a.id, "r"), 8);
  assert.equal(h.knownSeq(b.id, "r"), 8);
  // A history that starts over counts from `from` for every member, whatever it had.
  h.join(b.id, "s", true);
  h.settle(b.id, "s", 9);
  h.restart("s", JSON.stringify({ type: "joined", room: "s" }), 2);
  assert.equal(h.knownSeq(b.id, "s"), 2);
  h.restart("r", JSON.stringify({ type: "joined", room: "r" }));
  assert.equal(h.knownSeq(a.id, "r"), 0);
  assert.equal(h.knownSeq(b.id, "r"), 0);
  // Leaving and joining again forgets the old answer.
  h.join(a.id, "s", true);
  h.settle(a.id, "s", 5);
  h.leave(a.id, "s");
  h.join(a.id, "s", true);
  h.settle(a.id, "s", 0);
  assert.equal(h.knownSeq(a.id, "s"), 2);
});
