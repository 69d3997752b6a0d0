/**
 * The open room's topic under its title, and for moderators a "Room settings" button: a dialog for
 * the topic, read-only and slow mode. Topics are user text: `textContent` only.
 * @module
 */
import { MAX_TOPIC_CHARS } from "../chat-client.js";
import { ask } from "./dialog.js";
import { byId, el } from "./dom.js";
import { isDirect } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */

/** The slow-mode choices offered, in seconds (0: off). */
const SLOW_MODES = [0, 10, 30, 60, 300, 900];

/** @param {number} s */
function slowLabel(s) {
  if (s === 0) return "Off";
  return s < 60 ? `One message every ${s} s` : `One message every ${s / 60} min`;
}

/** @param {AppState} state */
export function createRoomInfo(state) {
  const topic = byId("view-topic", HTMLElement);
  const settings = byId("room-settings", HTMLButtonElement);

  settings.addEventListener("click", async () => {
    const room = state.active;
    const r = state.client.rooms.get(room);
    if (!r) return;
    const rules = r.rules;
    /** @type {HTMLInputElement | undefined} */
    let readOnly;
    /** @type {HTMLSelectElement | undefined} */
    let slow;
    const answer = await ask({
      title: `#${room} settings`,
      confirm: "Save",
      input: { label: "Topic", value: rules.topic, maxLength: MAX_TOPIC_CHARS },
      extra: (form) => {
        const ro = el("label", "ask-check");
        readOnly = el("input");
        readOnly.type = "checkbox";
        readOnly.checked = rules.readOnly;
        ro.append(readOnly, document.createTextNode(" Read-only: only moderators post"));
        const sl = el("label", "ask-label", "Slow mode");
        slow = el("select", "ask-input");
        const choices = SLOW_MODES.includes(rules.slowModeSeconds)
          ? SLOW_MODES
          : [...SLOW_MODES, rules.slowModeSeconds].sort((a, b) => a - b);
        for (const s of choices) {
          const o = el("option", "", slowLabel(s));
          o.value = String(s);
          o.selected = s === rules.slowModeSeconds;
          slow.append(o);
        }
        sl.append(slow);
        form.append(ro, sl);
      },
    });
    if (!answer || !readOnly || !slow) return;
    /** @type {Partial<import("../chat-client.js").RoomRules>} */
    const change = {};
    if (answer.value !== rules.topic) change.topic = answer.value;
    if (readOnly.checked !== rules.readOnly) change.readOnly = readOnly.checked;
    const seconds = Number(slow.value);
    if (seconds !== rules.slowModeSeconds) change.slowModeSeconds = seconds;
    if (Object.keys(change).length === 0) return;
    try {
      state.client.setRules(room, change);
    } catch (e) {
      toast(/** @type {Error} */ (e).message);
    }
  });

  return {
    /** The open room's topic, and the settings button when you moderate it. */
    render() {
      const { active, client } = state;
      const r = active && !isDirect(active) ? client.rooms.get(active) : undefined;
      const text = r?.rules.topic ?? "";
      if (topic.textContent !== text) topic.textContent = text;
      topic.hidden = text === "";
      topic.title = text;
      settings.hidden = !r?.joined || !client.moderates(r.name);
      if (r) settings.setAttribute("aria-label", `Settings of #${r.name}: topic, read-only, slow mode`);
    },
  };
}
