/**
 * The sign-in card, shown when this device has no name yet, or, on a server without guests, saying
 * that the host site signs people in.
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

/**
 * Shows the card without the name form: this server takes signed people only, so a name typed here
 * could never connect. Links to the host's sign-in page when the server names one.
 * @param {string | null | undefined} signInUrl
 */
export function showSignedOnly(signInUrl) {
  byId("name-form", HTMLFormElement).hidden = true;
  byId("signed-only", HTMLElement).hidden = false;
  const lead = document.querySelector(".login-lead");
  if (lead instanceof HTMLElement) lead.hidden = true;
  const url = signInUrl ? URL.parse(signInUrl) : null;
  if (url && (url.protocol === "https:" || url.protocol === "http:")) {
    const link = byId("sign-in-link", HTMLAnchorElement);
    link.href = url.href;
    link.hidden = false;
    byId("signed-only-how", HTMLElement).textContent = "Sign in there, then open the chat from the site.";
  }
  byId("login", HTMLElement).hidden = false;
}
