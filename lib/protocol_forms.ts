/**
 * The PHP tutorials' form frames: `msg=TEXT` (the chat page) and `type=add&ming=NAME` (the nickname
 * page's "add user"), read as the pages write them. What each means on the wire (a message to the current
 * room, a rename) and its refusals are lib/protocol.ts's; this module only knows the forms.
 * @module
 */

/** `msg=TEXT`: the PHP tutorial's first page. */
const FORM_MSG = "msg=";
/** A form whose fields include `type=add`: the nickname page's "add user" (`type=add&ming=NAME`). */
const FORM_ADD_RE = /^(?:[^&=]*=[^&]*&)*type=add(?:&|$)/;

/**
 * Whether `data` is one of the tutorial pages' form frames (`msg=TEXT`, `type=add&ming=NAME`): a
 * connection whose first frame is one of them speaks text mode from then on (see lib/text_mode.ts).
 */
export function isFormFrame(data: string): boolean {
  const d = data.trimStart();
  return d.startsWith(FORM_MSG) || FORM_ADD_RE.test(d);
}

/**
 * A form value as a browser's form encoding writes it: `+` is a space and `%XX` a UTF-8 byte. The
 * tutorial pages send what was typed without encoding it, so a value that does not decode (`100%`,
 * `%ff`) is taken as it is, `+` included: nothing typed is lost or refused for its spelling.
 */
export function decodeFormValue(value: string): string {
  if (!value.includes("%")) return value.replaceAll("+", " ");
  try {
    return decodeURIComponent(value.replaceAll("+", " "));
  } catch {
    return value;
  }
}

/** What a tutorial form frame says: text to send (decoded, trimmed), or a name to take (none: absent). */
export type TutorialForm = { kind: "msg"; text: string } | { kind: "add"; name?: string };

/**
 * The tutorial form `data` is, or undefined when it is none (it is then plain text). `msg=TEXT` is
 * everything after `msg=`, `&` included: the pages do not encode what was typed, so `tom & jerry` must
 * stay whole.
 */
export function readForm(data: string): TutorialForm | undefined {
  const d = data.trim();
  if (d.startsWith(FORM_MSG)) return { kind: "msg", text: decodeFormValue(d.slice(FORM_MSG.length)).trim() };
  if (!FORM_ADD_RE.test(d)) return undefined;
  let name: string | undefined;
  for (const field of d.split("&")) {
    const eq = field.indexOf("=");
    if (eq > 0 && field.slice(0, eq) === "ming") name = decodeFormValue(field.slice(eq + 1)).trim();
  }
  return name === undefined ? { kind: "add" } : { kind: "add", name };
}
