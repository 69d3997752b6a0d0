/** lib/limits.ts: the token bucket every entry point uses, and bearer secrets. */
import assert from "node:assert/strict";
import { BearerSecrets, fullBucket, takeToken } from "../../lib/limits.ts";

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
