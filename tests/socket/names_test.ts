/**
 * Names over real WebSockets (lookalikes of a name online cannot take it or its direct messages, a
 * name mixing scripts is refused, a suffixed name is cut at a character boundary), then the rules of
 * `lib/names.ts` one function at a time.
 */
import assert from "node:assert/strict";
import { canonicalName, NAME_MAX_CHARS, nameKeys, nameProblem, withSuffix } from "../../lib/names.ts";
import type { Sharing, SharingEvents } from "../../lib/sharing.ts";
import { startServer, TestClient, wsHeaders } from "../helpers/test_server.ts";

/** U+20000, a CJK Extension B ideograph: two UTF-16 units, one code point, kept as is by NFKC. */
const WIDE = "\u{20000}";

Deno.test("a suffixed name is cut by code point: 32 characters, never half a surrogate pair", async () => {
  assert.equal(WIDE.normalize("NFKC"), WIDE);
  await using s = await startServer();
  const wanted = "a" + WIDE.repeat(31); // 32 code points, 63 UTF-16 units
  await using a = await TestClient.connect(s, { name: wanted });
  assert.equal(a.all("welcome")[0].name, wanted);
  await using b = await TestClient.connect(s, { name: wanted });
  const name: string = b.all("welcome")[0].name;
  assert.ok(name.isWellFormed(), `no lone surrogate in ${JSON.stringify(name)}`);
  assert.equal(name, "a" + WIDE.repeat(29) + "-2");
  assert.equal([...name].length, 32);
  // The cut name is a valid name: it can be asked for again and is then taken.
  await using c = await TestClient.connect(s, { name });
  assert.equal(c.all("welcome")[0].name, "a" + WIDE.repeat(29) + "-3");
});

/** Lookalikes of `alice` that one script can write: each must end up as a different, suffixed name. */
const SAME_SKELETON: [string, string][] = [
  ["ａｌｉｃｅ", "full-width letters (NFKC folds them to ASCII)"],
  ["\u{1D41A}lice", "mathematical bold a (NFKC folds it to ASCII)"],
  ["alıce", "dotless i, U+0131"],
  ["aIice", "capital I for l"],
  ["\u0430\u04C0\u0456\u0441\u0435", "all Cyrillic: а Ӏ і с е"],
  ["ALICE", "case"],
];

Deno.test("lookalikes of a name online get a suffixed name and none of its direct messages", async () => {
  await using s = await startServer();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  await using bob = await TestClient.connect(s, { name: "bob", room: "" });
  const fakes: TestClient[] = [];
  try {
    for (const [wanted, why] of SAME_SKELETON) {
      const c = await TestClient.connect(s, { name: wanted, room: "" });
      fakes.push(c);
      const w = c.all("welcome")[0];
      assert.match(w.name, /-\d+$/, `${why}: ${JSON.stringify(wanted)} got ${JSON.stringify(w.name)}`);
      assert.match(w.notice, /is taken/, why);
      // Nor can the lookalike rename itself into its lookalike afterwards.
      c.send({ type: "nick", name: wanted });
      const e = await c.next("error");
      assert.equal(e.code, "name_taken", `${why}: ${e.message}`);
      assert.match(e.message, /is taken/);
    }
    // Capitals: Greek ΑΝΝΑ looks like ANNA (though small αννα does not look like anna).
    await using anna = await TestClient.connect(s, { name: "ANNA", room: "" });
    const greek = await TestClient.connect(s, { name: "\u0391\u039D\u039D\u0391", room: "" });
    fakes.push(greek);
    assert.equal(greek.all("welcome")[0].name, "\u0391\u039D\u039D\u0391-2");
    assert.ok(anna);
    bob.send({ type: "send", to: "alice", text: "for alice only", cid: "dm1" });
    const got = await alice.next("message");
    assert.equal(got.text, "for alice only");
    assert.equal(got.to, "alice");
    assert.equal((await bob.next("ack")).to, "alice");
    // A DM to a lookalike spelling reaches the one person who holds that skeleton: alice.
    bob.send({ type: "send", to: "ａｌｉｃｅ", text: "still alice", cid: "dm2" });
    assert.equal((await alice.next("message")).text, "still alice");
    await bob.next("ack");
    for (const c of fakes) {
      c.send({ type: "ping" });
      await c.next("pong");
      assert.deepEqual(c.all("message"), [], "a lookalike received nothing addressed to alice");
    }
  } finally {
    for (const c of fakes) await c.close();
  }
});

Deno.test("a name mixing scripts is refused with bad_name: at the upgrade, in nick and as a DM target", async () => {
  await using s = await startServer();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  for (const mixed of ["\u0430lice", "ali\u0441e", "\u03B1lice", "bob\u0430"]) { // Cyrillic а, с; Greek α
    const res = await fetch(`${s.url}/ws?name=${encodeURIComponent(mixed)}`, { headers: wsHeaders() });
    assert.equal(res.status, 400, mixed);
    const body = await res.json();
    assert.equal(body.error.code, "bad_name");
    assert.match(body.error.message, /^Cannot connect: ".+" mixes scripts/);
    alice.send({ type: "nick", name: mixed });
    const e = await alice.next("error");
    assert.equal(e.code, "bad_name");
    assert.match(e.message, /^Cannot change name: ".+" mixes scripts \((Cyrillic|Greek), Latin\)/);
    alice.send({ type: "send", to: mixed, text: "x" });
    assert.equal((await alice.next("error")).code, "bad_name");
  }
  // One script at a time is fine, and so are digits and _ - . with any script; so is Latin with
  // Han, Hiragana and Katakana, as Japanese is written.
  for (
    const ok of ["\u0430\u043B\u0451\u043D\u0430", "Δήμητρα_7", "zoë.k-2", "田中さん", "sato太郎", "カタカナ"]
  ) {
    await using c = await TestClient.connect(s, { name: ok, room: "" });
    assert.equal(c.all("welcome")[0].name, ok.normalize("NFKC"));
  }
});

Deno.test("a name is shown as its NFKC form: decomposed and full-width input arrive composed and plain", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "Zoe\u0308", room: "r" });
  assert.equal(a.all("welcome")[0].name, "Zo\u00EB");
  assert.deepEqual((await a.next("joined")).members, ["Zo\u00EB"]);
  await using b = await TestClient.connect(s, { name: "ｂｏｂ", room: "" });
  assert.equal(b.all("welcome")[0].name, "bob");
  assert.equal(b.all("welcome")[0].notice, undefined);
  b.send({ type: "nick", name: "ｂｏｂｂｙ" });
  assert.deepEqual(await b.next("nick"), { type: "nick", old: "bob", name: "bobby" });
});

Deno.test("nameKeys() share a key for case variants and TR39 lookalikes, and none for different names", () => {
  const same = (a: string, b: string) => nameKeys(a).some((k) => nameKeys(b).includes(k));
  for (const [look, why] of SAME_SKELETON) assert.ok(same(canonicalName(look), "alice"), why);
  assert.ok(same("\u0251lice", "alice"), "Latin alpha, U+0251");
  assert.ok(same("b0b", "bob"));
  assert.ok(same("rnary", "Mary"), "TR39: m looks like r + n");
  assert.ok(same("\u0392\u039F\u0392", "BOB"), "Greek capitals look like Latin ones");
  assert.ok(same("\u0392\u039F\u0392", "\u03B2\u03BF\u03B2"), "and are the capitals of Greek letters");
  assert.ok(same("Ian", "lan"), "a capital I looks like l");
  for (
    const [a, b] of [["alice", "alicia"], ["bob", "rob"], ["zoë", "zoe"], ["ann", "anna"], ["田中", "田口"]]
  ) {
    assert.ok(!same(a, b), `${a} / ${b}`);
  }
  // Small β does not look like b, and a small i is not an l, so these stay different names.
  assert.ok(!same("\u03B2\u03BF\u03B2", "bob"));
  assert.ok(!same("Lia", "Ila"));
  assert.ok(!same("ian", "lan"));
  // The ASCII table gives what the general path gives: a trailing é sends the name down the latter.
  assert.deepEqual(nameKeys("MAry-I0_x"), ["rnary-io_x", "mary-lo_x"]);
  assert.deepEqual(nameKeys("MAry-I0_\u00E9").map((k) => k.slice(0, -2)), ["rnary-io_", "mary-lo_"]);
});

Deno.test("nameProblem() refuses a name mixing scripts; one script, or Latin with CJK, passes", () => {
  for (
    const ok of [
      "alice",
      "zoë.k-2",
      "\u0430\u043B\u0451\u043D\u0430",
      "Δήμητρα_7",
      "田中さん",
      "sato太郎",
      "김민준",
      "٣ليلى",
    ]
  ) {
    assert.equal(nameProblem(ok), undefined, ok);
  }
  for (const mixed of ["\u0430lice", "\u03B1lice", "alice\u0663", "ליאa", "\u0430\u03B1"]) {
    assert.match(nameProblem(mixed) ?? "", /mixes scripts/, mixed);
  }
  assert.match(nameProblem("\u0430lice")!, /\(Cyrillic, Latin\)/);
  assert.match(nameProblem("x".repeat(NAME_MAX_CHARS + 1))!, /names are 1-32 letters/);
  assert.match(nameProblem("a b")!, /names are 1-32 letters/);
});

Deno.test("nameProblem() knows the script of every letter and digit this runtime knows", () => {
  // A single letter is always one script; if a newer Unicode adds a script that lib/names.ts does
  // not list, its letters would be refused as mixed, and this fails.
  const letter = /^[\p{L}\p{N}]$/u;
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (!letter.test(c) || c.normalize("NFKC") !== c) continue;
    if (nameProblem(c) !== undefined) assert.fail(`U+${cp.toString(16).toUpperCase()}: ${nameProblem(c)}`);
  }
});

Deno.test("canonicalName() is NFKC, and leaves input too long to be a name as it is", () => {
  assert.equal(canonicalName("ａｌｉｃｅ"), "alice");
  assert.equal(canonicalName("\u{1D41A}\u{1D41B}"), "ab");
  assert.equal(canonicalName("Zoe\u0308"), "Zo\u00EB");
  assert.equal(canonicalName("alice_2"), "alice_2");
  const long = "ａ".repeat(1000);
  assert.equal(canonicalName(long), long);
  assert.ok(nameProblem(canonicalName(long)));
});

Deno.test("withSuffix() keeps a name within NAME_MAX_CHARS code points", () => {
  assert.equal(withSuffix("alice", "-2"), "alice-2");
  assert.equal(withSuffix("x".repeat(32), "-10"), "x".repeat(29) + "-10");
  assert.equal(withSuffix(WIDE.repeat(32), "-2"), WIDE.repeat(30) + "-2");
  assert.equal(
    withSuffix(WIDE.repeat(15), "-2"),
    WIDE.repeat(15) + "-2",
    "30 units but 15 code points: no cut",
  );
});

Deno.test("nameProblem() reserves the server's own name and its lookalikes", () => {
  for (const n of ["system", "System", "SYSTEM", "sуstem"]) {
    assert.match(nameProblem(n) ?? "", /reserved for the server/, n);
  }
  assert.equal(nameProblem("systems"), undefined);
});

Deno.test("a nick sent right after connecting wins over the connect-time name claim that answers later", async () => {
  // Names shared across processes, as on Redis, with the connect-time lookup answering 100 ms late:
  // the nick's claim is made while the connect-time claim has not been made yet.
  const holder = new Map<string, string>(); // name -> key
  const held = (key: string) => [...holder].find(([, k]) => k === key)?.[0];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const present = new Map<string, Set<string>>(); // room -> names
  const subscribers = new Set<SharingEvents>();
  const sharing: Sharing = {
    spansProcesses: true,
    subscribe: (events) => (subscribers.add(events), () => subscribers.delete(events)),
    publishLine: (room, line) => subscribers.forEach((s) => s.line(room, line)),
    watch: () => Promise.resolve(),
    unwatch: () => {},
    presence: (room, name, on) => {
      const names = present.get(room) ?? new Set();
      present.set(room, names);
      on ? names.add(name) : names.delete(name);
      return Promise.resolve();
    },
    renamed: (old, name) => {
      for (const names of present.values()) if (names.delete(old)) names.add(name);
      return Promise.resolve();
    },
    publishRename: () => {},
    members: (room) => Promise.resolve([...present.get(room) ?? []].sort()),
    displays: () => Promise.resolve(undefined),
    memberCount: () => Promise.resolve(0),
    memberPage: () => Promise.resolve({ names: [], count: 0 }),
    present: () => Promise.resolve([]),
    occupiedRooms: () => Promise.resolve({ rooms: [] }),
    nameOf: (key) => {
      const name = held(key); // read now, answered late (as a slow round trip)
      return new Promise((resolve) => {
        const t = setTimeout(() => (timers.delete(t), resolve(name)), 100);
        timers.add(t);
      });
    },
    claimName: (key, name) => {
      if (holder.has(name) && holder.get(name) !== key) return Promise.resolve(false);
      const old = held(key);
      if (old !== undefined) holder.delete(old);
      holder.set(name, key);
      return Promise.resolve(true);
    },
    releaseName: () => {},
    whoIs: () => Promise.resolve(undefined),
    sendToPerson: (key, line) => (subscribers.forEach((s) => s.person(key, line)), Promise.resolve()),
    toSession: () => Promise.resolve(false),
    holdSession: () => Promise.resolve(),
    releaseSession: () => {},
  };
  await using s = await startServer({ store: "memory" }, { sharing });
  await using bob = await TestClient.connect(s, { name: "bob" });
  bob.send({ type: "nick", name: "robert" });
  assert.equal((await bob.next("nick")).name, "robert");
  await new Promise((r) => setTimeout(r, 250)); // the connect-time claim has answered
  assert.deepEqual(bob.all("nick").map((m) => m.name), ["robert"], "not renamed back");
  assert.deepEqual([...holder.keys()], ["robert"], "the name held everywhere is the one asked for last");
  await using carol = await TestClient.connect(s, { name: "carol" });
  assert.ok((await carol.next("joined")).members.includes("robert"));
  for (const t of timers) clearTimeout(t);
});
