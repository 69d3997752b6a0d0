/**
 * The release version, written once: `deno.json`'s `version`. `--version` prints it and `welcome` carries it
 * as `release`, beside the protocol's `version` (which changes only when the wire does).
 * @module
 */
import manifest from "../deno.json" with { type: "json" };

/** This release of the server (semver), as `deno.json` says. */
export const RELEASE: string = manifest.version;
