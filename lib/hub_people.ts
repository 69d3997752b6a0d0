/**
 * The hub's people and the names they hold: each person by key, and each held name's
 * {@link nameKeys} (case-insensitive confusable skeletons) to its holder, so that no one takes a name
 * that looks like one held online or within the name hold after its holder's last connection.
 * Pure, like the hub that owns it: the caller passes the time.
 * @module
 */
import { nameKeys, withSuffix } from "./names.ts";
import { ProtocolError } from "./protocol.ts";

/** A person the hub knows; `C` is the hub's record of one connection. */
export interface Person<C> {
  readonly key: string;
  name: string;
  /** The display name they are shown under beside `name`, when they have one (lib/display_names.ts). */
  display?: string;
  /** Its connections here: an array, as {@link Hub}'s rooms of a connection are (few, and cheaper). */
  conns: C[];
  /** When the last connection closed (ms), for the name hold. */
  lastSeen: number;
}

/** People by key, and the names (and lookalikes) they hold. */
export class People<C> {
  readonly #byKey = new Map<string, Person<C>>();
  /** Each of a held name's {@link nameKeys} to its person. */
  readonly #names = new Map<string, Person<C>>();
  readonly #holdMs: number;

  /** `nameHoldMs`: how long a name stays reserved after its person's last connection. */
  constructor(nameHoldMs: number) {
    this.#holdMs = nameHoldMs;
  }

  /** How many people are known (online or holding a name). */
  get size(): number {
    return this.#byKey.size;
  }

  /** Person `key`, online or within the name hold. */
  get(key: string): Person<C> | undefined {
    return this.#byKey.get(key);
  }

  /**
   * Person `key` under `name`: added when new, renamed when their name differs.
   * @throws {ProtocolError} `name_taken` if someone else holds `name` or a lookalike (nothing changes).
   */
  claim(key: string, name: string, now: number): Person<C> {
    let person = this.#byKey.get(key);
    if (!person || person.name !== name) {
      person ??= { key, name, conns: [], lastSeen: now };
      this.take(person, name, now);
      this.#byKey.set(key, person);
    }
    return person;
  }

  /**
   * Gives `name` to `person`; an offline holder of it or a lookalike past its hold is forgotten.
   * @throws {ProtocolError} `name_taken` if someone else holds it.
   */
  take(person: Person<C>, name: string, now: number): void {
    const holder = this.holder(person.key, name, now);
    if (holder) {
      throw new ProtocolError(
        "name_taken",
        holder.name === name
          ? `The name "${name}" is taken`
          : `The name "${name}" is taken: it looks like "${holder.name}", held by someone else`,
      );
    }
    const keys = nameKeys(name);
    for (const k of keys) {
      const old = this.#names.get(k);
      if (old && old !== person) this.#forget(old);
    }
    this.#dropKeys(person);
    person.name = name;
    for (const k of keys) this.#names.set(k, person);
  }

  /**
   * Who else holds `name` or a lookalike of it (a shared {@link nameKeys} key) online or within the
   * hold, so that person `key` cannot take it; `undefined` when it is free for `key`.
   */
  holder(key: string, name: string, now: number): Person<C> | undefined {
    for (const k of nameKeys(name)) {
      const holder = this.#names.get(k);
      if (!holder || holder.key === key) continue;
      if (holder.conns.length > 0 || now - holder.lastSeen < this.#holdMs) return holder;
    }
    return undefined;
  }

  /** `wanted` if free for person `key`, else the first free `wanted-2`, `wanted-3`, …. */
  freeName(key: string, wanted: string, now: number): string {
    if (!this.holder(key, wanted, now)) return wanted;
    for (let i = 2;; i++) {
      const candidate = withSuffix(wanted, `-${i}`);
      if (!this.holder(key, candidate, now)) return candidate;
    }
  }

  /**
   * The person online under `name` or a lookalike (the case-insensitive match first); with `held`,
   * also one offline who still holds it.
   */
  byName(name: string, held: boolean): Person<C> | undefined {
    for (const k of nameKeys(name)) {
      const p = this.#names.get(k);
      if (p && (held || p.conns.length > 0)) return p;
    }
    return undefined;
  }

  /** Forgets offline people whose name hold has passed. Returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const person of this.#byKey.values()) {
      if (person.conns.length === 0 && now - person.lastSeen >= this.#holdMs) {
        this.#forget(person);
        n++;
      }
    }
    return n;
  }

  #forget(person: Person<C>): void {
    this.#byKey.delete(person.key);
    this.#dropKeys(person);
  }

  #dropKeys(person: Person<C>): void {
    for (const k of nameKeys(person.name)) if (this.#names.get(k) === person) this.#names.delete(k);
  }
}
