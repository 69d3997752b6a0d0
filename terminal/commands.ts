/**
 * What a typed line asks for: text for the room shown, or a `/command`. Pure: the session carries
 * it out.
 * @module
 */

/** One typed line, read. */
export type Input =
  | { kind: "say"; text: string }
  | { kind: "join"; room: string }
  | { kind: "leave"; room?: string }
  | { kind: "msg"; to: string; text: string }
  | { kind: "nick"; name: string }
  | { kind: "rooms" }
  | { kind: "who"; room?: string }
  | { kind: "quit" }
  | { kind: "help" }
  | { kind: "none" }
  | { kind: "bad"; message: string };

/**
 * Reads one line of input. An empty line is `none`; `//x` sends `/x`; an unknown or malformed
 * command is `bad`, with the sentence to show.
 */
export function parseInput(line: string): Input {
  if (line.trim() === "") return { kind: "none" };
  if (!line.startsWith("/")) return { kind: "say", text: line };
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  const [, cmd, rest = ""] = /^\/(\S*)\s*(.*)$/s.exec(line) ?? [];
  const args = rest.trim();
  const words = args === "" ? [] : args.split(/\s+/);
  switch (cmd.toLowerCase()) {
    case "join":
    case "j":
      if (words.length !== 1) return { kind: "bad", message: "usage: /join ROOM" };
      return { kind: "join", room: words[0] };
    case "leave":
    case "part":
      if (words.length > 1) return { kind: "bad", message: "usage: /leave [ROOM]" };
      return { kind: "leave", room: words[0] };
    case "msg": {
      const m = /^(\S+)\s+(.*\S.*)$/s.exec(rest);
      if (!m) return { kind: "bad", message: "usage: /msg NAME TEXT" };
      return { kind: "msg", to: m[1], text: m[2] };
    }
    case "nick":
      if (words.length !== 1) return { kind: "bad", message: "usage: /nick NAME" };
      return { kind: "nick", name: words[0] };
    case "rooms":
      return words.length ? { kind: "bad", message: "usage: /rooms" } : { kind: "rooms" };
    case "who":
    case "names":
      if (words.length > 1) return { kind: "bad", message: "usage: /who [ROOM]" };
      return { kind: "who", room: words[0] };
    case "quit":
    case "exit":
      return { kind: "quit" };
    case "help":
    case "?":
      return { kind: "help" };
    default:
      return { kind: "bad", message: `unknown command /${cmd} (/help lists them; //text sends /text)` };
  }
}
