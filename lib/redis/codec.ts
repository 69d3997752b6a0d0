/**
 * What the Redis engine and Redis say to each other, both ways, in one place: the arguments a script
 * takes that need more than `String(x)`, every script's reply as named fields, a stream entry as a
 * message, and the lines of the room, people and rename channels. Replies are read by position here
 * and only here; the scripts' headers (`lib/redis/lua/*.lua`) say what each position holds.
 * @module
 */
import type {
  AccessList,
  AuditEntry,
  ChangeResult,
  ChangesPage,
  ConversationEntry,
  Draft,
  MessageReactions,
  Person,
  ReactResult,
  ReadMark,
  RoomAccess,
  RoomChange,
  RoomRules,
} from "../engine.ts";
import type { ChangeInfo, ChatMessage } from "../domain.ts";
import { holds } from "../store.ts";

/** What JSON must escape in a string: a quote, a backslash, a control character. */
// deno-lint-ignore no-control-regex -- control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** `s` as it reads back from UTF-8: a lone surrogate is U+FFFD. */
const wellFormed = (s: string) => s.isWellFormed() ? s : s.toWellFormed();

/**
 * The seven values append.lua takes per message: person key, cid, from, text, ts, extras (reply,
 * mentions and display name in one value, "" for none, as most messages: fewer to encode) and the
 * channel form. A display name holds no line break (lib/display_names.ts), so it is a line of its own.
 */
export function appendArgs(d: Draft): string[] {
  const names = d.mentions?.length ? JSON.stringify(d.mentions.map((p) => p.name)) : "";
  const mkeys = d.mentions?.length ? d.mentions.map((p) => p.key).join("\t") : "";
  const extras = d.replyTo || names || d.display
    ? `${d.replyTo ?? ""}\n${names}\n${mkeys}\n${d.display ?? ""}`
    : "";
  // The message as the channel carries it, but for its seq (first) and reply quote (last); "" when
  // the script can put it together itself (most messages: nothing to escape, no mentions). Stored
  // as UTF-8, a lone surrogate becomes U+FFFD: the channel says what the stream holds.
  const plain = !names && !NEEDS_ESCAPE.test(d.text) && !NEEDS_ESCAPE.test(d.from) &&
    !NEEDS_ESCAPE.test(d.cid ?? "");
  const form = plain
    ? ""
    : JSON.stringify([d.from, wellFormed(d.text), d.ts, wellFormed(d.cid ?? ""), names]).slice(1, -1);
  return [d.key, d.cid ?? "", d.from, d.text, String(d.ts), extras, form];
}

/** What append.lua made of one message. */
export type AppendOutcome =
  /** Stored: numbered on, in order, from the room's seq before the group. */
  | { kind: "stored" }
  /** Not stored: its `replyTo` is not stored or is deleted. */
  | { kind: "refused" }
  /** Its cid was stored before, as `seq` at `ts` (with `display`); deleted or edited since, it says so. */
  | {
    kind: "duplicate";
    seq: number;
    ts: number;
    deleted: boolean;
    edited?: { editedTs: number; text: string };
    display?: string;
  };

/** What append.lua did in one room. */
export interface AppendedRoom {
  epoch: string;
  /** The room's last seq before this group. */
  seqBefore: number;
  /** One per message of the room, in the order they were sent. */
  outcomes: AppendOutcome[];
  /** Asked for (publish ''): the line the process publishes on the room's channel ('' for none). */
  line?: string;
}

/**
 * append.lua's reply: one {@link AppendedRoom} per room, in the order of its KEYS; `withLine` when the
 * script was asked for the lines instead of publishing them.
 */
export function decodeAppend(reply: unknown, withLine = false): AppendedRoom[] {
  return (reply as unknown[][]).map((room) => ({
    epoch: room[0] as string,
    seqBefore: Number(room[1]),
    ...(withLine ? { line: room[room.length - 1] as string } : {}),
    outcomes: room.slice(2, withLine ? -1 : undefined).map((r): AppendOutcome => {
      if (r === "n") return { kind: "stored" };
      if (r === "r") return { kind: "refused" };
      const [state, seq, ts, editedTs, text, display] = r as string[];
      const out: AppendOutcome = {
        kind: "duplicate",
        seq: Number(seq),
        ts: Number(ts),
        deleted: state === "D",
      };
      if (state === "E") out.edited = { editedTs: Number(editedTs), text };
      if (display) out.display = display;
      return out;
    }),
  }));
}

/**
 * meta.lua's (and rebase.lua's) reply: the room's epoch, last stored seq, and the seq its epoch
 * starts after (`from`: 0, or where a store that went back was rebased).
 */
export function decodeMeta(reply: unknown): { epoch: string; seq: number; from: number } {
  const [epoch, seq, from] = reply as [string, string, string?];
  return { epoch, seq: Number(seq), from: Number(from ?? 0) };
}

/** The `want` argument of react.lua: toggle, on or off. */
export function reactWant(want: boolean | undefined): string {
  return want === undefined ? "t" : want ? "1" : "0";
}

/** react.lua's reply. */
export function decodeReact(reply: unknown): ReactResult {
  const [status, on, counts] = reply as [string, number?, string[]?];
  if (status !== "ok") {
    return { ok: false, problem: status as Extract<ReactResult, { ok: false }>["problem"] };
  }
  return { ok: true, on: on === 1, counts: countsOf(counts!) };
}

/** reactions.lua's reply: the reactions of each message that has any, by seq. */
export function decodeReactions(reply: unknown): Map<number, MessageReactions> {
  const out = new Map<number, MessageReactions>();
  for (const [seq, counts, mine] of reply as [string, string[], string][]) {
    out.set(Number(seq), { counts: countsOf(counts), mine: mine === "" ? [] : mine.split("\t") });
  }
  return out;
}

/** The hash fields and values change_room.lua sets for a change of rules (only those given). */
export function ruleFields(rules: Partial<RoomRules>): string[] {
  const out: string[] = [];
  if (rules.topic !== undefined) out.push("topic", rules.topic);
  if (rules.private !== undefined) out.push("private", rules.private ? "1" : "0");
  if (rules.readOnly !== undefined) out.push("readOnly", rules.readOnly ? "1" : "0");
  if (rules.slowModeSeconds !== undefined) out.push("slow", String(rules.slowModeSeconds));
  return out;
}

/** The rules as access.lua and change_room.lua read them: topic, private, readOnly, slow. */
export function decodeRules(reply: unknown): RoomRules {
  const [topic, priv, readOnly, slow] = reply as string[];
  return { topic, private: priv === "1", readOnly: readOnly === "1", slowModeSeconds: Number(slow) };
}

/** access.lua's reply: the rules, then allowed (1/0), ban until and mute until ("" for none). */
export function decodeAccess(reply: unknown): RoomAccess {
  const r = reply as [string, string, string, string, number, string, string, number];
  const [allowed, ban, mute, exists] = [r[4], r[5], r[6], r[7]];
  const out: RoomAccess = { exists: exists === 1, rules: decodeRules(r.slice(0, 4)), allowed: allowed === 1 };
  if (ban !== "") out.ban = Number(ban);
  if (mute !== "") out.mute = Number(mute);
  return out;
}

/** people_lists.lua's reply: who is allowed, and the bans and mutes that still hold at `now`. */
export function decodeAccessList(reply: unknown, now: number): AccessList {
  const [allowed, bans, mutes] = reply as [string[], string[], string[]];
  const live = (flat: string[]) => {
    const out: { uid: string; until: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const until = Number(flat[i + 1]);
      if (holds(until, now)) out.push({ uid: flat[i], until });
    }
    return out.sort((a, b) => a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
  };
  return { allowed: allowed.sort(), bans: live(bans), mutes: live(mutes) };
}

/** An audit entry as the log keeps it: JSON that starts with `{"ts":`, which audit.lua reads. */
export function auditJson(a: AuditEntry): string {
  const o: AuditEntry = { ts: a.ts, action: a.action, by: a.by };
  if (a.target !== undefined) o.target = a.target;
  if (a.reason !== undefined) o.reason = a.reason;
  if (a.until !== undefined) o.until = a.until;
  if (a.seq !== undefined) o.seq = a.seq;
  return JSON.stringify(o);
}

/** audit.lua's reply: the entries, newest first. */
export function decodeAudit(reply: unknown): AuditEntry[] {
  return (reply as string[]).map((e) => JSON.parse(e) as AuditEntry);
}

/** change_message.lua's reply, for message `seq` of `room`. */
export function decodeChangeMessage(room: string, seq: number, reply: unknown): ChangeResult {
  const r = reply as string[];
  if (r[0] !== "ok") return { ok: false, problem: r[0] as "not_found" | "not_author" | "too_old" };
  const [, from, text, ts, cid, deleted, editedTs, quote, names, rev, display] = r;
  return {
    ok: true,
    message: storedMessage(room, seq, {
      f: from,
      t: text,
      ts,
      c: cid,
      d: deleted,
      e: editedTs,
      r: quote,
      m: names,
      dn: display,
    }),
    rev: Number(rev),
  };
}

/** changes.lua's reply: the epoch, the room's change revision, and the changed messages by seq. */
export function decodeChanges(room: string, reply: unknown): ChangesPage {
  const r = reply as [string, string, ...(string | string[])[]];
  const messages = decodeHistory(room, r.slice(2));
  messages.sort((a, b) => a.seq - b.seq);
  return { epoch: r[0], rev: Number(r[1]), messages };
}

/** history.lua's reply: per message its seq and its fields, in the order read. */
export function decodeHistory(room: string, reply: unknown): ChatMessage[] {
  const r = reply as (string | string[])[];
  const messages: ChatMessage[] = [];
  for (let i = 0; i < r.length; i += 2) {
    const flat = r[i + 1] as string[];
    const fields: Record<string, string> = {};
    for (let j = 0; j < flat.length; j += 2) fields[flat[j]] = flat[j + 1];
    messages.push(storedMessage(room, Number(r[i]), fields));
  }
  return messages;
}

/** read.lua's reply: the read position and whether it moved. */
export function decodeReadMark(reply: unknown): ReadMark {
  const [at, moved] = reply as [number, number];
  return { seq: Number(at), moved: moved === 1 };
}

/** find.lua's reply: the person, or undefined when no name key names one. */
export function decodeFound(reply: unknown): Person | undefined {
  const [key, uid, name] = reply as string[];
  return key === undefined ? undefined : { key, uid, name };
}

/** dirs.lua's reply for the people `keys`, in their order (undefined: not in the directory). */
export function decodePeople(keys: readonly string[], reply: unknown): (Person | undefined)[] {
  const r = reply as string[];
  return keys.map((key, i) => r[2 * i] === "" ? undefined : { key, uid: r[2 * i], name: r[2 * i + 1] });
}

/** conversations.lua's reply: conversation, peer and last ts triples, newest first. */
export function decodeConversations(reply: unknown): ConversationEntry[] {
  const r = reply as string[];
  const out: ConversationEntry[] = [];
  for (let i = 0; i < r.length; i += 3) out.push({ conv: r[i], peer: r[i + 1], lastTs: Number(r[i + 2]) });
  return out;
}

/** The value of a claimed name's key (claim.lua): `<person key>\t<name>`. */
export function nameClaim(key: string, name: string): string {
  return `${key}\t${name}`;
}

/** A claimed name's key's value, as {@link nameClaim} wrote it. */
export function decodeNameClaim(value: string): { key: string; name: string } {
  const tab = value.indexOf("\t");
  return { key: value.slice(0, tab), name: value.slice(tab + 1) };
}

/**
 * A message from its stored fields (`f` from, `t` text, `ts`, `c` cid, `d` deleted, `e` editedTs, `r`
 * reply quote JSON, `m` mentioned names JSON, `dn` display name): a tombstone when deleted.
 */
function storedMessage(room: string, seq: number, f: Record<string, string | undefined>): ChatMessage {
  if (f.d) {
    const t: ChatMessage = { room, seq, from: f.f!, ts: Number(f.ts), text: "", deleted: true };
    if (f.dn) t.display = f.dn;
    return t;
  }
  const m: ChatMessage = { room, seq, from: f.f!, text: f.t!, ts: Number(f.ts) };
  if (f.c) m.cid = f.c;
  if (f.dn) m.display = f.dn;
  if (f.e) m.editedTs = Number(f.e);
  if (f.r) m.replyTo = replyOf(f.r);
  if (f.m) m.mentions = JSON.parse(f.m);
  return m;
}

/** A stored reply quote (cjson's key order is its own: the wire's is seq, from, text, deleted). */
function replyOf(json: string): ChatMessage["replyTo"] {
  const q = JSON.parse(json) as { seq: number; from: string; text: string; deleted?: boolean };
  return q.deleted
    ? { seq: q.seq, from: q.from, text: "", deleted: true }
    : { seq: q.seq, from: q.from, text: q.text };
}

/** Counts from a flat HGETALL list (emoji, n, ...). */
function countsOf(flat: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = Number(flat[i + 1]);
  return out;
}

/** A line of a room's channel (`chat:{room}`). */
export type RoomLine =
  /** Messages of one append (append.lua), or one alone as a process of an older version publishes. */
  | { kind: "messages"; epoch: string; messages: ChatMessage[] }
  /** A change to the room's rules or people (change_room.lua). */
  | { kind: "room"; change: RoomChange; rules: RoomRules }
  /** A message deleted or edited (change_message.lua), in the epoch it was changed in. */
  | { kind: "message"; epoch: string; message: ChatMessage; info: ChangeInfo }
  /** A change this version does not know. */
  | { kind: "unknown" };

/** A line of `room`'s channel. @throws {SyntaxError} (or another error) when it is not one. */
export function decodeRoomLine(room: string, raw: string): RoomLine {
  const parsed = JSON.parse(raw);
  // One publish per room and append, `{e: epoch, m: [...messages]}` (see append.lua); a message alone
  // (an array) is what an older process publishes.
  const old = Array.isArray(parsed);
  if (!old && (parsed.c !== undefined || !Array.isArray(parsed.m))) return decodeChange(room, parsed);
  const messages: ChatMessage[] = [];
  for (const one of old ? [parsed] : parsed.m) {
    const [seq, from, text, ts, cid] = one as [number, string, string, number, string];
    const [names, reply] = old ? [one[7], one[6]] : [one[5], one[6]] as [string?, string?];
    const m: ChatMessage = { room, seq, from, text, ts };
    if (cid) m.cid = cid;
    if (!old && one[7]) m.display = one[7];
    if (reply) m.replyTo = replyOf(reply);
    if (names) m.mentions = JSON.parse(names);
    messages.push(m);
  }
  return { kind: "messages", epoch: old ? parsed[5] : parsed.e, messages };
}

/** A change on a room's channel: `c` "r" for the room's rules or people, "m" for a message. */
function decodeChange(room: string, c: Record<string, unknown>): RoomLine {
  if (c.c === "r") return { kind: "room", change: c.change as RoomChange, rules: decodeRules(c.rules) };
  if (c.c !== "m") return { kind: "unknown" };
  const s = c as Record<string, string>;
  const message = storedMessage(room, Number(s.seq), {
    f: s.from,
    t: s.text,
    ts: s.ts,
    c: s.cid,
    d: s.deleted,
    e: s.editedTs,
    r: s.r,
    m: s.m,
    dn: s.dn,
  });
  // `by` is the name of who deleted it ("" for an edit).
  const info: ChangeInfo = { rev: Number(s.rev) };
  if (s.by) info.by = s.by;
  return { kind: "message", epoch: s.epoch, message, info };
}

/** A line of the people channel: `line` for every connection of person `key`. */
export function personLine(key: string, line: string): string {
  return JSON.stringify([key, line]);
}

/** A line of the people channel, as {@link personLine} wrote it. @throws {SyntaxError} */
export function decodePersonLine(raw: string): { key: string; line: string } {
  const [key, line] = JSON.parse(raw) as [string, string];
  return { key, line };
}

/** A line of the renames channel: `oldName` is now `newName`, a member of `rooms`. */
export function renameLine(oldName: string, newName: string, rooms: string[], display?: string): string {
  return JSON.stringify(
    display === undefined ? [oldName, newName, rooms] : [oldName, newName, rooms, display],
  );
}

/** A line of the renames channel, as {@link renameLine} wrote it. @throws {SyntaxError} */
export function decodeRenameLine(
  raw: string,
): { oldName: string; newName: string; rooms: string[]; display?: string } {
  const [oldName, newName, rooms, display] = JSON.parse(raw) as [string, string, string[], string?];
  return display === undefined ? { oldName, newName, rooms } : { oldName, newName, rooms, display };
}
