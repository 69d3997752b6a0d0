/**
 * One terminal session: a {@link ChatClient} (its reconnect, resume and outbox, unchanged) shown as
 * lines. One room is shown at a time; the others count their unread messages and say so once, and a
 * message there that mentions you is shown with its room. Direct messages are always shown.
 * @module
 */
import { ChatClient, normalizeRoom } from "../static/chat-client.js";
import type { Options } from "./args.ts";
import { COMMAND_HELP } from "./args.ts";
import { type Input, parseInput } from "./commands.ts";
import { Formatter, safe } from "./format.ts";
import { roomLines } from "./rooms.ts";

type RoomMessage = import("../static/chat-client.js").RoomMessage;
type DirectMessage = import("../static/chat-client.js").DirectMessage;
type KeyValueStorage = import("../static/chat-client.js").KeyValueStorage;

/** Where the session writes. */
export interface Output {
  /** Whether lines may carry ANSI colours (stdout is a terminal that did not ask for none). */
  readonly colour: boolean;
  /** A readable line for stdout (several, joined by `\n`). */
  line(text: string): void;
  /** A line for stderr. */
  error(text: string): void;
}

/** Why the first connection did not come up: the one line `chat:` prints before exiting 1. */
export class ConnectError extends Error {
  override name = "ConnectError";
}

/**
 * How long a shown message waits before the server is told it was read: one `read` for a burst, not one
 * per message (each is a frame against the connection's rate limit).
 */
const READ_DELAY_MS = 1000;
/** The longest wait between reconnects: someone sits at a terminal, so it retries sooner than a page (30 s). */
const RECONNECT_MAX_MS = 10_000;
/** Refusals the client retries by itself: no line, no failure. */
const RETRIED = new Set(["rate_limited", "store_failed", "shutting_down", "unavailable", "slow_mode"]);

/** Moderation actions as a line tells them. */
const DONE: Record<string, string> = {
  kick: "kicked",
  ban: "banned",
  unban: "unbanned",
  mute: "muted",
  unmute: "unmuted",
};

/** A terminal on a {@link ChatClient}. */
export class Session {
  readonly client: ChatClient;
  /** The room shown: what is typed goes there. */
  current: string | undefined;
  #opts: Options;
  #out: Output;
  #fmt: Formatter;
  /** The newest seq shown, per room: a resume shows only what came after. */
  #shownUpTo = new Map<string, number>();
  /** Rooms not shown whose unread messages were pointed out (once, until they are read). */
  #hinted = new Set<string>();
  /** Direct conversations shown since the last `read`. */
  #directsRead = new Set<string>();
  #readTimer: ReturnType<typeof setTimeout> | undefined;
  #welcomed = false;
  /** Refusals seen: a command waits for its answer or a refusal. */
  #errors = 0;
  #live = false;
  /** Rooms whose first `joined` was told. */
  #introduced = new Set<string>();
  #lastSocketError = "";
  /** Lines of input that could not be carried out or were refused: the exit code says so. */
  failures = 0;
  /** Called whenever the outbox changes (the end of a pipe waits on it). */
  #outboxChanged = () => {};
  /** Settles the first connect (see {@link connect}). */
  #ready: { resolve: () => void; reject: (e: ConnectError) => void } | undefined;

  constructor(opts: Options, out: Output) {
    this.#opts = opts;
    this.#out = out;
    // The one place that says how a person is named in a line: their display name, else the handle.
    this.#fmt = new Formatter(out.colour, (handle) => this.client.shownName(handle));
    this.current = opts.rooms[0];
    const socketError = (e: Event) => this.#lastSocketError = (e as ErrorEvent).message ?? "";
    /** The socket the client opens, which keeps its error's text: the one line an unreachable server gets. */
    class Socket extends WebSocket {
      constructor(url: string | URL, protocols?: ConstructorParameters<typeof WebSocket>[1]) {
        super(url, protocols);
        this.addEventListener("error", socketError);
      }
    }
    const signed = opts.token?.includes(".");
    this.client = new ChatClient({
      url: opts.url,
      name: opts.name,
      rooms: opts.rooms,
      // Nothing kept between runs: a second terminal must not take the first one's identity.
      storage: memoryStorage(!signed && opts.token ? { name: opts.name, token: opts.token } : undefined),
      backoff: { maxMs: RECONNECT_MAX_MS },
      getToken: signed ? () => Promise.resolve(opts.token!) : undefined,
      WebSocket: Socket,
      trace: (direction, m) => direction === "in" && this.#line(m),
    });
    this.#wire();
  }

  /**
   * Connects and waits until the first `welcome` and the answers to the first joins.
   * @throws {ConnectError} the server cannot be reached, refused us, or said nothing in time
   */
  connect(): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(
      () =>
        reject(new ConnectError(`no answer from ${this.#opts.url} within ${this.#opts.connectTimeout} s`)),
      this.#opts.connectTimeout * 1000,
    );
    this.#ready = { resolve, reject };
    this.client.start();
    return promise.finally(() => {
      clearTimeout(timer);
      this.#ready = undefined;
    });
  }

  /**
   * Carries out one typed line. A `/join` or `/nick` resolves once the server has answered it (or
   * after `--connect-timeout`), so the lines after it (piped in) go to the room joined, under the name
   * taken.
   * @returns false when it asks to quit
   */
  async input(line: string): Promise<boolean> {
    const cmd = parseInput(line);
    try {
      return await this.#do(cmd);
    } catch (e) {
      // The client refuses with a RangeError and a sentence (too long, not connected, bad name).
      if (!(e instanceof RangeError)) throw e;
      this.#fail(e.message);
      return true;
    }
  }

  /**
   * Waits (at most `--send-timeout`) until the server has acknowledged or refused everything sent,
   * then stops the client.
   * @returns the exit code: 0 when everything went, 1 when something was refused or not acknowledged
   */
  async finish(): Promise<number> {
    const waiting = () => this.client.outbox.filter((i) => i.state !== "failed").length;
    if (waiting() > 0) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#outboxChanged = () => waiting() === 0 && resolve();
      const timer = setTimeout(resolve, this.#opts.sendTimeout * 1000);
      await promise;
      clearTimeout(timer);
      this.#outboxChanged = () => {};
      const left = waiting();
      if (left > 0) {
        this.#fail(`${left} message(s) not acknowledged within ${this.#opts.sendTimeout} s (--send-timeout)`);
      }
    }
    await this.close();
    return this.failures > 0 ? 1 : 0;
  }

  /** Stops the client and every timer; safe twice. */
  async close(): Promise<void> {
    clearTimeout(this.#readTimer);
    this.#readTimer = undefined;
    await this.client.stop();
  }

  async #do(cmd: Input): Promise<boolean> {
    const c = this.client;
    switch (cmd.kind) {
      case "none":
        return true;
      case "bad":
        this.#fail(cmd.message);
        return true;
      case "say":
        if (!this.current) this.#fail("you are in no room: /join ROOM first");
        else c.send({ room: this.current, text: cmd.text });
        return true;
      case "msg":
        c.send({ to: cmd.to, text: cmd.text });
        return true;
      case "nick": {
        const [me, errors] = [c.me, this.#errors];
        c.nick(cmd.name);
        await this.#until(() => c.me !== me || this.#errors > errors);
        return true;
      }
      case "join": {
        const room = this.#join(cmd.room);
        const errors = this.#errors;
        const r = () => c.rooms.get(room);
        await this.#until(() => !r() || r()!.joined || !!r()!.removed || this.#errors > errors);
        return true;
      }
      case "leave":
        this.#leave(cmd.room);
        return true;
      case "who":
        this.#who(cmd.room);
        return true;
      case "rooms":
        this.#info(roomLines(c, this.current, this.#fmt).join("\n"));
        return true;
      case "help":
        this.#info(COMMAND_HELP.map(([k, h]) => `${k.padEnd(16)}${h}`).join("\n"));
        return true;
      case "quit":
        return false;
    }
  }

  /** Joins or shows `raw`; returns its canonical name. */
  #join(raw: string): string {
    const room = normalizeRoom(raw);
    if (!room) throw new RangeError(`"${raw}" is not a room name (1-64 letters, digits, "_", "-" or ".")`);
    const r = this.client.rooms.get(room);
    if (!r) {
      this.current = room;
      this.client.join(room);
      return room;
    }
    if (r.removed) this.client.rejoin(room);
    if (this.current === room) {
      this.#info(this.#fmt.status(`#${room} is shown already`));
      return room;
    }
    this.current = room;
    this.#info(this.#fmt.status(`now in #${room}`));
    this.#showNew(room);
    return room;
  }

  /** Resolves once `done()` holds after an event of the client, or after `--connect-timeout`. */
  async #until(done: () => boolean): Promise<void> {
    if (done()) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const check = () => done() && resolve();
    const offs = (["joined", "standing", "rooms", "nick", "servererror", "welcome"] as const)
      .map((type) => this.client.on(type, check));
    const timer = setTimeout(resolve, this.#opts.connectTimeout * 1000);
    await promise;
    clearTimeout(timer);
    for (const off of offs) off();
  }

  #leave(raw: string | undefined): void {
    const room = raw === undefined ? this.current : normalizeRoom(raw);
    if (!room || !this.client.rooms.has(room)) {
      throw new RangeError(room ? `you are not in #${room}` : "you are in no room");
    }
    this.client.leave(room);
    this.#shownUpTo.delete(room);
    this.#hinted.delete(room);
    this.#introduced.delete(room);
    this.#info(this.#fmt.status(`left #${room}`));
    if (this.current !== room) return;
    this.current = this.client.rooms.keys().next().value;
    this.#info(this.#fmt.status(this.current ? `now in #${this.current}` : "in no room: /join ROOM"));
    if (this.current) this.#showNew(this.current);
  }

  #who(raw: string | undefined): void {
    const room = raw === undefined ? this.current : normalizeRoom(raw);
    const r = room ? this.client.rooms.get(room) : undefined;
    if (!r?.joined) throw new RangeError(room ? `you are not in #${room}` : "you are in no room");
    const names = [...r.members].sort((a, b) => a.localeCompare(b)).map((n) => this.#fmt.person(n));
    this.#info(this.#fmt.status(`#${r.name}: ${names.join(", ")} (${names.length})`));
  }

  /** Shows what `room` has that was not shown (at most `--backlog` of it), and marks it read. */
  #showNew(room: string): void {
    const r = this.client.rooms.get(room);
    if (!r) return;
    this.#hinted.delete(room);
    const upTo = this.#shownUpTo.get(room);
    const list = r.messages.filter((m) => !m.deleted && (upTo === undefined || m.seq > upTo));
    const shown = this.#opts.backlog === 0 ? [] : list.slice(-this.#opts.backlog);
    // Counted by seq, not by what is held: a first join holds only the newest page.
    const from = Math.max(r.lastRead, upTo ?? 0);
    const unseen = Math.max(0, r.lastSeq - from - shown.filter((m) => m.seq > from).length);
    if (unseen > 0) {
      this.#info(this.#fmt.status(`${unseen} earlier unread in #${room} not shown (--backlog)`));
    }
    for (const m of shown) this.#showMessage(m);
    this.#shownUpTo.set(room, Math.max(upTo ?? 0, r.lastSeq));
    // One `read` for one command: no burst to wait for.
    if (this.client.live) this.client.markRead({ room });
  }

  #showMessage(m: RoomMessage): void {
    this.#chat(this.#fmt.message(m, { me: this.client.isMe(m.from) }));
  }

  #wire(): void {
    const c = this.client;
    c.on("welcome", ({ name }) => {
      const again = this.#welcomed;
      this.#welcomed = true;
      this.#info(this.#fmt.status(`${again ? "reconnected" : `connected to ${this.#opts.url}`} as ${name}`));
      this.#checkReady();
    });
    c.on("notice", ({ message }) => this.#info(this.#fmt.status(message)));
    c.on("state", ({ state }) => {
      if (state === "live") this.#live = true;
      if (state !== "reconnecting") return;
      if (!this.#welcomed) return this.#ready?.reject(new ConnectError(this.#unreachable()));
      // "reconnecting" comes again with each new retry time: one line for the loss is enough.
      if (this.#live) this.#info(this.#fmt.status("connection lost; reconnecting"));
      this.#live = false;
    });
    c.on("joined", ({ room, added, reset }) => this.#joined(room, added, reset));
    c.on("standing", () => this.#checkReady());
    c.on("message", (d) => {
      if (d.peer !== undefined) return this.#direct(d.peer, d.message);
      if (d.room === this.current) {
        this.#showMessage(d.message);
        this.#shownUpTo.set(d.room, Math.max(this.#shownUpTo.get(d.room) ?? 0, d.message.seq));
        if (!c.isMe(d.message.from)) this.#readSoon();
        return;
      }
      if (c.mentionsMe(d.message)) this.#chat(this.#fmt.message(d.message, { where: `#${d.room}` }));
      this.#hint(d.room);
    });
    c.on("nick", ({ old, name }) => {
      const mine = c.isMe(old) && c.me === name;
      const now = this.#fmt.person(name);
      // The same handle: only how the person is shown changed (a display name), so name the handle.
      const who = old === name ? `${safe(old)} is now shown as` : `${this.#fmt.person(old)} is now`;
      this.#info(this.#fmt.status(mine ? `you are now ${now}` : `${who} ${now}`));
    });
    c.on("moderation", ({ room, line }) => {
      const reason = line.reason ? `: ${line.reason}` : "";
      const done = DONE[line.action] ?? line.action;
      this.#info(
        this.#fmt.status(
          `#${room}: ${this.#fmt.person(line.name)} was ${done} by ${this.#fmt.person(line.by)}${reason}`,
        ),
      );
    });
    c.on("servererror", ({ code, message, item }) => {
      this.#errors++;
      if (!this.#welcomed) return this.#ready?.reject(new ConnectError(`${message} (${code})`));
      // A refused message is told by the outbox (once, with its text); a retried one is not refused.
      if (item || RETRIED.has(code)) return;
      this.#fail(`${message} (${code})`);
    });
    c.on("outbox", () => {
      for (const item of c.outbox.filter((i) => i.state === "failed")) {
        const to = item.room ? `#${item.room}` : `*${this.#fmt.person(item.to ?? "")}*`;
        this.#fail(`not sent to ${to}: ${item.error ?? "refused"}: ${item.text.split("\n")[0]}`);
        c.discard(item.cid);
      }
      this.#outboxChanged();
    });
  }

  /** Raw lines: `--json` prints each; presence is shown from its line, which says who. */
  #line(m: Record<string, unknown>): void {
    if (this.#opts.json) return this.#out.line(JSON.stringify(m));
    if (m.type === "presence" && m.room === this.current && typeof m.name === "string") {
      if (this.client.isMe(m.name)) return;
      const what = m.event === "join" ? "joined" : "left";
      this.#info(this.#fmt.status(`${this.#fmt.person(m.name)} ${what} #${m.room}`));
    }
  }

  #joined(room: string, added: RoomMessage[], reset: boolean): void {
    const r = this.client.rooms.get(room);
    if (!r) return;
    const first = !this.#introduced.has(room);
    this.#introduced.add(room);
    if (room === this.current) {
      if (first) {
        this.#info(this.#fmt.status(`joined #${room} (${r.members.size} here; /who lists them)`));
        this.#showNew(room);
      } else {
        if (reset) {
          this.#info(this.#fmt.status(`#${room}'s history was reloaded`));
          this.#shownUpTo.delete(room);
          this.#showNew(room);
        } else {
          const upTo = this.#shownUpTo.get(room) ?? 0;
          for (const m of added) if (m.seq > upTo && !m.deleted) this.#showMessage(m);
          this.#shownUpTo.set(room, Math.max(upTo, r.lastSeq));
          this.#readSoon();
        }
      }
    } else {
      if (first) this.#info(this.#fmt.status(`joined #${room}`));
      this.#hint(room);
    }
    this.#checkReady();
  }

  #direct(peer: string, m: DirectMessage): void {
    const sent = this.client.isMe(m.from);
    this.#chat(this.#fmt.direct(m, sent));
    if (!sent) {
      this.#directsRead.add(peer);
      this.#readSoon();
    }
  }

  /** Points out unread messages in a room not shown, once until they are read. */
  #hint(room: string): void {
    const r = this.client.rooms.get(room);
    if (!r || r.unread === 0) return void this.#hinted.delete(room);
    if (this.#hinted.has(room)) return;
    this.#hinted.add(room);
    const mentions = r.mentions ? `, ${r.mentions} mentioning you` : "";
    this.#info(this.#fmt.hint(`#${room}: ${r.unread} unread${mentions} (/join ${room} to show it)`));
  }

  /** Tells the server what was shown, once for a burst. */
  #readSoon(): void {
    this.#readTimer ??= setTimeout(() => {
      this.#readTimer = undefined;
      if (this.current && this.client.live) this.client.markRead({ room: this.current });
      for (const peer of this.#directsRead) this.client.markRead({ peer });
      this.#directsRead.clear();
    }, READ_DELAY_MS);
  }

  /** The first connect is done once welcomed and every room asked for is joined or refused. */
  #checkReady(): void {
    if (!this.#ready || !this.#welcomed) return;
    const rooms = [...this.client.rooms.values()];
    if (rooms.every((r) => r.joined || r.removed)) this.#ready.resolve();
  }

  #unreachable(): string {
    const why = this.#lastSocketError.replace(/^.*failed to connect to WebSocket: /, "");
    const status = /status code:? (\d+)/i.exec(why)?.[1];
    if (status) return `${this.#opts.url} answered HTTP ${status}, not a WebSocket (is it the chat's /ws?)`;
    return `cannot connect to ${this.#opts.url}${why ? `: ${why}` : ""} (is the server running?)`;
  }

  #fail(text: string): void {
    this.failures++;
    this.#out.error(this.#fmt.error(text));
  }

  /** A line about the session: stdout, or stderr with `--json` (stdout then holds JSON only). */
  #info(text: string): void {
    if (this.#opts.json) this.#out.error(text);
    else this.#out.line(text);
  }

  /** A message: not with `--json`, whose lines carry it. */
  #chat(text: string): void {
    if (!this.#opts.json) this.#out.line(text);
  }
}

/** A `localStorage` of this process only, holding `identity` when given (a guest's `--token`). */
function memoryStorage(identity?: { name?: string; token: string }): KeyValueStorage {
  const map = new Map<string, string>();
  if (identity) map.set("chat:identity", JSON.stringify({ ...identity, names: [] }));
  return {
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
  };
}
