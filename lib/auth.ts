/**
 * Signed identities: verifies the tokens a host application signs for its users (JWT, HS256 with a
 * shared secret, RS256/ES256/EdDSA with a public key or a JWKS) and turns their claims into an
 * {@link Identity}. Verification is npm:jose's; this module only chooses keys, maps failures to
 * stable codes and checks the claims the chat gives meaning to.
 * @module
 */
import {
  createLocalJWKSet,
  errors,
  importSPKI,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { type Config, ConfigError } from "./config.ts";
import { type Identity, isUid, keyOfUid, MAX_UID_CHARS, type Role } from "./identity.ts";
import { canonicalDisplay, displayProblem, handleFromDisplay } from "./display_names.ts";
import { canonicalName, NAME_MAX_CHARS, nameProblem } from "./names.ts";
import { ProtocolError, utf8Length } from "./protocol.ts";

/** Checks one signed token. */
export interface Verifier {
  /**
   * The identity `token` proves.
   * @throws {ProtocolError} `token_expired` (its `exp` passed, or it is not valid yet is `bad_token`),
   *   `bad_token` for anything else; the sentence never repeats the token.
   */
  verify(token: string): Promise<Identity>;
}

/** Public-key algorithms accepted with `--jwt-public-key` (EdDSA as jose 6 also spells it). */
const PUBLIC_ALGS = ["RS256", "ES256", "EdDSA", "Ed25519"];
const ROLES: readonly Role[] = ["member", "moderator", "admin"];
const ROOM_PATTERN_RE = /^[\p{L}\p{N}_.-]{1,64}\*?$|^\*$/u;

/**
 * Whether `token` is meant as a signed token (a JWT: dot-separated parts), not a guest's: guest tokens
 * never hold a dot. A malformed JWT counts, so that it is refused `bad_token`, not taken for a guest.
 */
export function looksLikeJwt(token: string): boolean {
  return token.includes(".");
}

/**
 * Reads the `--jwt-public-key` file (once, at start-up).
 * @throws {ConfigError} naming the setting, the path and what to do.
 */
export async function readKeyFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const hint = e instanceof Deno.errors.PermissionDenied
      ? `: add it to --allow-read (deno run --allow-read=static,data,lib/store_writer.ts,${path} ...)`
      : `: ${(e as Error).message}`;
    throw new ConfigError(
      `--jwt-public-key (CHAT_JWT_PUBLIC_KEY) cannot read ${JSON.stringify(path)}${hint}`,
    );
  }
}

/**
 * A verifier for the keys `config` names, or `undefined` when none is configured (guests only).
 * `keyText` is the content of the `--jwt-public-key` file (see {@link readKeyFile}).
 * @throws {ConfigError} when the key file holds neither a usable PEM public key nor a JWKS.
 */
export async function createVerifier(config: Config, keyText?: string): Promise<Verifier | undefined> {
  // Imported once: handing jose the raw bytes imports them on every verification (132 us a token
  // instead of 52, measured).
  const secret = config.jwtSecret
    ? await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(config.jwtSecret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    )
    : undefined;
  const publicKey = config.jwtPublicKey && keyText !== undefined
    ? await publicKeyOf(config.jwtPublicKey, keyText)
    : undefined;
  if (!secret && !publicKey) return undefined;
  const algorithms = [...(secret ? ["HS256"] : []), ...(publicKey ? PUBLIC_ALGS : [])];
  // HS256 goes to the secret, everything else to the public key; `algorithms` has already refused
  // `none` and any algorithm no key is configured for.
  const getKey: JWTVerifyGetKey = (header, token) =>
    header.alg === "HS256" ? secret! : publicKey!(header, token);
  const options = {
    algorithms,
    requiredClaims: ["sub", "exp"],
    ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
    ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
  };
  const maxBytes = config.maxTokenBytes;
  return {
    async verify(token) {
      const size = utf8Length(token);
      if (size > maxBytes) {
        throw new ProtocolError("bad_token", `Tokens are at most ${maxBytes} bytes, got ${size}`);
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, options));
      } catch (e) {
        throw refusal(e);
      }
      return identityOf(payload);
    },
  };
}

/** The key function for a PEM (SPKI) or JWKS file's text. */
async function publicKeyOf(path: string, text: string): Promise<JWTVerifyGetKey> {
  const shown = JSON.stringify(path);
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(trimmed);
    } catch {
      throw new ConfigError(`--jwt-public-key ${shown} starts like JSON but does not parse as a JWKS`);
    }
    if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
      throw new ConfigError(`--jwt-public-key ${shown} is JSON without a "keys" array: not a JWKS`);
    }
    return createLocalJWKSet(jwks);
  }
  if (!trimmed.startsWith("-----BEGIN PUBLIC KEY-----")) {
    throw new ConfigError(
      `--jwt-public-key ${shown} holds neither a PEM public key (-----BEGIN PUBLIC KEY-----) nor a JWKS`,
    );
  }
  // A PEM does not say its algorithm; the key's type does (RSA, P-256 or Ed25519).
  for (const alg of ["RS256", "ES256", "EdDSA"]) {
    try {
      const key = await importSPKI(trimmed, alg);
      return (header) => {
        const ok = header.alg === alg || (alg === "EdDSA" && header.alg === "Ed25519");
        // jose turns a wrong algorithm for the key into a verification failure; say it plainly.
        if (!ok) throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
        return key;
      };
    } catch { /* not this type: try the next */ }
  }
  throw new ConfigError(
    `--jwt-public-key ${shown} is a public key of a kind not supported: use RSA (RS256), P-256 (ES256) or Ed25519`,
  );
}

/** jose's failure as a stable code and a sentence (jose's own messages never hold the token). */
function refusal(e: unknown): ProtocolError {
  if (e instanceof errors.JWTExpired) {
    return new ProtocolError("token_expired", "The token has expired: get a new one from the site");
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    const why = e.claim === "nbf" || e.claim === "iat"
      ? "it is not valid yet"
      : `its "${e.claim}" claim is ${e.reason === "missing" ? "missing" : "not accepted"}`;
    return new ProtocolError("bad_token", `The token is refused: ${why}`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) {
    return new ProtocolError("bad_token", "The token is refused: its algorithm is not accepted here");
  }
  if (e instanceof errors.JWSSignatureVerificationFailed || e instanceof errors.JWKSNoMatchingKey) {
    return new ProtocolError(
      "bad_token",
      "The token is refused: its signature does not match a key of this server",
    );
  }
  return new ProtocolError("bad_token", "The token is refused: it is not a well-formed signed token");
}

/** The claims the chat reads, checked; anything out of shape is `bad_token`. */
function identityOf(p: JWTPayload): Identity {
  const bad = (why: string) => new ProtocolError("bad_token", `The token is refused: ${why}`);
  const sub = p.sub;
  if (!isUid(sub)) {
    throw bad(`"sub" must be 1-${MAX_UID_CHARS} characters without control characters`);
  }
  const role = p.role ?? "member";
  if (!ROLES.includes(role as Role)) throw bad(`"role" must be one of ${ROLES.join(", ")}`);
  const identity: Identity = {
    key: keyOfUid(sub),
    uid: sub,
    name: handleOf(p, sub),
    role: role as Role,
    exp: (p.exp as number) * 1000,
    guest: false,
  };
  const display = displayOf(p.name);
  if (display !== undefined && display !== identity.name) identity.display = display;
  if (p.rooms !== undefined) {
    if (!Array.isArray(p.rooms) || !p.rooms.every((r) => typeof r === "string" && ROOM_PATTERN_RE.test(r))) {
      throw bad(`"rooms" must be an array of room names or "prefix*" patterns`);
    }
    identity.rooms = p.rooms.map((r: string) => r.toLowerCase());
  }
  return identity;
}

/**
 * The person's handle: the `handle` claim, else `preferred_username` (OpenID Connect's), else the
 * `name` claim, the first that keeps the handle rules; else one made from the `name` claim as a display
 * name (`Ada Lovelace` is `Ada_Lovelace`); else a safe form of `sub` (its handle characters, cut to the
 * limit), and `user` when nothing of it is left.
 */
function handleOf(p: JWTPayload, sub: string): string {
  for (const claim of [p.handle, p.preferred_username, p.name]) {
    if (typeof claim !== "string") continue;
    const name = canonicalName(claim);
    if (nameProblem(name) === undefined) return name;
  }
  const display = displayOf(p.name);
  const made = display === undefined ? undefined : handleFromDisplay(display);
  if (made !== undefined) return made;
  const fromSub = [...canonicalName(sub).replace(/[^\p{L}\p{N}_.-]/gu, "")].slice(0, NAME_MAX_CHARS).join("");
  return fromSub !== "" && nameProblem(fromSub) === undefined ? fromSub : "user";
}

/** The `name` claim as a display name, or undefined when it is missing or breaks the display name rules. */
function displayOf(claim: unknown): string | undefined {
  if (typeof claim !== "string") return undefined;
  const display = canonicalDisplay(claim);
  return displayProblem(display) === undefined ? display : undefined;
}
