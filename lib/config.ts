/**
 * Configuration: every setting resolved once into a frozen object, from the one table in
 * `settings.ts`. Only `main.ts` reads flags and the environment; it hands them to {@link configFromArgs}.
 * A component takes its slice with {@link settingsFor}, durations already in milliseconds.
 * @module
 */
import { type Section, SECTION_ORDER, type Spec, TABLE } from "./settings.ts";

// Every section's entries as one object type: the union of the sections turned into their intersection.
type Each<U> = U extends unknown ? (x: U) => void : never;
type Table = Each<typeof TABLE[Section]> extends (x: infer All) => void ? All : never;

/** The value type a spec's kind yields. */
type ValueOf<S> = S extends { kind: "int" } ? number
  : S extends { kind: "bool" } ? boolean
  : S extends { kind: "origins" } ? readonly string[]
  : S extends { kind: "choice"; choices: readonly (infer C)[] } ? C
  : string;

/**
 * The resolved configuration, derived from the table: one key per setting. Sizes in bytes, times in the
 * unit their name says (`…Ms`, `…Seconds`, `…Days`); `settingsFor` gives them in milliseconds.
 */
export type Config = { readonly [K in keyof Table]: ValueOf<Table[K]> };

/** A setting of the table with its {@link Config} key and section. */
export type Setting = Spec & { readonly key: keyof Config; readonly section: Section };

/** The table behind flags, environment variables, defaults, `--help` and the README, in README order. */
export const SETTINGS: readonly Setting[] = Object.freeze(
  SECTION_ORDER.flatMap((section) =>
    Object.entries(TABLE[section]).map(([key, spec]) =>
      Object.freeze({ key: key as keyof Config, section, ...spec } as Setting)
    )
  ),
);

/** The keys of settings that are durations (unit `ms`, `s` or `days`). */
export type DurationKey = { [K in keyof Table]: Table[K] extends { unit: "ms" | "s" | "days" } ? K : never }[
  keyof Table
];

type SuffixOf<U> = U extends "ms" ? "Ms" : U extends "s" ? "Seconds" : U extends "days" ? "Days" : never;
type UnitOf<S> = S extends { unit: infer U } ? U : undefined;
/** Keys whose name and unit disagree: a `…Ms`/`…Seconds`/`…Days` key with another unit, or the reverse. */
type Misnamed = {
  [K in keyof Table]: K extends `${string}${"Ms" | "Seconds" | "Days"}`
    ? K extends `${string}${SuffixOf<UnitOf<Table[K]>>}` ? never : K
    : [SuffixOf<UnitOf<Table[K]>>] extends [never] ? never
    : K;
}[keyof Table];
// Checked when the module compiles: `settingsFor` renames a duration by its suffix, so it must be there.
const _durationsNamedByUnit: [Misnamed] extends [never] ? true : { misnamed: Misnamed } = true;

/** How history is kept. */
export type StoreKind = Config["store"];
/** SQLite `synchronous` level: `full` survives power loss, `normal` survives a killed process. */
export type Durability = Config["durability"];
/** Log verbosity, quietest last. */
export type LogLevel = Config["logLevel"];
/** Whether people without a signed token may chat; `auto`: only when no key is configured. */
export type GuestMode = Config["guests"];

/** Every default, read from the table. */
export const DEFAULTS: Config = Object.freeze(
  Object.fromEntries(
    SETTINGS.map((s) => [s.key, Array.isArray(s.default) ? Object.freeze([...s.default]) : s.default]),
  ),
) as Config;

/** A setting with a bad value; `main.ts` prints its message and exits 1. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const MS_PER: Readonly<Partial<Record<string, number>>> = { ms: 1, s: 1000, days: 86_400_000 };
const BY_KEY: ReadonlyMap<keyof Config, Setting> = new Map(SETTINGS.map((s) => [s.key, s]));

/** A duration key renamed for milliseconds: `nameHoldSeconds` → `nameHoldMs`, `retainDays` → `retainMs`. */
type MsName<K extends string> = K extends `${infer B}Seconds` ? `${B}Ms`
  : K extends `${infer B}Days` ? `${B}Ms`
  : K;

/** A component's settings: the keys it asked for, durations renamed `…Ms` and converted to milliseconds. */
export type Settings<K extends keyof Config> = {
  readonly [P in K as P extends DurationKey ? MsName<P> : P]: Config[P];
};

/**
 * The milliseconds a duration setting stands for, whatever its unit.
 * @example ms(config, "nameHoldSeconds") // 60000 by default
 */
export function ms(config: Config, key: DurationKey): number {
  const factor = msPer(key);
  if (factor === undefined) throw new TypeError(`ms(): ${key} is not a duration`);
  return config[key] * factor;
}

/**
 * The settings a component needs, with units converted once here instead of by each consumer: durations
 * are in milliseconds under a `…Ms` name, everything else as in {@link Config} (sizes in bytes).
 * @example settingsFor(config, ["nameHoldSeconds", "presenceDelayMs", "maxTextChars"])
 *   // { nameHoldMs: 60000, presenceDelayMs: 250, maxTextChars: 4000 }
 */
export function settingsFor<K extends keyof Config>(config: Config, keys: readonly K[]): Settings<K> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (!BY_KEY.has(key)) throw new TypeError(`settingsFor(): no setting ${JSON.stringify(key)}`);
    const factor = msPer(key);
    if (factor === undefined) out[key] = config[key];
    else out[key.replace(/(Seconds|Days)$/, "Ms")] = (config[key] as number) * factor;
  }
  return Object.freeze(out) as Settings<K>;
}

/** Milliseconds per unit of a duration setting; undefined for any other. */
function msPer(key: keyof Config): number | undefined {
  const s = BY_KEY.get(key);
  return s?.kind === "int" && s.unit !== undefined ? MS_PER[s.unit] : undefined;
}

/** Input to {@link resolveConfig}: any subset of settings, as values or strings. */
export type ConfigInput = { [K in keyof Config]?: Config[K] | string };

/**
 * Validates `input` over {@link DEFAULTS} and returns a frozen {@link Config}.
 * @throws {ConfigError} naming the setting and the value, e.g. `--port must be an integer from 0 to 65535, got "x"`.
 */
export function resolveConfig(input: ConfigInput = {}): Config {
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const s of SETTINGS) {
    const raw = input[s.key];
    if (raw === undefined) continue;
    out[s.key] = parseSetting(s, raw);
  }
  if ((out.burst as number) < 1) throw new ConfigError("--burst must be at least 1");
  const secret = out.jwtSecret as string;
  if (secret !== "" && new TextEncoder().encode(secret).length < 32) {
    // The length only: the secret itself never goes into a message.
    throw new ConfigError(
      `--jwt-secret (CHAT_JWT_SECRET) must be at least 32 bytes (HS256 keys shorter than its hash are ` +
        `guessable), got ${new TextEncoder().encode(secret).length}`,
    );
  }
  if (out.guests === "off" && !signedIdentities(out as unknown as Config)) {
    throw new ConfigError(
      "--guests off needs --jwt-secret or --jwt-public-key: without a key no one could sign in",
    );
  }
  if (input.commitDelayMs === undefined && out.store === "memory" && out.redisUrl === "") {
    out.commitDelayMs = 0;
  }
  return Object.freeze(out) as unknown as Config;
}

/** Whether the server verifies signed identity tokens (a key is configured). */
export function signedIdentities(config: Config): boolean {
  return config.jwtSecret !== "" || config.jwtPublicKey !== "";
}

/** Whether people without a signed token may chat: `--guests`, where `auto` means "no key configured". */
export function guestsAllowed(config: Config): boolean {
  return config.guests === "auto" ? !signedIdentities(config) : config.guests === "on";
}

function parseSetting(s: Setting, raw: unknown): unknown {
  const shown = typeof raw === "string" ? JSON.stringify(raw) : String(raw);
  if (s.kind === "bool") {
    if (typeof raw === "boolean") return raw;
    const v = String(raw).trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(v)) return true;
    if (["false", "0", "no", "off"].includes(v)) return false;
    throw new ConfigError(`--${s.flag} (${s.env}) is on or off (true/false), got ${shown}`);
  }
  if (s.kind === "int") {
    const n = typeof raw === "number" ? raw : /^\s*-?\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
    const min = s.min ?? 0, max = s.max ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = s.max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
      throw new ConfigError(`--${s.flag} (${s.env}) must be an integer ${range}, got ${shown}`);
    }
    return n;
  }
  if (s.kind === "origins") {
    const list = Array.isArray(raw)
      ? raw.map(String)
      : String(raw).split(",").map((x) => x.trim()).filter(Boolean);
    return Object.freeze(list.map((origin) => {
      if (s.wildcard && origin === "*") return origin;
      // As a browser's Origin header has it: scheme and host lower-case, no default port.
      const normalized = /^https?:\/\/[^/\s]+$/i.test(origin) ? URL.parse(origin)?.origin : undefined;
      if (normalized === undefined) {
        throw new ConfigError(
          `--${s.flag} (${s.env}) takes origins like "https://chat.example.com"${
            s.wildcard ? ' or "*"' : ""
          }, got ${JSON.stringify(origin)}`,
        );
      }
      return normalized;
    }));
  }
  const value = String(raw);
  if (s.kind === "choice" && !s.choices.includes(value)) {
    throw new ConfigError(`--${s.flag} (${s.env}) must be one of ${s.choices.join(", ")}, got ${shown}`);
  }
  if (value === "") throw new ConfigError(`--${s.flag} (${s.env}) must not be empty`);
  const pattern = s.kind === "string" ? s.pattern : undefined;
  if (pattern && !pattern.re.test(value)) {
    let got = shown;
    if (s.kind === "string" && s.secret) {
      const at = [...value].findIndex((_, i, all) => !pattern.re.test(all.slice(0, i + 1).join("")));
      got = `a value (not shown) that breaks the rule at character ${at + 1}, ${
        JSON.stringify([...value][at])
      }`;
    }
    throw new ConfigError(`--${s.flag} (${s.env}) takes ${pattern.says}, got ${got}`);
  }
  return value;
}

/**
 * Reads settings from command-line flags (`--port 9000` or `--port=9000`) over environment variables.
 * `env` is a lookup so that `main.ts` decides how the environment is read.
 * @throws {ConfigError} on an unknown flag or a bad value.
 */
export function configFromArgs(args: readonly string[], env: (name: string) => string | undefined): Config {
  const input: Record<string, string> = {};
  for (const s of SETTINGS) {
    const v = env(s.env);
    if (v !== undefined && v !== "") input[s.key] = v;
  }
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const s = m && byFlag.get(m[1]);
    if (!m || !s) throw new ConfigError(`unknown option ${JSON.stringify(arg)}; see --help`);
    let value = m[2];
    // A switch: `--reuse-port` alone means on.
    if (value === undefined && s.kind === "bool") value = "true";
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(`--${s.flag} needs a value`);
    }
    input[s.key] = value;
  }
  return resolveConfig(input);
}
