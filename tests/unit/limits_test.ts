/** lib/limits.ts: the token bucket every entry point uses, and bearer secrets. */
import assert from "node:assert/strict";
import { BearerSecrets, fullBucket, OncePer, takeToken } from "../../lib/limits.ts";

Deno.test("takeToken() allows a burst, then refills at the rate, never above the cap", () => {
  const b = fullBucket(3, 0);
  assert.deepEqual([1, 2, 3, 4].map(() => takeToken(b, 0, 10, 3)), [true, true, true, false]);
  assert.equal(takeToken(b, 50, 10, 3), false, "half a token after 50 ms at 10/s");
  assert.equal(takeToken(b, 100, 10, 3), true, "one token after 100 ms");
  takeToken(b, 60_000, 10, 3);
  assert.ok(b.tokens <= 3 - 1 + 1e-9, `capped (${b.tokens})`);
});

Deno.test("BearerSecrets.match() finds the secret a header carries, -1 for another, undefined for none", () => {
  const secrets = new BearerSecrets(["", "alpha", "beta"]);
  const req = (h?: string) => new Request("http://x/", { headers: h ? { authorization: h } : {} });
  assert.equal(secrets.size, 2, "empty secrets are not secrets");
  assert.equal(secrets.match(req("Bearer beta")), 1);
  assert.equal(secrets.match(req("bearer  alpha ")), 0);
  assert.equal(secrets.match(req("Bearer gamma")), -1);
  assert.equal(secrets.match(req("Basic YWxwaGE=")), undefined);
  assert.equal(secrets.match(req()), undefined);
});

Deno.test("OncePer: a key is due once per period, and keys not seen for a period are swept as it grows", () => {
  const once = new OncePer(60_000);
  assert.equal(once.due("a", 0), true);
  assert.equal(once.due("a", 59_999), false);
  assert.equal(once.due("a", 60_000), true);
  once.forget("a");
  assert.equal(once.due("a", 60_001), true, "forgotten: due at once");
  // A stream of new keys: what it remembers stays about what one period holds.
  for (let i = 0; i < 100_000; i++) once.due(`k${i}`, 120_000 + i * 10);
  assert.ok(once.size <= 2 * 6_000 + 1024, `${once.size} keys remembered`);
});
