/**
 * Sharing across processes through Redis: the {@link RedisEngine} keeps rooms, presence and names in
 * Redis, and this is its {@link Sharing} face.
 * @module
 */
import type { RedisEngine } from "./engine_redis.ts";
import { encode, type ServerMessage } from "./server_messages.ts";
import type { Sharing, SharingEvents } from "./sharing.ts";

/** The sharing half of a Redis deployment, served by the engine that also stores its rooms. */
export function redisSharing(engine: RedisEngine): Sharing {
  return {
    spansProcesses: true,
    // The engine's subscribers get stored messages too; they are the storage side's to handle. Lines
    // between processes are JSON text: decoded here, once, into what the chat service is told.
    subscribe: (events: SharingEvents) =>
      engine.subscribe({
        message: () => {},
        line: (room, line) => {
          const msg = decode(line);
          if (msg?.type === "presence") events.presence(room, msg.name, line);
          else events.line(room, line);
        },
        person: (key, line) => {
          const msg = decode(line);
          if (msg) events.person(key, msg);
        },
        renamed: (oldName, newName, rooms) => events.renamed(oldName, newName, rooms),
      }),
    publishLine: (room, line) => engine.publishLine(room, line),
    watch: (room) => engine.watch(room),
    unwatch: (room) => engine.unwatch(room),
    presence: (room, name, present) => engine.presence(room, name, present),
    renamed: (oldName, newName) => engine.renamed(oldName, newName),
    publishRename: (oldName, newName, rooms) => engine.publishRename(oldName, newName, rooms),
    members: (room) => engine.members(room),
    claimName: (key, name) => engine.claimName(key, name),
    nameOf: (key) => engine.nameOf(key),
    releaseName: (key) => engine.releaseName(key),
    whoIs: (name) => engine.whoIs(name),
    sendToPerson: (key, msg) => engine.sendToPerson(key, encode(msg)),
  };
}

/** A server message another process published, or undefined when it is none (logged by nobody: rare). */
function decode(line: string): ServerMessage | undefined {
  try {
    const msg = JSON.parse(line);
    return typeof msg?.type === "string" ? msg as ServerMessage : undefined;
  } catch {
    return undefined;
  }
}
