/**
 * Engine and sharing failures as the client hears them: one place maps an error thrown below the
 * chat rules to a protocol error with a stable code and a sentence about what could not be done.
 * @module
 */
import { UnavailableError } from "../engine.ts";
import { ProtocolError } from "../protocol.ts";

/** What a failed engine call was doing, for the sentence the client gets. */
export type Failed =
  /** Reading a room's (or a conversation's) history, rules or members. */
  | { reading: string }
  /** Looking up or reaching people (names, directory, lines to a person). */
  | "people"
  /** Running a search. */
  | "search"
  /** Storing a read position: where (`room "x"`, `this conversation`). */
  | { marking: string }
  /** A reaction, edit, delete or moderation action in a room. */
  | { acting: string }
  /** Reading the room directory. */
  | "directory";

/**
 * The protocol error for `e`, thrown by the engine or sharing while doing `what`: `unavailable` when
 * it is out of reach for a moment, `store_failed` otherwise. A {@link ProtocolError} passes unchanged.
 */
export function engineError(what: Failed, e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e;
  const away = e instanceof UnavailableError;
  if (what === "search") {
    return away
      ? new ProtocolError("unavailable", "Search cannot reach the store now; try again in a moment")
      : new ProtocolError("store_failed", "The search could not be run now; try again later");
  }
  if (what === "people") {
    return away
      ? new ProtocolError(
        "unavailable",
        "People on other servers cannot be reached now; try again in a moment",
      )
      : new ProtocolError("store_failed", "That could not be done now; try again later");
  }
  if (what === "directory") {
    return away
      ? new ProtocolError("unavailable", "The room directory cannot be read now; try again in a moment")
      : new ProtocolError("store_failed", "The room directory cannot be read now; try again later");
  }
  if ("reading" in what) {
    return away
      ? new ProtocolError(
        "unavailable",
        `Room "${what.reading}" cannot be reached now; join it again in a moment`,
      )
      : new ProtocolError(
        "store_failed",
        `The history of room "${what.reading}" cannot be read now; join it again later`,
      );
  }
  if ("marking" in what) {
    return away
      ? new ProtocolError(
        "unavailable",
        `Your read position in ${what.marking} cannot be stored now (storage is out of reach for a moment); try again`,
      )
      : new ProtocolError(
        "store_failed",
        `Your read position in ${what.marking} could not be stored; try again`,
      );
  }
  return away
    ? new ProtocolError(
      "unavailable",
      `That could not be done in room "${what.acting}" now (storage is out of reach for a moment); try again`,
    )
    : new ProtocolError(
      "store_failed",
      `That could not be done in room "${what.acting}" now; try again later`,
    );
}

/** Every frame read after shutdown began is answered with this. */
export const SHUTTING_DOWN = new ProtocolError(
  "shutting_down",
  "The server is restarting and took nothing more; reconnect in a moment and send it again",
);
