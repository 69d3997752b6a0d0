/**
 * Names over real WebSockets: lookalikes of a name online cannot take it or its direct messages,
 * and a suffixed name is cut at a character boundary, never inside one.
 */
import assert from "node:assert/strict";
import { startServer, TestClient } from "./helpers.ts";

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
