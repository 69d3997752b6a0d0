/**
 * Names: the name a person gets at connect, renames (`nick`, a refreshed token), claims across
 * processes, the people directory, and the one way to find a person by name.
 * @module
 */
import { isSignedKey, keyOfUid, uidOfKey } from "../identity.ts";
import { withSuffix } from "../names.ts";
import { ProtocolError } from "../protocol.ts";
import { encode, nickMessage } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, nameOf } from "./context.ts";
import { engineError } from "./errors.ts";

/** A person found by name: their key and their name as they hold it now. */
export interface Found {
  key: string;
  name: string;
}

/** How far {@link Naming.findPerson} looks. */
export interface FindOptions {
  /** Also a name held here for someone who left moments ago (within the name hold). */
  held: boolean;
  /** Also the people directory: someone offline, known by the name they had last. */
  directory: boolean;
}

/** Names of the people of this service. */
export class Naming {
  readonly #ctx: ChatContext;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /**
   * The name a signed person gets for `wanted` (the token's): names from signed tokens are not
   * first-come, so a guest holding it (or a lookalike) here is renamed `name-2`, … (a `nick` line tells
   * its rooms); another signed person holding it keeps it, and this one gets the suffix.
   */
  signedName(key: string, wanted: string): string {
    const { hub, now } = this.#ctx;
    const t = now();
    const holder = hub.holderOf(key, wanted, t);
    if (holder !== undefined && !isSignedKey(holder)) {
      const old = hub.nameOf(holder)!;
      let moved = old;
      for (let i = 2; moved === old || !hub.nameFreeFor(holder, moved, t); i++) {
        moved = withSuffix(old, `-${i}`);
      }
      this.rename(holder, moved);
      this.#ctx.sharing.claimName(holder, moved).catch(() => {/* its name here moved already */});
    }
    return hub.freeName(key, wanted, t);
  }

  /**
   * The name person `conn.key` gets at connect: the one it holds on any process (online or within
   * the hold), else `wanted` or the first free `wanted-2`, `wanted-3`, … here and (when names are
   * shared) everywhere, claimed everywhere before it is used (`held`: the one it held). For a guest
   * (`guest`), a name a signed person has is not free either. Undefined when the connection closed
   * meanwhile (nothing stays claimed) or no name could be claimed.
   */
  async settle(
    conn: Conn,
    wanted: string,
    guest: boolean,
  ): Promise<{ name: string; held: boolean } | undefined> {
    const { sharing, hub, now, conns } = this.#ctx;
    const key = conn.key;
    const shared = sharing.spansProcesses;
    // Gone meanwhile: its names were released when it closed, and nothing is claimed after that.
    const gone = () => void this.#releaseIfGone(key);
    const owned = shared ? await sharing.nameOf(key) : undefined;
    if (owned !== undefined && conns.alive(conn) && hub.nameFreeFor(key, owned, now())) {
      if (await sharing.claimName(key, owned)) {
        return conns.alive(conn) ? { name: owned, held: true } : gone();
      }
    }
    let got: string | undefined;
    for (let i = 1; got === undefined && i < 100 && conns.alive(conn); i++) {
      const candidate = i === 1 ? wanted : withSuffix(wanted, `-${i}`);
      if (!hub.nameFreeFor(key, candidate, now())) continue;
      if (guest && await this.signedOwner(key, candidate) !== undefined) continue;
      if (!shared || (conns.alive(conn) && await sharing.claimName(key, candidate))) got = candidate;
    }
    if (!conns.alive(conn)) return gone();
    return got === undefined ? undefined : { name: got, held: false };
  }

  /**
   * The signed person other than `key` whom the people directory knows as `name` (or a lookalike):
   * such a name is theirs while they exist, online or not, so no guest is given it.
   */
  async signedOwner(key: string, name: string): Promise<Found | undefined> {
    const known = await this.#ctx.engine.findPerson(name);
    if (!known || known.key === key || !isSignedKey(known.key)) return undefined;
    return { key: known.key, name: this.#ctx.hub.nameOf(known.key) ?? known.name };
  }

  /**
   * With names shared across processes: a name given at connect without {@link settle} (a signed
   * person's) is checked everywhere; if another process's person holds it, this person gets the
   * first free `name-2`, `name-3`, … (a `nick` line).
   */
  claimEverywhere(conn: Conn, name: string): void {
    const { sharing, hub, log } = this.#ctx;
    if (!sharing.spansProcesses) return;
    conn.naming = this.settle(conn, name, false).then((got) => {
      if (got === undefined || got.name === hub.nameOf(conn.key)) return;
      this.rename(conn.key, got.name);
    }).catch((e) => log.warn("name not claimed everywhere", { error: (e as Error).message }));
  }

  /**
   * `nick`: free here first, then not a signed person's (the directory), then (when names are
   * shared) taken everywhere, then renamed.
   */
  nick(conn: Conn, name: string): void {
    const { hub, now, sharing, conns } = this.#ctx;
    if (!conn.identity!.guest) throw fromSignIn();
    const here = hub.holderOf(conn.key, name, now());
    if (here !== undefined) throw nameTaken(name, hub.nameOf(here));
    const id = conn.peer.id;
    const before = conn.naming ?? Promise.resolve();
    // Gone by its turn: nothing to claim (its names were released when it closed).
    conn.naming = before.then(async () => {
      if (!conns.alive(conn)) return false;
      const owner = await this.signedOwner(conn.key, name);
      if (owner) return nameTaken(name, owner.name);
      return !sharing.spansProcesses || (conns.alive(conn) && await sharing.claimName(conn.key, name));
    }).then(
      (ok) => {
        if (!conns.alive(conn)) return this.#releaseIfGone(conn.key);
        if (ok instanceof ProtocolError) return conns.refuse(id, ok);
        if (!ok) return conns.refuse(id, nameTaken(name));
        conns.run(id, () => this.rename(conn.key, name));
      },
      (e) => conns.answer(conn.peer, engineError("people", e)),
    );
  }

  /**
   * A claim that answered after its connection closed: the close released the person's names before
   * the claim was recorded, so it is released again unless the person still has a connection here.
   * Without this a claim would be refreshed for as long as the process lives.
   */
  #releaseIfGone(key: string): void {
    if (this.#ctx.hub.tabsOf(key) === 0) this.#ctx.sharing.releaseName(key);
  }

  /**
   * Renames person `key` here, and in presence and the directory everywhere; with `display`, also
   * gives them that display name (`null`: none).
   */
  rename(key: string, name: string, display?: string | null): void {
    const { hub, sharing, log, now } = this.#ctx;
    const old = hub.nameOf(key)!;
    const oldDisplay = hub.displayOf(key);
    hub.rename(key, name, now(), display);
    const shown = hub.displayOf(key);
    if (old === name && oldDisplay === shown) return;
    if (old !== name) this.remember(key, name);
    sharing.publishRename(old, name, hub.roomsOfPerson(key), shown);
    sharing.renamed(old, name, shown).catch((e) =>
      log.debug("rename not recorded in presence", { error: (e as Error).message })
    );
  }

  /** `nick {display}` (a guest's new display name; "" for none): told like a rename. */
  setDisplay(conn: Conn, display: string): void {
    if (!conn.identity!.guest) throw fromSignIn();
    // After a rename still being claimed, so the two are told in the order they were asked.
    const before = conn.naming ?? Promise.resolve();
    conn.naming = before.then(() => {
      if (!this.#ctx.conns.alive(conn)) return;
      this.#ctx.conns.run(
        conn.peer.id,
        () => this.rename(conn.key, nameOf(this.#ctx, conn), display || null),
      );
    });
  }

  /** Someone on another process renamed: the rooms here hear it (our own renames were told already). */
  renamedElsewhere(old: string, name: string, rooms: string[], display?: string): void {
    const { hub } = this.#ctx;
    // Names are unique, so a local holder of the new name is us.
    if (hub.personByName(name) === undefined) {
      hub.tellRooms(rooms, encode(nickMessage(old, { name, display })), { old, name });
    }
  }

  /**
   * Records person `key` in the people directory under `name` (best effort: logged when it fails); a
   * guest's entry is forgotten after `--guest-forget` unless they write.
   */
  remember(key: string, name: string): void {
    this.#ctx.engine.rememberPerson({ key, uid: uidOfKey(key), name }, !isSignedKey(key)).catch((e) =>
      this.#ctx.log.warn("person not recorded", { error: (e as Error).message })
    );
  }

  /** The person called `name` in this process, at once (see {@link FindOptions.held}). */
  findHere(name: string, held: boolean): Found | undefined {
    const { hub } = this.#ctx;
    const key = hub.personByName(name, held);
    return key === undefined ? undefined : { key, name: hub.nameOf(key)! };
  }

  /**
   * The person called `name`: here, then online on another process, then (with `directory`) the
   * people directory, whose name is replaced by the one held here when they hold one. With
   * `directory`, a name that is a signed person's finds that person even while a guest holds it
   * (one who had it before they signed up): what is addressed to the name is theirs.
   */
  async findPerson(name: string, opts: FindOptions): Promise<Found | undefined> {
    const online = this.findHere(name, opts.held) ?? await this.#ctx.sharing.whoIs(name);
    if (!opts.directory || (online && isSignedKey(online.key))) return online;
    if (online) return (await this.signedOwner(online.key, name)) ?? online;
    const known = await this.#ctx.engine.findPerson(name);
    return known && { key: known.key, name: this.#ctx.hub.nameOf(known.key) ?? known.name };
  }

  /**
   * Whoever other than person `key` holds `name` or a lookalike: online or within the hold here, or
   * online on another process. The key, or undefined when `key` may use the name.
   */
  async holderOf(key: string, name: string): Promise<string | undefined> {
    const { hub, sharing, now } = this.#ctx;
    const here = hub.holderOf(key, name, now());
    if (here !== undefined || !sharing.spansProcesses) return here;
    const online = await sharing.whoIs(name);
    return online && online.key !== key ? online.key : undefined;
  }

  /** The display name of person `uid` while they are online or within the name hold, else `uid`. */
  async nameOfUid(uid: string): Promise<string> {
    const { hub, sharing } = this.#ctx;
    const key = keyOfUid(uid);
    return hub.nameOf(key) ?? hub.nameOf(uid) ?? await sharing.nameOf(key) ?? uid;
  }
}

/** `name_taken` for `name`, naming the lookalike it is taken as when that is another spelling. */
function nameTaken(name: string, holder?: string): ProtocolError {
  return new ProtocolError(
    "name_taken",
    holder === undefined || holder === name
      ? `The name "${name}" is taken`
      : `The name "${name}" is taken: it looks like "${holder}", held by someone else`,
  );
}

/** `not_allowed` for a signed person's `nick`: their names are the host application's. */
function fromSignIn(): ProtocolError {
  return new ProtocolError(
    "not_allowed",
    "Your name comes from your sign-in: change it on the site you signed in with",
  );
}
