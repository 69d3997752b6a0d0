/**
 * The answer budget: how much one `joined`, `history`, `audit` or `conversations` answer may hold, and
 * the refusal of new answers while a client has not read the earlier ones. What one connection makes
 * the server hold is counted before the work is done: an answer's size is held from when its read
 * starts until it is queued or dropped, so a client that asks many times at once and never reads gets
 * small errors, not pages.
 * @module
 */
import type { Config } from "../config.ts";
import type { ChatMessage } from "../domain.ts";
import { ProtocolError } from "../protocol.ts";
import type { Conn } from "./connections.ts";

/** JSON around one message in an answer (`{"type":"message","room":…,"seq":…}`), for the size budget. */
const ANSWER_OVERHEAD_CHARS = 160;

/** The size rules of answers, from the settings. */
export class AnswerBudget {
  /** Characters one answer may hold: at most half of what a client may have queued. */
  readonly chars: number;
  readonly #maxBuffered: number;

  constructor(cfg: Pick<Config, "maxAnswerBytes" | "maxBufferedBytes">) {
    this.chars = Math.min(cfg.maxAnswerBytes, Math.floor(cfg.maxBufferedBytes / 2));
    this.#maxBuffered = cfg.maxBufferedBytes;
  }

  /**
   * Holds room for one answer, refusing a client whose earlier answers (queued, or still being read)
   * leave no room. Returns the release, to call once the answer is queued or dropped; calling it
   * again does nothing.
   * @throws {ProtocolError} `busy`.
   */
  reserve(conn: Conn): () => void {
    const backlog = conn.peer.backlog?.() ?? 0;
    if (backlog + conn.answering + this.chars > this.#maxBuffered) {
      throw new ProtocolError(
        "busy",
        "Earlier answers are still on their way to you; read them before asking for more",
      );
    }
    conn.answering += this.chars;
    let held = true;
    return () => {
      if (held) held = false, conn.answering -= this.chars;
    };
  }

  /** Holds room for the answer `work` produces, from its start until it settles. */
  during<T>(conn: Conn, work: () => Promise<T>): Promise<T> {
    const release = this.reserve(conn);
    try {
      return work().finally(release);
    } catch (e) {
      release();
      throw e;
    }
  }

  /** The newest of `messages` (oldest first) whose texts fit in one answer. */
  newest(messages: ChatMessage[]): ChatMessage[] {
    let size = 0;
    for (let i = messages.length - 1; i >= 0; i--) {
      size += sizeOf(messages[i]);
      if (size > this.chars) return messages.slice(i + 1);
    }
    return messages;
  }

  /** The oldest of `messages` (oldest first) that fit in one answer: a forward page. */
  oldest(messages: ChatMessage[]): ChatMessage[] {
    let size = 0;
    for (let i = 0; i < messages.length; i++) {
      size += sizeOf(messages[i]);
      if (size > this.chars) return messages.slice(0, i);
    }
    return messages;
  }
}

/** About the characters one message takes in an answer. */
function sizeOf(m: ChatMessage): number {
  let n = m.text.length + m.from.length + ANSWER_OVERHEAD_CHARS;
  if (m.replyTo) n += m.replyTo.text.length + m.replyTo.from.length + 40;
  for (const name of m.mentions ?? []) n += name.length + 3;
  for (const e in m.reactions ?? {}) n += 2 * e.length + 12;
  return n;
}
