/**
 * The sign-in card, shown when this device has no name yet, or, on a server without guests, saying
 * that the host site signs people in.
 * @module
 */
import { canonicalDisplay, displayProblem, isValidName } from "../chat-client.js";
import { byId } from "./dom.js";
import { toast } from "./toasts.js";

/**
 * Shows the card and calls `onName` once a name is entered: a handle as it is (`ada`), any other name
 * (`Ada Lovelace`, `O'Brien`) as a display name, from which the server makes the handle.
 * @param {(who: { name?: string, display?: string }) => void} onName
 */
export function askName(onName) {
  const login = byId("login", HTMLElement);
  const form = byId("name-form", HTMLFormElement);
  const input = byId("name-input", HTMLInputElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = input.value.trim();
    const display = canonicalDisplay(typed);
    const problem = isValidName(typed) ? undefined : displayProblem(display);
    if (problem) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      toast(`That name cannot be used: ${problem}`);
      return;
    }
    login.hidden = true;
    onName(isValidName(typed) ? { name: typed } : { display });
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
