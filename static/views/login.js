/**
 * The sign-in card, shown when this device has no name yet.
 * @module
 */
import { isValidName } from "../chat-client.js";
import { byId } from "./dom.js";
import { toast } from "./toasts.js";

/**
 * Shows the card and calls `onName` with a valid name once one is entered.
 * @param {(name: string) => void} onName
 */
export function askName(onName) {
  const login = byId("login", HTMLElement);
  const form = byId("name-form", HTMLFormElement);
  const input = byId("name-input", HTMLInputElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!isValidName(name)) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      toast(`Names are 1–32 letters, digits, "_", "-" or "."`);
      return;
    }
    login.hidden = true;
    onName(name);
  });
  login.hidden = false;
  input.focus();
}
