// @ts-check
// A complete bot: connects, joins a room, answers "!ping" with "pong" and reconnects by itself.
//   deno run --allow-net examples/bot.mjs ws://127.0.0.1:8000/ws lobby pingbot
//   node --experimental-websocket examples/bot.mjs ws://127.0.0.1:8000/ws lobby pingbot  (Node 22+: no flag)
import { ChatClient } from "../static/chat-client.js";

const [url = "ws://127.0.0.1:8000/ws", room = "lobby", name = "pingbot"] = process.argv.slice(2);
// storage: null keeps no identity between runs; backoff: a bot may retry sooner than a page would.
const bot = new ChatClient({ url, name, rooms: [room], storage: null, backoff: { maxMs: 5000 } });

bot.on("welcome", (d) => console.log(`live as ${d.name}`));
bot.on("joined", (d) => console.log(`joined ${d.room}`));
bot.on("servererror", (d) => console.error(`refused: ${d.message}`));
bot.on("message", ({ room, message }) => {
  if (room && !bot.isMe(message.from) && message.text.trim() === "!ping") bot.send({ room, text: "pong" });
});
bot.start();
process.on("SIGTERM", () => bot.stop().then(() => process.exit(0)));
