/**
 * A small modal dialog (the page's `<dialog>`, so focus stays in it and Escape cancels) that asks
 * to confirm an action, optionally with one line of text (a reason, a topic) and extra fields.
 * Everything shown is set with `textContent`.
 * @module
 */
import { el } from "./dom.js";

/**
 * @typedef {object} AskOptions
 * @property {string} title
 * @property {string} [message] a sentence under the title
 * @property {string} confirm the confirming button's text ("Ban", "Save")
 * @property {boolean} [danger] the action cannot be undone: a red button
 * @property {{ label: string, value?: string, maxLength?: number }} [input] a one-line text field
 * @property {(form: HTMLFormElement) => void} [extra] adds more fields to the form (before the buttons)
 */

/**
 * Shows the dialog and resolves with the text field's value ("" without one) and the form when
 * confirmed, or undefined when cancelled (Cancel, Escape). The focus goes back where it was.
 * @param {AskOptions} opts
 * @returns {Promise<{ value: string, form: HTMLFormElement } | undefined>}
 */
export function ask(opts) {
  const back = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  const dialog = el("dialog", "ask");
  const form = el("form", "ask-form");
  form.method = "dialog";
  const title = el("h2", "ask-title", opts.title);
  title.id = `ask-title-${Math.random().toString(36).slice(2)}`;
  dialog.setAttribute("aria-labelledby", title.id);
  form.append(title);
  if (opts.message) form.append(el("p", "ask-message", opts.message));
  /** @type {HTMLInputElement | undefined} */
  let input;
  if (opts.input) {
    const label = el("label", "ask-label", opts.input.label);
    input = el("input", "ask-input");
    input.name = "value";
    input.autocomplete = "off";
    input.value = opts.input.value ?? "";
    if (opts.input.maxLength) input.maxLength = opts.input.maxLength;
    label.append(input);
    form.append(label);
  }
  opts.extra?.(form);
  const buttons = el("div", "ask-buttons");
  const cancel = el("button", "secondary-button", "Cancel");
  cancel.type = "button";
  cancel.value = "cancel";
  const ok = el("button", `primary-button ${opts.danger ? "danger" : ""}`.trim(), opts.confirm);
  ok.type = "submit";
  ok.value = "ok";
  buttons.append(cancel, ok);
  form.append(buttons);
  dialog.append(form);
  document.body.append(dialog);

  return new Promise((resolve) => {
    let answered = false;
    /** @param {{ value: string, form: HTMLFormElement } | undefined} answer */
    const done = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (back?.isConnected) back.focus();
      resolve(answer);
    };
    cancel.addEventListener("click", () => done(undefined));
    dialog.addEventListener("cancel", () => done(undefined)); // Escape
    dialog.addEventListener("close", () => done(undefined));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      done({ value: input?.value.trim() ?? "", form });
    });
    dialog.showModal();
    (input ?? ok).focus();
  });
}
