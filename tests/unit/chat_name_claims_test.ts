/**
 * Name claims across processes end with the connection that made them, whatever the order of events
 * (issue #18, item 7: on Redis a guest that closed right after `welcome` was released before its
 * connect-time claim was made; the claim was then recorded anyway and refreshed for ever).
 */
import assert from "node:assert/strict";
import type { Sharing, SharingEvents } from "../../lib/sharing.ts";
import { testChat } from "../helpers/chat_harness.ts";

/** Names shared as on Redis: claims held until released, lookups that answer `delayMs` late. */
function sharedNames(delayMs: number) {
  const held = new Map<string, string>(); // key -> name
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const late = <T>(v: T) =>
    new Promise<T>((resolve) => {
      const t = setTimeout(() => (timers.delete(t), resolve(v)), delayMs);
      timers.add(t);
    });
  const subscribers = new Set<SharingEvents>();
  const sharing: Sharing = {
    spansProcesses: true,
    subscribe: (events) => (subscribers.add(events), () => subscribers.delete(events)),
    publishLine: (room, line) => subscribers.forEach((s) => s.line(room, line)),
    watch: () => Promise.resolve(),
    unwatch: () => {},
    presence: () => Promise.resolve(),
    renamed: () => Promise.resolve(),
    publishRename: () => {},
    members: () => Promise.resolve([]),
    displays: () => Promise.resolve(undefined),
    memberCount: () => Promise.resolve(0),
    memberPage: () => Promise.resolve({ names: [], count: 0 }),
    present: () => Promise.resolve([]),
    occupiedRooms: () => Promise.resolve({ rooms: [] }),
    nameOf: (key) => late(held.get(key)),
    claimName: (key, name) => late(true).then((ok) => (held.set(key, name), ok)),
    releaseName: (key) => void held.delete(key),
    whoIs: () => Promise.resolve(undefined),
    sendToPerson: (key, msg) => (subscribers.forEach((s) => s.person(key, msg)), Promise.resolve()),
    toSession: () => Promise.resolve(false),
    holdSession: () => Promise.resolve(),
    releaseSession: () => {},
  };
  return { sharing, held, stop: () => timers.forEach(clearTimeout) };
}

Deno.test("Chat: a guest who leaves before its connect-time claim is made holds no name afterwards", async () => {
  const names = sharedNames(20);
  await using t = testChat({}, { sharing: names.sharing });
  using _ = { [Symbol.dispose]: names.stop };
  const guest = t.open({ name: "alice", room: "" });
  await guest.next("welcome");
  guest.hangUp(); // while the claim's lookup is still on its way
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual([...names.held], [], "no claim outlives its connection");
  const stays = t.open({ name: "bob", room: "" });
  await stays.next("welcome");
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual([...names.held.values()], ["bob"], "a connection that stays keeps its claim");
});

Deno.test("Chat: a nick claimed while its connection closes is released", async () => {
  const names = sharedNames(20);
  await using t = testChat({}, { sharing: names.sharing });
  using _ = { [Symbol.dispose]: names.stop };
  const guest = t.open({ name: "carol", room: "" });
  await guest.next("welcome");
  await new Promise((r) => setTimeout(r, 80));
  guest.frame({ type: "nick", name: "caroline" });
  await new Promise((r) => setTimeout(r, 5)); // the claim is made, not yet answered
  guest.hangUp();
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual([...names.held], []);
});

Deno.test("Chat: a guest back on another process is welcomed under the name it holds, never a placeholder", async () => {
  const names = sharedNames(20);
  using _ = { [Symbol.dispose]: names.stop };
  // Process A: alice gets her token, then goes; her name is still held everywhere (the name hold).
  let token: string, key: string;
  {
    await using a = testChat({}, { sharing: names.sharing });
    const alice = await a.connect({ name: "alice", room: "" });
    const w = alice.all("welcome")[0];
    [token, key] = [w.token, w.uid];
  }
  names.held.set(key, "alice");
  // Process B: a room with bob in it; alice comes back there with her token and joins it at once.
  await using b = testChat({}, { sharing: names.sharing });
  const bob = await b.connect({ name: "bob", room: "r" });
  const back = b.open({ token, room: "r" });
  back.frame({ type: "send", room: "r", text: "back", cid: "c1" });
  const welcome = await back.next("welcome");
  assert.deepEqual([welcome.name, welcome.notice], ["alice", undefined]);
  assert.equal((await back.next("joined")).room, "r");
  assert.equal((await back.next("ack")).cid, "c1", "a frame sent before the welcome is handled after it");
  assert.equal((await bob.next("message")).from, "alice");
  // Presence across processes comes from the shared store (silent here); what this process says
  // itself must never be a placeholder or a rename.
  const said = [...bob.lines, ...back.lines].map((m) => JSON.stringify(m));
  assert.deepEqual(said.filter((l) => l.includes('"nick"') || l.includes("guest-")), []);
});

Deno.test("Chat: a guest whose name cannot be looked up in time is turned away, not named", async () => {
  const names = sharedNames(10_000); // the shared store does not answer
  using _ = { [Symbol.dispose]: names.stop };
  await using t = testChat({ nameLookupMs: 100 }, { sharing: names.sharing });
  const guest = t.open({ name: "alice", room: "r" });
  const e = await guest.error("unavailable");
  assert.match(e.message, /could not be looked up/);
  assert.equal((await guest.closed()).code, 1013);
  assert.deepEqual(guest.all("welcome"), []);
  assert.deepEqual(await t.chat.presence("r"), []);
});
