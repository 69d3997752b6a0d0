/**
 * Small DOM helpers shared by the views. User text reaches the page through `textContent` and
 * `createElement` only: nothing here parses markup.
 * @module
 */

/**
 * The page's element `#id`, checked to be of `type`.
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function byId(id, type) {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`The page lacks #${id}`);
  return e;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A colour (one of eight) for a name, stable across sessions.
 * @param {string} name
 */
export function hue(name) {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of name.toLowerCase()) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  return `hue-${h % 8}`;
}

/**
 * A person's round initial: its colour from their handle `name` (unique, stable), its letter from how
 * they are shown (`shown`, their display name when they have one).
 * @param {string} name
 * @param {string} [extra]
 * @param {string} [shown]
 */
export function avatar(name, extra = "", shown = name) {
  const a = el("span", `avatar ${hue(name)} ${extra}`.trim(), [...shown][0]?.toUpperCase() ?? "?");
  a.setAttribute("aria-hidden", "true");
  return a;
}

/**
 * A person's name as the page shows it: their display name with their handle as its hover text, or
 * the handle alone. `label` replaces what is shown ("You").
 * @param {string} className
 * @param {string} handle
 * @param {string | undefined} display
 * @param {string} [label]
 */
export function personName(className, handle, display, label) {
  const span = el("span", className, label ?? display ?? handle);
  span.dataset.handle = handle;
  if (display !== undefined || label !== undefined) span.title = `@${handle}`;
  return span;
}
