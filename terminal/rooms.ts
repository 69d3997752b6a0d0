/**
 * `/rooms`: the rooms you are in, with what is unread in each. Kept to this one function: when the
 * server lists rooms (a room directory), this is where `/rooms` asks it.
 * @module
 */
import type { ChatClient } from "../static/chat-client.js";
import type { Formatter } from "./format.ts";

/** One line per room you are in (the shown one marked), then the direct conversations with unread messages. */
export function roomLines(client: ChatClient, current: string | undefined, fmt: Formatter): string[] {
  const lines = [...client.rooms.values()].map((r) => {
    const state = r.removed ? r.removed.reason : r.joined ? "" : "joining";
    // The shown room's messages are read as they come (the server hears it a moment later).
    const unread = r.unread && r.name !== current
      ? `${r.unread} unread${r.mentions ? `, ${r.mentions} mentioning you` : ""}`
      : "";
    const notes = [r.name === current ? "shown" : "", state, unread].filter(Boolean).join("; ");
    return `#${r.name}${notes ? ` (${notes})` : ""}`;
  });
  for (const d of client.directs.values()) {
    if (d.unread) lines.push(`*${fmt.person(d.peer)}* (${d.unread} unread)`);
  }
  return lines.length ? lines : ["in no room: /join ROOM"];
}
