/**
 * Names: the name a person gets at connect, renames (`nick`, a refreshed token), claims across
 * processes, the people directory, and the one way to find a person by name.
 * @module
 */
import { isSignedKey, keyOfUid, uidOfKey } from "../identity.ts";
import { withSuffix } from "../names.ts";
import { ProtocolError } from "../protocol.ts";
import { encode } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import type { ChatContext } from "./context.ts";
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
   * With names shared across processes: the name given at connect is checked everywhere; if another
   * process's person holds it, this person gets the first free `name-2`, `name-3`, … (a `nick` line).
   */
  claimEverywhere(conn: Conn, name: string): void {
    const { sharing, hub, now, conns, log } = this.#ctx;
    if (!sharing.spansProcesses) return;
    const claim = async () => {
      // A token owns its name on every process: a tab elsewhere has it already.
      const owned = await sharing.nameOf(conn.key);
      // Gone meanwhile: its names were released when it closed, and nothing is claimed after that.
      if (!conns.alive(conn)) return undefined;
      if (owned !== undefined && owned !== name && (await sharing.claimName(conn.key, owned))) return owned;
      for (let i = 1; i < 100 && conns.alive(conn); i++) {
        const candidate = i === 1 ? name : withSuffix(name, `-${i}`);
        if (i > 1 && !hub.nameFreeFor(conn.key, candidate, now())) continue;
        if (await sharing.claimName(conn.key, candidate)) return candidate;
      }
      return undefined;
    };
    conn.naming = claim().then((got) => {
      if (!conns.alive(conn)) return this.#releaseIfGone(conn.key);
      if (got === undefined || got === hub.nameOf(conn.key)) return;
      this.rename(conn.key, got);
    }).catch((e) => log.warn("name not claimed everywhere", { error: (e as Error).message }));
  }

  /** `nick`: free here first, then (when names are shared) taken everywhere, then renamed. */
  nick(conn: Conn, name: string): void {
    const { hub, now, sharing, conns } = this.#ctx;
    if (!conn.identity!.guest) {
      throw new ProtocolError(
        "not_allowed",
        "Your name comes from your sign-in: change it on the site you signed in with",
      );
    }
    // One process: the hub's answer is the whole answer, and the rename takes effect at once.
    if (!sharing.spansProcesses) return this.rename(conn.key, name);
    if (!hub.nameFreeFor(conn.key, name, now())) {
      throw new ProtocolError("name_taken", `The name "${name}" is taken`);
    }
    const id = conn.peer.id;
    const before = conn.naming ?? Promise.resolve();
    // Gone by its turn: nothing to claim (its names were released when it closed).
    conn.naming = before.then(() => conns.alive(conn) && sharing.claimName(conn.key, name)).then(
      (ok) => {
        if (!conns.alive(conn)) return this.#releaseIfGone(conn.key);
        if (!ok) return conns.refuse(id, new ProtocolError("name_taken", `The name "${name}" is taken`));
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

  /** Renames person `key` here, and in presence and the directory everywhere. */
  rename(key: string, name: string): void {
    const { hub, sharing, log, now } = this.#ctx;
    const old = hub.nameOf(key)!;
    hub.rename(key, name, now());
    if (old === name) return;
    this.remember(key, name);
    sharing.publishRename(old, name, hub.roomsOfPerson(key));
    sharing.renamed(old, name).catch((e) =>
      log.debug("rename not recorded in presence", { error: (e as Error).message })
    );
  }

  /** Someone on another process renamed: the rooms here hear it (our own renames were told already). */
  renamedElsewhere(old: string, name: string, rooms: string[]): void {
    const { hub } = this.#ctx;
    // Names are unique, so a local holder of the new name is us.
    if (hub.personByName(name) === undefined) hub.tellRooms(rooms, encode({ type: "nick", old, name }));
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
   * people directory, whose name is replaced by the one held here when they hold one.
   */
  async findPerson(name: string, opts: FindOptions): Promise<Found | undefined> {
    const here = this.findHere(name, opts.held);
    if (here) return here;
    const online = await this.#ctx.sharing.whoIs(name);
    if (online || !opts.directory) return online;
    const known = await this.#ctx.engine.findPerson(name);
    return known && { key: known.key, name: this.#ctx.hub.nameOf(known.key) ?? known.name };
  }

  /** The display name of person `uid` while they are online or within the name hold, else `uid`. */
  async nameOfUid(uid: string): Promise<string> {
    const { hub, sharing } = this.#ctx;
    const key = keyOfUid(uid);
    return hub.nameOf(key) ?? hub.nameOf(uid) ?? await sharing.nameOf(key) ?? uid;
  }
}
