/**
 * The server API: HTTP JSON under `/api/` for the application that hosts the chat. Bearer API keys
 * (several, for rotation), a token bucket per key and one per address for wrong keys, capped bodies, and
 * the socket's error codes.
 * `docs/api.md` is the human version of this file.
 * @module
 */
import type { Chat } from "./chat.ts";
import { BearerSecrets, type Bucket, fullBucket, takeToken } from "./limits.ts";
import type { Config } from "./config.ts";
import type { RoomChange, RoomRules } from "./domain.ts";
import type { Logger } from "./log.ts";
import { type Actor, SYSTEM_ACTOR } from "./moderation.ts";
import {
  MAX_SANCTION_SECONDS,
  normalizeDisplay,
  normalizeName,
  normalizeRoom,
  parseReason,
  parseRules,
  parseSearch,
  parseUid,
  ProtocolError,
  wireMessage,
} from "./protocol.ts";
import { keyOfUid } from "./identity.ts";

/** HTTP status of each error code the API answers with. */
const STATUS: Record<string, number> = {
  bad_json: 400,
  bad_message: 400,
  bad_room: 400,
  bad_name: 400,
  text_too_long: 400,
  unauthorized: 401,
  forbidden: 403,
  not_allowed: 403,
  not_found: 404,
  message_not_found: 404,
  user_not_found: 404,
  method_not_allowed: 405,
  body_too_big: 413,
  name_taken: 409,
  rate_limited: 429,
  bad_query: 400,
  unsupported: 501,
  store_failed: 500,
  unavailable: 503,
  shutting_down: 503,
};

/** An API refusal: a stable code, a sentence, an HTTP status. */
class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly headers?: Record<string, string>) {
    super(message);
  }
}

type Body = Record<string, unknown>;

/**
 * How many addresses with wrong keys are kept before the refilled ones are dropped (a full bucket and
 * no entry mean the same, so this bounds memory without changing an answer).
 */
const FAILURE_SWEEP_AT = 4096;

/** The 429 for an address out of wrong-key tokens, with when the next try is taken. */
function tooManyFailures(b: Bucket, perMinute: number): ApiError {
  const wait = Math.max(1, Math.ceil((1 - b.tokens) * 60 / perMinute));
  return new ApiError(
    "rate_limited",
    `Too many requests with a wrong API key from this address: at most ${perMinute} a minute; retry in ${wait} s`,
    { "retry-after": String(wait) },
  );
}
type Route = (m: RegExpExecArray, req: Request, url: URL) => Promise<unknown>;

/**
 * Builds the `/api/` handler, or undefined when no API key is configured (the API is off and its
 * paths answer 404 like any unknown path).
 */
export function createApi(
  chat: Chat,
  config: Config,
  log: Logger,
): ((req: Request, url: URL, address: string) => Promise<Response>) | undefined {
  const keys = new BearerSecrets(config.apiKeys.split(","));
  if (keys.size === 0) return undefined;
  const buckets = new Map<number, Bucket>();
  /** Wrong keys per address: a missing entry is a full bucket, so refilled ones are dropped. */
  const failures = new Map<string, Bucket>();
  const perMinute = config.apiAuthFailures;

  const failureBucket = (address: string, t: number): Bucket => {
    let b = failures.get(address);
    if (b) return b;
    if (failures.size >= FAILURE_SWEEP_AT) {
      for (const [a, f] of failures) {
        if (f.tokens + (t - f.at) * perMinute / 60_000 >= perMinute) failures.delete(a);
      }
    }
    failures.set(address, b = fullBucket(perMinute, t));
    return b;
  };

  /**
   * Which key the request carries (its index), compared in constant time per key. An address whose
   * wrong keys used up its bucket is refused before any comparison, right key or not: otherwise the
   * one answer that is not 429 would tell a guesser it found a key.
   */
  const authorize = (req: Request, address: string): number => {
    const t = performance.now();
    const b = failures.get(address);
    if (b) {
      // Refilled without taking: only a failure spends a token.
      b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMinute / 60_000);
      b.at = t;
      if (b.tokens < 1) throw tooManyFailures(b, perMinute);
    }
    const i = keys.match(req) ?? -1;
    if (i < 0) {
      takeToken(failureBucket(address, t), t, perMinute / 60, perMinute);
      throw new ApiError("unauthorized", "The API needs the header Authorization: Bearer <api key>", {
        "www-authenticate": `Bearer realm="api"`,
      });
    }
    return i;
  };

  const limit = (key: number): void => {
    const t = performance.now();
    const rate = config.apiRate;
    const b = buckets.get(key) ?? fullBucket(rate, t);
    buckets.set(key, b);
    if (!takeToken(b, t, rate, rate)) {
      throw new ApiError("rate_limited", `Slow down: at most ${rate} requests a second per API key`, {
        "retry-after": "1",
      });
    }
  };

  const body = async (req: Request): Promise<Body> => {
    const max = config.apiMaxBody;
    const declared = Number(req.headers.get("content-length") ?? "0");
    if (declared > max) throw new ApiError("body_too_big", `Request bodies are at most ${max} bytes`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of req.body ?? []) {
      size += chunk.byteLength;
      // Read no further than the cap: a body without a length is cut off here, not buffered.
      if (size > max) throw new ApiError("body_too_big", `Request bodies are at most ${max} bytes`);
      chunks.push(chunk);
    }
    if (size === 0) return {};
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(concat(chunks, size)));
    } catch {
      throw new ApiError("bad_json", "The body must be one JSON object, this one does not parse");
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new ApiError("bad_json", "The body must be one JSON object");
    }
    return v as Body;
  };

  const routes: [string, RegExp, Route][] = [
    ["GET", /^\/api\/rooms$/, () => Promise.resolve({ rooms: chat.roomCounts() })],
    ["GET", /^\/api\/search$/, async (_m, _req, url) => {
      const o: Record<string, unknown> = { type: "search" };
      for (const k of ["q", "room", "conv", "from", "before", "order"]) {
        const v = url.searchParams.get(k);
        if (v !== null) o[k] = v;
      }
      const limit = intParam(url, "limit", 1);
      if (limit !== undefined) o.limit = limit;
      const { type: _, ...answer } = await chat.search(parseSearch(o));
      return answer;
    }],
    ["POST", /^\/api\/rooms\/([^/]+)\/messages$/, async (m, req) => {
      const b = await body(req);
      const text = textOf(b, config.maxTextChars);
      const actor = await actorOf(chat, b);
      const cid = optString(b, "cid", 64);
      const message = await chat.post(actor, room(m[1]), text, cid);
      return { message: wireMessage(message) };
    }],
    ["GET", /^\/api\/rooms\/([^/]+)\/messages$/, async (m, _req, url) => {
      const before = intParam(url, "before") ?? Number.MAX_SAFE_INTEGER;
      const n = intParam(url, "limit", 1) ?? config.historyPage;
      const page = await chat.page(room(m[1]), before, n);
      return { messages: page.messages.map(wireMessage), complete: page.complete };
    }],
    ["DELETE", /^\/api\/rooms\/([^/]+)\/messages\/(\d{1,15})$/, async (m) => {
      await chat.deleteMessage(SYSTEM_ACTOR, room(m[1]), Number(m[2]));
      return { deleted: Number(m[2]) };
    }],
    ["GET", /^\/api\/rooms\/([^/]+)\/presence$/, (m) => chat.presenceShown(room(m[1]))],
    ["GET", /^\/api\/rooms\/([^/]+)\/settings$/, async (m) => await chat.rulesOf(room(m[1]))],
    ["PATCH", /^\/api\/rooms\/([^/]+)\/settings$/, async (m, req) => {
      const rules = rulesOf(await body(req));
      return await chat.changeRoom(SYSTEM_ACTOR, room(m[1]), { kind: "rules", rules });
    }],
    ["GET", /^\/api\/rooms\/([^/]+)\/access$/, async (m) => await chat.accessList(room(m[1]))],
    ["PUT", /^\/api\/rooms\/([^/]+)\/members\/([^/]+)$/, async (m) => {
      await change(m, { kind: "allow", uid: uid(m[2]) });
      return { added: uid(m[2]) };
    }],
    ["DELETE", /^\/api\/rooms\/([^/]+)\/members\/([^/]+)$/, async (m) => {
      await change(m, { kind: "disallow", uid: uid(m[2]) });
      return { removed: uid(m[2]) };
    }],
    ["POST", /^\/api\/rooms\/([^/]+)\/kick\/([^/]+)$/, async (m, req) => {
      const b = await body(req);
      const target = { uid: uid(m[2]), name: await chat.nameOfUid(uid(m[2])) };
      await chat.kick(SYSTEM_ACTOR, room(m[1]), target, parseReason(b));
      return { kicked: target.uid };
    }],
    ["PUT", /^\/api\/rooms\/([^/]+)\/(bans|mutes)\/([^/]+)$/, async (m, req) => {
      const b = await body(req);
      const seconds = optInt(b, "seconds", 1, MAX_SANCTION_SECONDS);
      const until = seconds === undefined ? 0 : Date.now() + seconds * 1000;
      const target = { uid: uid(m[3]), name: await chat.nameOfUid(uid(m[3])) };
      const kind = m[2] === "bans" ? "ban" : "mute";
      const reason = parseReason(b);
      await chat.sanction(SYSTEM_ACTOR, room(m[1]), target, { kind, uid: target.uid, until }, reason);
      return { [kind === "ban" ? "banned" : "muted"]: target.uid, until };
    }],
    ["DELETE", /^\/api\/rooms\/([^/]+)\/(bans|mutes)\/([^/]+)$/, async (m) => {
      const target = { uid: uid(m[3]), name: await chat.nameOfUid(uid(m[3])) };
      const kind = m[2] === "bans" ? "unban" : "unmute";
      await chat.sanction(SYSTEM_ACTOR, room(m[1]), target, { kind, uid: target.uid });
      return { [kind === "unban" ? "unbanned" : "unmuted"]: target.uid };
    }],
    ["GET", /^\/api\/rooms\/([^/]+)\/audit$/, async (m, _req, url) => {
      const before = intParam(url, "before") ?? Number.MAX_SAFE_INTEGER;
      const n = intParam(url, "limit", 1) ?? config.historyPage;
      return await chat.auditPage(room(m[1]), before, n);
    }],
    ["POST", /^\/api\/users\/([^/]+)\/disconnect$/, async (m, req) => {
      const b = await body(req);
      const reason = parseReason(b) ?? "disconnected by the host application";
      return { disconnected: uid(m[1]), here: await chat.disconnectPerson(uid(m[1]), reason) };
    }],
  ];

  const change = async (m: RegExpExecArray, c: RoomChange): Promise<RoomRules> =>
    await chat.changeRoom(SYSTEM_ACTOR, room(m[1]), c);

  return async (req, url, address) => {
    try {
      const key = authorize(req, address);
      limit(key);
      const path = url.pathname;
      let allowed: string[] = [];
      for (const [method, re, route] of routes) {
        const m = re.exec(path);
        if (!m) continue;
        if (method !== req.method) {
          allowed.push(method);
          continue;
        }
        const result = await route(m, req, url);
        return Response.json(result, {
          status: req.method === "POST" && path.endsWith("/messages") ? 201 : 200,
          headers: { "cache-control": "no-store" },
        });
      }
      if (allowed.length > 0) {
        allowed = [...new Set(allowed)];
        throw new ApiError("method_not_allowed", `${path} answers ${allowed.join(", ")}, not ${req.method}`, {
          allow: allowed.join(", "),
        });
      }
      throw new ApiError("not_found", `No API endpoint ${req.method} ${path}; see docs/api.md`);
    } catch (e) {
      if (e instanceof ApiError || e instanceof ProtocolError) {
        const headers = { "cache-control": "no-store", ...(e instanceof ApiError ? e.headers : {}) };
        return Response.json({ error: { code: e.code, message: e.message } }, {
          status: STATUS[e.code] ?? 400,
          headers,
        });
      }
      log.error("api request failed", { path: url.pathname, error: String((e as Error)?.stack ?? e) });
      return Response.json({ error: { code: "internal", message: "The request failed on the server" } }, {
        status: 500,
      });
    }
  };
}

/**
 * Who a posted message is from: `{uid, name?, display?}` of a user of the host (under their own name
 * when `name` is left out), or the system.
 */
async function actorOf(chat: Chat, b: Body): Promise<Actor> {
  if (b.uid === undefined) {
    if (b.name !== undefined || b.display !== undefined) {
      throw new ApiError("bad_message", `"name" and "display" need a "uid" too`);
    }
    return SYSTEM_ACTOR;
  }
  const id = uid(typeof b.uid === "string" ? b.uid : "");
  const key = keyOfUid(id);
  if (b.display !== undefined && typeof b.display !== "string") {
    throw new ApiError("bad_message", `"display" must be a string`);
  }
  const display = typeof b.display === "string" ? normalizeDisplay(b.display, "Cannot post") : undefined;
  const shown = display === undefined ? {} : { display };
  if (typeof b.name !== "string") {
    return { key, uid: id, name: await chat.nameOfUid(id), role: "member", ...shown };
  }
  const name = normalizeName(b.name, "Cannot post");
  // A name someone else holds would put words in their mouth: the room could not tell the two apart.
  if (await chat.nameHolder(key, name) !== undefined) {
    throw new ApiError(
      "name_taken",
      `Cannot post as "${name}": someone else holds that name (or one that looks like it); leave out "name" to post under the user's own`,
    );
  }
  return { key, uid: id, name, role: "member", ...shown };
}

/** The settings a PATCH sets: the `room` frame's rules, and nothing else. */
function rulesOf(b: Body): Partial<RoomRules> {
  for (const k of Object.keys(b)) {
    if (!["topic", "private", "readOnly", "slowModeSeconds"].includes(k)) {
      throw new ApiError("bad_message", `Unknown setting ${JSON.stringify(k.slice(0, 40))}`);
    }
  }
  return parseRules(b, "A settings change");
}

function textOf(b: Body, max: number): string {
  if (typeof b.text !== "string" || b.text.trim() === "") {
    throw new ApiError("bad_message", `A message needs a non-empty string "text"`);
  }
  if (b.text.length > max) {
    throw new ApiError("text_too_long", `Messages are at most ${max} characters, got ${b.text.length}`);
  }
  return b.text;
}

function room(raw: string): string {
  return normalizeRoom(decode(raw));
}

function uid(raw: string): string {
  return parseUid(decode(raw));
}

function decode(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError("bad_message", "The path is not valid percent-encoding");
  }
}

function optString(b: Body, field: string, max: number, emptyOk = false): string | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  // deno-lint-ignore no-control-regex
  if (typeof v !== "string" || v.length > max || /[\u0000-\u001f\u007f]/.test(v) || (!emptyOk && !v.trim())) {
    throw new ApiError("bad_message", `"${field}" must be one line of ${emptyOk ? 0 : 1}-${max} characters`);
  }
  return v.trim();
}

function optInt(b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ApiError("bad_message", `"${field}" must be a whole number from ${min} to ${max}`);
  }
  return v;
}

function intParam(url: URL, name: string, min = 0): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  // Up to Number.MAX_SAFE_INTEGER (16 digits), the value a client gets for "the newest" elsewhere.
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) {
    throw new ApiError("bad_message", `"${name}" must be a whole number of ${min} or more`);
  }
  return Number(v);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.byteLength;
  return out;
}
