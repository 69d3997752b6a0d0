/**
 * A minimal raw RFC 6455 client over TCP, for what the WebSocket API cannot do: stop reading,
 * ignore pings, send arbitrary frames.
 * @module
 */

/** Extra request headers; an array value is sent as one header line per element. */
export type RawHeaders = Record<string, string | string[]>;

/** A raw TCP WebSocket connection after a successful handshake. */
export class RawSocket {
  private constructor(readonly conn: Deno.TcpConn, readonly head: string) {}

  /**
   * Connects and upgrades; `path` includes the query. Throws if the answer is not 101.
   * A `Host` in `headers` replaces the default `127.0.0.1:PORT`; an array value is sent as several lines.
   */
  static async open(port: number, path: string, headers: RawHeaders = {}): Promise<RawSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const head = await writeHandshake(conn, port, path, headers).then(() => readHead(conn));
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    }
    return new RawSocket(conn, head);
  }

  /** Sends one masked frame. */
  async sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    await writeAll(this.conn, maskedFrame(opcode, payload));
  }

  /** Sends text frames in one write, so the server reads them all at once. */
  async sendTexts(texts: string[]): Promise<void> {
    const frames = texts.map((t) => maskedFrame(1, new TextEncoder().encode(t)));
    await writeAll(this.conn, concat(frames, false));
  }

  /**
   * Sends one frame of a fragmented message (`fin` false on all but the last), masked with a zero key
   * so that hundreds of megabytes go out without a byte-by-byte loop.
   */
  async sendFragment(opcode: number, fin: boolean, payload: Uint8Array): Promise<void> {
    const len = payload.length;
    const head = new Uint8Array(14);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 127;
    new DataView(head.buffer).setBigUint64(2, BigInt(len));
    // head[10..13] stay 0: the mask key.
    await writeAll(this.conn, head);
    await writeAll(this.conn, payload);
  }

  /** Sends a text frame. */
  sendText(text: string): Promise<void> {
    return this.sendFrame(1, new TextEncoder().encode(text));
  }

  /** Reads whatever arrives until the server closes the TCP connection or `ms` pass; returns the bytes. */
  async drain(ms: number): Promise<Uint8Array & { ended?: boolean }> {
    const chunks: Uint8Array[] = [];
    const buf = this.#buf;
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
  /** One buffer per socket: a read left waiting by one drain() fills it for the next. */
  readonly #buf = new Uint8Array(65536);

  /** Closes the TCP connection and waits for a read still in flight. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed already */ }
    await this.#read;
  }
}

/** One final client frame of `opcode`, masked with a random key. */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
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
  return out;
}

/**
 * Sends one upgrade request and returns the answer: its head and, unless it is a 101, its body.
 * For refusals, which the WebSocket API reports without status or body. Closes the connection.
 */
export async function rawHandshake(
  port: number,
  path: string,
  headers: RawHeaders = {},
): Promise<{ status: number; head: string; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeHandshake(conn, port, path, headers);
    const head = await readHead(conn);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    const body = new Uint8Array(status === 101 ? 0 : length);
    for (let off = 0; off < body.length;) {
      const n = await conn.read(body.subarray(off));
      if (n === null) break;
      off += n;
    }
    return { status, head, body: new TextDecoder().decode(body) };
  } finally {
    conn.close();
  }
}

async function writeHandshake(
  conn: Deno.Conn,
  port: number,
  path: string,
  headers: RawHeaders,
): Promise<void> {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const host = Object.entries(headers).find(([k]) => k.toLowerCase() === "host")?.[1] ?? `127.0.0.1:${port}`;
  const extra = Object.entries(headers)
    .filter(([k]) => k.toLowerCase() !== "host")
    .flatMap(([k, v]) => [v].flat().map((line) => `${k}: ${line}\r\n`)).join("");
  const req = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  await writeAll(conn, new TextEncoder().encode(req));
}

/** Reads only the response head, byte by byte, so nothing after it is consumed. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  while (!(bytes.length >= 4 && bytes.slice(-4).join() === "13,10,13,10")) {
    if ((await conn.read(one)) === null) break;
    bytes.push(one[0]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
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
