/**
 * "Forget this device": asks, then clears everything the page keeps on this device (your name and
 * token, rooms, messages not sent yet, the rooms' history, the page's offline copy) and starts over at
 * the sign-in card. For a shared computer, and the way a guest signs out.
 * @module
 */
import { ask } from "./dialog.js";
import { byId } from "./dom.js";

/**
 * @param {{ forget: () => Promise<void> }} opts `forget`: clears it all (the page reloads after)
 */
export function createForget({ forget }) {
  const button = byId("forget-device", HTMLButtonElement);
  button.hidden = false;
  button.addEventListener("click", async () => {
    const answer = await ask({
      title: "Forget this device?",
      message: "This browser forgets your name, your rooms, the messages kept for offline use and any " +
        "message not sent yet. What the server keeps stays.",
      confirm: "Forget",
      danger: true,
    });
    if (!answer) return;
    button.disabled = true;
    await forget();
    location.replace(location.pathname);
  });
}
