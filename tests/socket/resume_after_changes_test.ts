/**
 * Resume after moderation: a client that was away while a message it already holds was deleted or
 * edited learns it from `joined.changes` (the room's change revision `rev`). Over real sockets, on
 * whichever engine the helpers start (Redis too under TEST_REDIS_URL); then `Engine.changes()` and
 * the rev of each change on every backend (memory, SQLite, and Redis under TEST_REDIS_URL).
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type { Draft, Engine } from "../../lib/engine.ts";
import type { ChatMessage } from "../../lib/protocol.ts";
import { engineKinds } from "../helpers/engine_kinds.ts";
import { type Msg, startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

const SECRET = "resume-changes-test-secret-0123456789-abcdef";

function token(sub: string, role = "member"): Promise<string> {
  return new SignJWT({ name: sub, role })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

function serve(extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer({ jwtSecret: SECRET, guests: "on", ...extra });
}

/** Connects as signed `sub` to `room` and takes its joined. */
async function as(s: TestServer, sub: string, room = "lobby", role = "member") {
  const c = await TestClient.connect(s, { token: await token(sub, role), room });
  const joined = room ? await c.next("joined") : undefined;
  return { c, joined };
}

async function sendAndAck(c: TestClient, room: string, text: string, cid: string): Promise<Msg> {
  c.send({ type: "send", room, text, cid });
  return await c.next("ack", (m) => m.cid === cid);
}

/** alice sends three messages that bob holds; bob goes away. What bob held, and alice. */
async function bobLeavesAfterThree(s: TestServer) {
  const { c: alice } = await as(s, "alice");
  const { c: bob, joined } = await as(s, "bob");
  const seqs: number[] = [];
  for (const text of ["one", "two", "three"]) seqs.push((await sendAndAck(alice, "lobby", text, text)).seq);
  await bob.next("message", (m) => m.seq === seqs[2]);
  const held = { lastSeq: seqs[2], epoch: joined!.epoch as string, rev: joined!.rev as number };
  await bob.close();
  return { alice, seqs, held };
}

Deno.test("join {since, epoch, rev}: a message deleted and one edited while away come back in changes", async () => {
  await using s = await serve();
  const { alice, seqs, held } = await bobLeavesAfterThree(s);
  await using _alice = alice;
  alice.send({ type: "delete", room: "lobby", seq: seqs[0] });
  const del = await alice.next("deleted");
  alice.send({ type: "edit", room: "lobby", seq: seqs[1], text: "two, better" });
  const ed = await alice.next("edited");

  const { c: bob } = await as(s, "bob", "");
  await using _bob = bob;
  bob.send({ type: "join", room: "lobby", since: held.lastSeq, epoch: held.epoch, rev: held.rev ?? 0 });
  const j = await bob.next("joined");
  assert.deepEqual(j.messages, [], "nothing new after since");
  assert.deepEqual(
    (j.changes ?? []).map((m: Msg) => [m.seq, m.text, m.deleted ?? false]),
    [[seqs[0], "", true], [seqs[1], "two, better", false]],
    "bob learns of the delete and the edit of messages he held (seq <= since)",
  );
  assert.equal(typeof del.rev, "number", "a deleted line carries the rev of its change");
  assert.equal(ed.rev, del.rev + 1, "each change takes the next rev");
  assert.equal(j.changes[1].type, "message");
  assert.equal(typeof j.changes[1].editedTs, "number");
  assert.equal(j.rev, ed.rev, "joined carries the room's rev");
  assert.equal(j.changesTruncated, undefined);

  // Resumed again from that rev: nothing more to tell.
  bob.send({ type: "leave", room: "lobby" });
  await bob.next("left");
  bob.send({ type: "join", room: "lobby", since: held.lastSeq, epoch: held.epoch, rev: j.rev });
  const again = await bob.next("joined");
  assert.deepEqual(again.changes, []);
  assert.equal(again.rev, j.rev);
});

Deno.test("join {since, epoch, rev}: a change of a message newer than since is in messages, not changes", async () => {
  await using s = await serve();
  const { alice, seqs, held } = await bobLeavesAfterThree(s);
  await using _alice = alice;
  alice.send({ type: "delete", room: "lobby", seq: seqs[2] });
  await alice.next("deleted");
  const { c: bob } = await as(s, "bob", "");
  await using _bob = bob;
  bob.send({ type: "join", room: "lobby", since: seqs[1], epoch: held.epoch, rev: held.rev });
  const j = await bob.next("joined");
  assert.deepEqual(j.messages.map((m: Msg) => [m.seq, m.deleted]), [[seqs[2], true]]);
  assert.deepEqual(j.changes, []);
});

Deno.test("join without rev (an older client) gets no changes, as before", async () => {
  await using s = await serve();
  const { alice, seqs, held } = await bobLeavesAfterThree(s);
  await using _alice = alice;
  alice.send({ type: "delete", room: "lobby", seq: seqs[0] });
  await alice.next("deleted");
  const { c: bob } = await as(s, "bob", "");
  await using _bob = bob;
  bob.send({ type: "join", room: "lobby", since: held.lastSeq, epoch: held.epoch });
  const j = await bob.next("joined");
  assert.deepEqual(j.messages, []);
  assert.equal(j.changes, undefined);
  assert.equal(j.changesTruncated, undefined);
});

Deno.test("join {rev}: more changes than resumeCap say changesTruncated, with none listed", async () => {
  await using s = await serve({ resumeCap: 2 });
  const { alice, seqs, held } = await bobLeavesAfterThree(s);
  await using _alice = alice;
  for (const seq of seqs) {
    alice.send({ type: "delete", room: "lobby", seq });
    await alice.next("deleted", (m) => m.seq === seq);
  }
  const { c: bob } = await as(s, "bob", "");
  await using _bob = bob;
  bob.send({ type: "join", room: "lobby", since: held.lastSeq, epoch: held.epoch, rev: held.rev });
  const j = await bob.next("joined");
  assert.equal(j.changesTruncated, true);
  assert.deepEqual(j.changes, []);
  assert.equal(j.rev, held.rev + 3);
});

Deno.test("join {rev} of another epoch is answered like a join without since, with the room's rev", async () => {
  await using s = await serve();
  const { alice, seqs, held } = await bobLeavesAfterThree(s);
  await using _alice = alice;
  alice.send({ type: "delete", room: "lobby", seq: seqs[0] });
  await alice.next("deleted");
  const { c: bob } = await as(s, "bob", "");
  await using _bob = bob;
  bob.send({ type: "join", room: "lobby", since: held.lastSeq, epoch: "another-epoch", rev: held.rev });
  const j = await bob.next("joined");
  assert.equal(j.truncated, true);
  assert.equal(j.changes, undefined);
  assert.equal(j.rev, held.rev + 1);
});

Deno.test("join: rev must be a whole number", async () => {
  await using s = await serve();
  const { c } = await as(s, "carol", "");
  await using _c = c;
  c.send({ type: "join", room: "lobby", since: 0, rev: -1 });
  const e = await c.next("error");
  assert.equal(e.code, "bad_message");
  assert.match(e.message, /"rev"/);
});

// --- The engines: the rev of each change, and changes() as resume reads it, on every backend. ---

const kinds = engineKinds();

/** A room of its own per test: Redis runs are not flushed between engine tests. */
const newRoom = () => `r${crypto.randomUUID().slice(0, 8)}`;

async function appendTexts(engine: Engine, room: string, texts: string[]): Promise<number[]> {
  const drafts: Draft[] = texts.map((text) => ({
    room,
    from: "alice",
    text,
    ts: Date.now(),
    key: "k-alice",
  }));
  return (await engine.append(drafts)).map((a) => a.message.seq);
}

async function change(engine: Engine, room: string, seq: number, text?: string): Promise<number> {
  const r = await engine.changeMessage!(
    room,
    seq,
    text === undefined ? { kind: "delete", by: "mod" } : { kind: "edit", text, editedTs: Date.now() },
    {},
  );
  assert.ok(r.ok, `change of message ${seq} refused`);
  return r.rev;
}

const shape = (ms: ChatMessage[]) => ms.map((m) => [m.seq, m.text, m.deleted ?? false]);

for (const [kind, make] of kinds) {
  Deno.test(`${kind}.changeMessage() takes the room's next rev, per room, from 1`, async () => {
    const u = await make({ retainMessages: 0 });
    try {
      const [room, other] = [newRoom(), newRoom()];
      const seqs = await appendTexts(u.engine, room, ["a", "b"]);
      const [o1] = await appendTexts(u.engine, other, ["x"]);
      assert.equal((await u.engine.changes!(room, 0, 0, 0)).rev, 0, "no change yet");
      assert.equal(await change(u.engine, room, seqs[0], "a2"), 1);
      assert.equal(await change(u.engine, room, seqs[0]), 2);
      assert.equal(await change(u.engine, other, o1), 1, "another room counts on its own");
      // A refused change takes no rev.
      const refused = await u.engine.changeMessage!(room, seqs[0], { kind: "delete", by: "mod" }, {});
      assert.equal(refused.ok, false);
      assert.equal(await change(u.engine, room, seqs[1], "b2"), 3);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}.changes() reads the rev and the messages up to a seq changed after a rev, as they are now`, async () => {
    const u = await make({ retainMessages: 0 });
    try {
      const room = newRoom();
      const s = await appendTexts(u.engine, room, ["one", "two", "three", "four"]);
      await change(u.engine, room, s[0]); // rev 1
      await change(u.engine, room, s[1], "two'"); // rev 2
      await change(u.engine, room, s[1], "two''"); // rev 3: the same message again
      await change(u.engine, room, s[3]); // rev 4: newer than upTo below
      const all = await u.engine.changes!(room, s[2], 0, 10);
      assert.equal(all.rev, 4);
      assert.deepEqual(shape(all.messages), [[s[0], "", true], [s[1], "two''", false]]);
      assert.equal(typeof all.messages[1].editedTs, "number");
      assert.deepEqual(shape((await u.engine.changes!(room, s[2], 1, 10)).messages), [[
        s[1],
        "two''",
        false,
      ]]);
      assert.deepEqual((await u.engine.changes!(room, s[2], 3, 10)).messages, []);
      assert.deepEqual(shape((await u.engine.changes!(room, s[3], 3, 10)).messages), [[s[3], "", true]]);
      assert.equal((await u.engine.changes!(room, s[3], 0, 2)).messages.length, 2, "at most limit");
      assert.deepEqual((await u.engine.changes!(room, s[3], 0, 0)).messages, []);
      const { epoch } = await u.engine.after(room, 0, 1);
      assert.equal(all.epoch, epoch);
      // A room nobody wrote to: rev 0.
      assert.deepEqual((await u.engine.changes!(newRoom(), 10, 0, 10)).messages, []);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}.changes() leaves out what retention removed; the rev stays`, async () => {
    const u = await make({ retainMessages: 2 });
    try {
      const room = newRoom();
      const s = await appendTexts(u.engine, room, ["a", "b"]);
      await change(u.engine, room, s[0]);
      await change(u.engine, room, s[1], "b2");
      await appendTexts(u.engine, room, ["c", "d"]);
      await u.engine.prune(Date.now());
      const page = await u.engine.changes!(room, 10, 0, 10);
      assert.equal(page.rev, 2);
      assert.deepEqual(page.messages, []);
    } finally {
      await u.cleanup();
    }
  });

  if (kind !== "MemoryStore") {
    Deno.test(`${kind}: the rev and the changed messages' revs survive a restart`, async () => {
      const u = await make({ retainMessages: 0 });
      try {
        const room = newRoom();
        const s = await appendTexts(u.engine, room, ["a", "b"]);
        await change(u.engine, room, s[0]);
        await change(u.engine, room, s[1], "b2");
        const engine = await u.reopen!();
        const page = await engine.changes!(room, s[1], 1, 10);
        assert.equal(page.rev, 2);
        assert.deepEqual(shape(page.messages), [[s[1], "b2", false]]);
        assert.equal(await change(engine, room, s[1]), 3);
      } finally {
        await u.cleanup();
      }
    });
  }
}
