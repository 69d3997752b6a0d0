/**
 * A host application, as small as one can be: it signs its users in (a name and a session cookie;
 * yours has real accounts), mints chat tokens for them with jose, and shows the chat page in a
 * frame that gets its tokens from here. See docs/embedding.md.
 *
 *     CHAT_JWT_SECRET=... deno run --allow-net --allow-env=CHAT_JWT_SECRET,CHAT_URL,PORT examples/host_app.ts
 * @module
 */
import { SignJWT } from "jose";

/** Options of {@link hostApp}. */
export interface HostAppOptions {
  /** Where the chat server is, e.g. `http://localhost:8000`. */
  chatUrl: string;
  /** The secret the chat server has as `--jwt-secret` (HS256). */
  secret: string;
  /** Seconds a chat token is valid; the chat page asks for a new one before that. @default 300 */
  tokenSeconds?: number;
}

/** The host application's handler: `/` (sign-in or chat), `POST /login`, `POST /chat-token`. */
export function hostApp(opts: HostAppOptions): (req: Request) => Promise<Response> {
  const chatOrigin = new URL(opts.chatUrl).origin;
  const key = new TextEncoder().encode(opts.secret);
  /** Session id to the signed-in user (in memory: a demo). */
  const sessions = new Map<string, { id: string; name: string }>();
  const userOf = (req: Request) => {
    const sid = /(?:^|;\s*)sid=([\w-]+)/.exec(req.headers.get("cookie") ?? "")?.[1];
    return sid === undefined ? undefined : sessions.get(sid);
  };

  return async (req) => {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/login") {
      const name = String((await req.formData()).get("name") ?? "").trim().slice(0, 32) || "someone";
      const sid = crypto.randomUUID();
      // The user id is the app's own, stable one; here one per sign-in.
      sessions.set(sid, { id: `user-${sid.slice(0, 8)}`, name });
      return new Response(null, {
        status: 303,
        headers: { location: "/", "set-cookie": `sid=${sid}; Path=/; HttpOnly; SameSite=Lax` },
      });
    }
    if (req.method === "POST" && url.pathname === "/chat-token") {
      // The chat page (another origin) calls this with our cookie: only it may read the answer.
      const cors = {
        "access-control-allow-origin": chatOrigin,
        "access-control-allow-credentials": "true",
        "cache-control": "no-store",
        vary: "origin",
      };
      const user = userOf(req);
      if (!user) return Response.json({ error: "not signed in" }, { status: 401, headers: cors });
      const token = await new SignJWT({ name: user.name, role: "member" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(user.id)
        .setIssuedAt()
        .setExpirationTime(`${opts.tokenSeconds ?? 300}s`)
        .sign(key);
      return Response.json({ token }, { headers: cors });
    }
    if (req.method === "GET" && url.pathname === "/") {
      const user = userOf(req);
      const chat = `${opts.chatUrl}/?${new URLSearchParams({ tokenUrl: `${url.origin}/chat-token` })}`;
      const body = user
        ? `<p>Signed in as <b>${escape(user.name)}</b>. <a href="${
          escape(chat)
        }" target="_blank">Open the chat in a tab</a>.</p>
<iframe src="${escape(chat)}" title="Chat" style="width:100%;height:80vh;border:1px solid #ccc"></iframe>`
        : `<form method="post" action="/login"><label>Your name <input name="name" required maxlength="32"></label>
<button>Sign in</button></form>`;
      return new Response(
        `<!doctype html><meta charset="utf-8"><title>Host app</title><h1>Host app</h1>${body}`,
        {
          headers: { "content-type": "text/html; charset=utf-8" },
        },
      );
    }
    return new Response("Not found\n", { status: 404 });
  };
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

if (import.meta.main) {
  const secret = Deno.env.get("CHAT_JWT_SECRET");
  if (!secret) {
    console.error("host_app: set CHAT_JWT_SECRET to the chat server's --jwt-secret");
    Deno.exit(1);
  }
  const chatUrl = Deno.env.get("CHAT_URL") ?? "http://localhost:8000";
  const port = Number(Deno.env.get("PORT") ?? 8080);
  Deno.serve({
    port,
    onListen: () => console.log(`host_app: http://localhost:${port}/ (chat at ${chatUrl})`),
  }, hostApp({ chatUrl, secret }));
}
