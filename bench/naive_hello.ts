/**
 * The naive baseline (bench/peers/deno_naive.ts, run unchanged) plus one thing: each connection is sent
 * one frame as it opens, the size of our `welcome`. It tells how much of what a connection costs our
 * server is Deno's for a socket that has been written to once, which the naive server never does in S3.
 *
 *     deno run --allow-net --allow-read bench/naive_hello.ts PORT
 * @module
 */

/** About the size of our server's `welcome` to a guest (its token, limits and release). */
const HELLO = JSON.stringify({ type: "welcome", pad: "x".repeat(560) });

const upgrade = Deno.upgradeWebSocket;
// The naive server calls Deno.upgradeWebSocket; each socket it makes says hello when it opens.
Object.defineProperty(Deno, "upgradeWebSocket", {
  value: (req: Request, options?: Deno.UpgradeWebSocketOptions) => {
    const made = upgrade(req, options);
    made.socket.addEventListener("open", () => made.socket.send(HELLO));
    return made;
  },
});
await import("./peers/deno_naive.ts");
