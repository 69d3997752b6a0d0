/**
 * A minimal raw RFC 6455 client over TCP, for what the WebSocket API cannot do: stop reading,
 * ignore pings, send arbitrary frames.
 * @module
 */

/** A raw TCP WebSocket connection after a successful handshake. */
export class RawSocket {
  private constructor(readonly conn: Deno.TcpConn, readonly head: string) {}

  /** Connects and upgrades; `path` includes the query. Throws if the answer is not 101. */
  static async open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    const req =
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
    await conn.write(new TextEncoder().encode(req));
    // Read only the response head, byte by byte, so nothing after it is consumed.
    const bytes: number[] = [];
    const one = new Uint8Array(1);
    while (!(bytes.length >= 4 && bytes.slice(-4).join() === "13,10,13,10")) {
      if ((await conn.read(one)) === null) break;
      bytes.push(one[0]);
    }
    const head = new TextDecoder().decode(new Uint8Array(bytes));
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    }
    return new RawSocket(conn, head);
  }

  /** Sends one masked frame. */
  async sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    const len = payload.length;
    const header = len < 126
      ? [0x80 | opcode, 0x80 | len]
      : len < 65536
      ? [0x80 | opcode, 0x80 | 126, len >> 8, len & 255]
      : [
        0x80 | opcode,
        0x80 | 127,
        0,
        0,
        0,
        0,
        (len >>> 24) & 255,
        (len >>> 16) & 255,
        (len >>> 8) & 255,
        len & 255,
      ];
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const out = new Uint8Array(header.length + 4 + len);
    out.set(header);
    out.set(mask, header.length);
    for (let i = 0; i < len; i++) out[header.length + 4 + i] = payload[i] ^ mask[i & 3];
    await writeAll(this.conn, out);
  }

  /** Sends a text frame. */
  sendText(text: string): Promise<void> {
    return this.sendFrame(1, new TextEncoder().encode(text));
  }

  /** Reads whatever arrives until the server closes the TCP connection or `ms` pass; returns the bytes. */
  async drain(ms: number): Promise<Uint8Array & { ended?: boolean }> {
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      // A read left waiting at the deadline is picked up by the next drain() or by close().
      this.#read ??= this.conn.read(buf).catch(() => null);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#read,
        new Promise<"timeout">((r) =>
          timer = setTimeout(() => r("timeout"), Math.max(1, deadline - Date.now()))
        ),
      ]);
      clearTimeout(timer);
      if (n === "timeout") break;
      this.#read = undefined;
      if (n === null) return concat(chunks, true);
      chunks.push(buf.slice(0, n));
    }
    return concat(chunks, false);
  }

  #read: Promise<number | null> | undefined;

  /** Closes the TCP connection and waits for a read still in flight. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed already */ }
    await this.#read;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function concat(chunks: Uint8Array[], ended: boolean): Uint8Array & { ended?: boolean } {
  const out: Uint8Array & { ended?: boolean } = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) out.set(c, off), off += c.length;
  out.ended = ended;
  return out;
}

/** The close code in a server close frame found in `bytes`, if any (unmasked server frames). */
export function findCloseCode(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i + 2 <= bytes.length) {
    const op = bytes[i] & 15;
    let len = bytes[i + 1] & 127;
    let off = i + 2;
    if (len === 126) len = (bytes[off] << 8) | bytes[off + 1], off += 2;
    else if (len === 127) {
      len = Number(new DataView(bytes.buffer, bytes.byteOffset + off).getBigUint64(0)), off += 8;
    }
    if (op === 8 && len >= 2 && off + 2 <= bytes.length) return (bytes[off] << 8) | bytes[off + 1];
    i = off + len;
  }
  return undefined;
}
