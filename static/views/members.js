/**
 * The member list: who is in the open room (or, in a direct conversation, online in any of your
 * rooms), you first; a click on someone opens a direct conversation. The line under the view title
 * sums it up ("3 members", "Online").
 * @module
 */
import { avatar, byId, el } from "./dom.js";
import { isDirect, onlineNames } from "./state.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createMembers>} Members */

/** @param {AppState} state */
export function createMembers(state) {
  const title = byId("members-title", HTMLElement);
  const list = byId("member-list", HTMLUListElement);
  const viewSub = byId("view-sub", HTMLElement);

  return {
    render() {
      const { active, client } = state;
      /** @type {string[]} */
      let names;
      if (active && !isDirect(active)) {
        names = [...(client.rooms.get(active)?.members ?? [])];
        title.textContent = `Members · ${names.length}`;
        viewSub.textContent = names.length === 1 ? "1 member" : `${names.length} members`;
      } else {
        const seen = new Map();
        for (const r of client.rooms.values()) for (const m of r.members) seen.set(m.toLowerCase(), m);
        names = [...seen.values()];
        title.textContent = `Online in your rooms · ${names.length}`;
        viewSub.textContent = active
          ? (onlineNames(client).has(active.slice(1).toLowerCase())
            ? "Online"
            : "Not in your rooms right now")
          : "";
      }
      names.sort((a, b) => (client.isMe(b) ? 1 : 0) - (client.isMe(a) ? 1 : 0) || a.localeCompare(b));
      list.replaceChildren(...names.map((name) => {
        const li = el("li", "member");
        li.dataset.name = name;
        const me = client.isMe(name);
        const inner = me ? el("div", "member-item") : el("button", "member-item");
        if (inner instanceof HTMLButtonElement) {
          inner.type = "button";
          inner.setAttribute("aria-label", `${name}: send a direct message`);
          inner.addEventListener("click", () => state.go(`@${name}`));
        }
        const dot = el("span", "presence online");
        dot.setAttribute("aria-hidden", "true");
        const face = el("span", "avatar-wrap");
        face.append(avatar(name, "small"), dot);
        inner.append(face, el("span", "member-name", name));
        if (me) inner.append(el("span", "member-you", "you"));
        li.append(inner);
        return li;
      }));
    },
  };
}
