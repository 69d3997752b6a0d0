/**
 * Two small guards every entry point shares: a token bucket (how often one client may ask) and bearer
 * secrets (an `Authorization: Bearer` header checked against configured secrets in constant time).
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** A token bucket's state: the tokens left and when they were counted (performance.now ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/** A full bucket of `cap` tokens at `now`. */
export function fullBucket(cap: number, now: number): Bucket {
  return { tokens: cap, at: now };
}

/**
 * Refills `b` at `perSecond` up to `cap` and takes one token if there is one. Returns whether it took
 * one; a refused take leaves the bucket refilled, so the caller only decides what to answer.
 */
export function takeToken(b: Bucket, now: number, perSecond: number, cap: number): boolean {
  b.tokens = Math.min(cap, b.tokens + (now - b.at) * perSecond / 1000);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** Configured bearer secrets, kept as digests of equal length so a comparison takes the same time. */
export class BearerSecrets {
  readonly #digests: Uint8Array[];

  constructor(secrets: readonly string[]) {
    this.#digests = secrets.filter((s) => s !== "").map(sha256);
  }

  /** Whether any secret is configured. */
  get size(): number {
    return this.#digests.length;
  }

  /**
   * Which secret `req`'s `Authorization: Bearer <secret>` header carries (its index), -1 when it
   * carries none of them, undefined when it has no bearer header at all.
   */
  match(req: Request): number | undefined {
    const m = /^Bearer +([^\s]+) *$/i.exec(req.headers.get("authorization") ?? "");
    if (!m) return undefined;
    const given = sha256(m[1]);
    return this.#digests.findIndex((d) => timingSafeEqual(d, given));
  }
}

function sha256(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/**
 * Says whether a key's work is due: at most once per `everyMs` per key. What it remembers is only
 * the keys seen within the last `everyMs` (older ones are swept as it grows), so a stream of new keys
 * does not grow it without bound.
 */
export class OncePer {
  readonly #everyMs: number;
  readonly #last = new Map<string, number>();
  #sweepAt = 1024;

  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  /** Whether `key`'s work is due at `now` (ms); if so it counts as done now. */
  due(key: string, now: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.#everyMs) return false;
    this.#last.set(key, now);
    if (this.#last.size >= this.#sweepAt) {
      for (const [k, t] of this.#last) if (now - t >= this.#everyMs) this.#last.delete(k);
      this.#sweepAt = Math.max(1024, this.#last.size * 2);
    }
    return true;
  }

  /** How many keys it remembers now. */
  get size(): number {
    return this.#last.size;
  }

  /** Forgets `key`: its work failed, so the next time it is due at once. */
  forget(key: string): void {
    this.#last.delete(key);
  }
}
