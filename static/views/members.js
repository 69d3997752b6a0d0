/**
 * The member list: who is in the open room (or, in a direct conversation, online in any of your
 * rooms), you first; a click on someone opens a direct conversation. The line under the view title
 * sums it up ("3 members", "Online"). A moderator gets, per member, a "Moderate" button that opens
 * their actions: mute for 10 minutes (or unmute), kick, and ban (asked first, with a reason).
 *
 * A big room (the server sends its count and pages of members, see docs/protocol.md "Big rooms")
 * shows the count, the pages loaded so far in the server's order, a search box (by the start of a
 * name or display name, asked as you type) and more as the list scrolls to its end (or "More").
 * @module
 */
import { ask } from "./dialog.js";
import { avatar, byId, el, personName } from "./dom.js";
import { isDirect, onlineNames } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createMembers>} Members */

/** How long the member list's "Mute" lasts. */
const MUTE_SECONDS = 600;
/** How long a big room's member search waits for the typing to pause before it asks (ms). */
const SEARCH_PAUSE_MS = 250;

/** @param {AppState} state */
export function createMembers(state) {
  const title = byId("members-title", HTMLElement);
  const list = byId("member-list", HTMLUListElement);
  const viewSub = byId("view-sub", HTMLElement);
  /** Whose actions are open (room and name), so a redraw keeps them open. */
  let open = { room: "", name: "" };

  // A big room's search box and "More": made here, shown only in a big room.
  const search = document.createElement("input");
  search.type = "search";
  search.id = "member-search";
  search.className = "member-search";
  search.placeholder = "Search members";
  search.setAttribute("aria-label", "Search members by the start of their name");
  search.maxLength = 32;
  search.hidden = true;
  const more = el("button", "small-button member-more-page", "More");
  more.type = "button";
  more.id = "member-more";
  more.hidden = true;
  list.before(search);
  list.after(more);
  /** The cursor last asked for, so scrolling asks once per page. */
  let asked = "";
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let searchTimer;
  /** The view the panel last showed: the search box's text belongs to it, not to the next one. */
  let shown = state.active;

  /** Asks for the next page of the open big room's members, once per cursor. */
  function loadMore() {
    const room = state.active;
    const r = room && !isDirect(room) ? state.client.rooms.get(room) : undefined;
    if (!r?.membersNext || asked === `${room}\n${r.membersNext}`) return;
    asked = `${room}\n${r.membersNext}`;
    run(() => state.client.members(r.name, { after: r.membersNext, prefix: r.membersPrefix }));
  }
  more.addEventListener("click", loadMore);
  list.addEventListener("scroll", () => {
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 40) loadMore();
  });
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const room = state.active;
      if (!room || isDirect(room)) return;
      asked = "";
      run(() => state.client.members(room, { prefix: search.value }));
    }, SEARCH_PAUSE_MS);
  });

  /**
   * Runs a moderation action; a refusal comes back as a server error (a toast).
   * @param {() => void} act
   */
  function run(act) {
    try {
      act();
    } catch (e) {
      toast(/** @type {Error} */ (e).message);
    }
  }

  /**
   * The moderator's actions on `name` in `room`: a disclosure button and the group it opens.
   * @param {string} room
   * @param {string} name
   */
  function moderationControls(room, name) {
    const { client } = state;
    const r = client.rooms.get(room);
    const isOpen = open.room === room && open.name === name;
    const toggle = el("button", "member-more", "⋯");
    toggle.type = "button";
    toggle.dataset.control = "toggle";
    toggle.setAttribute("aria-label", `Moderate ${name}`);
    toggle.setAttribute("aria-expanded", String(isOpen));
    const group = el("div", "member-actions");
    group.id = `moderate-${room}-${name}`;
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", `Moderate ${name} in #${room}`);
    group.hidden = !isOpen;
    toggle.setAttribute("aria-controls", group.id);
    toggle.addEventListener("click", () => {
      open = isOpen ? { room: "", name: "" } : { room, name };
      render();
      focusControl(name, isOpen ? "toggle" : "first");
    });
    const until = r?.muted.get(name);
    const muted = until !== undefined && (until === 0 || until > Date.now());
    /**
     * @param {string} text
     * @param {string} control
     * @param {string} label
     * @param {() => void} act
     */
    const button = (text, control, label, act) => {
      const b = el("button", "small-button", text);
      b.type = "button";
      b.dataset.control = control;
      b.setAttribute("aria-label", label);
      b.addEventListener("click", act);
      return b;
    };
    group.append(
      muted
        ? button("Unmute", "unmute", `Unmute ${name}`, () => run(() => client.moderate("unmute", room, name)))
        : button(
          "Mute 10 min",
          "mute",
          `Mute ${name} for 10 minutes`,
          () => run(() => client.moderate("mute", room, name, { seconds: MUTE_SECONDS })),
        ),
      button(
        "Kick",
        "kick",
        `Kick ${name} out of #${room}`,
        () => run(() => client.moderate("kick", room, name)),
      ),
      button("Ban…", "ban", `Ban ${name} from #${room}`, async () => {
        const answer = await ask({
          title: `Ban ${name} from #${room}?`,
          message: `${name} is taken out of the room and cannot join it again until unbanned.`,
          confirm: "Ban",
          danger: true,
          input: { label: "Reason (optional, everyone sees it)", maxLength: 200 },
        });
        if (answer) run(() => client.moderate("ban", room, name, { reason: answer.value }));
      }),
    );
    group.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.stopPropagation();
      open = { room: "", name: "" };
      render();
      focusControl(name, "toggle");
    });
    return [toggle, group];
  }

  /**
   * Focuses a control of `name`'s row after a redraw ("first": the first action).
   * @param {string} name
   * @param {string} control
   */
  function focusControl(name, control) {
    const row = [...list.children].find((li) => li instanceof HTMLElement && li.dataset.name === name);
    const target = control === "first"
      ? row?.querySelector(".member-actions button")
      : row?.querySelector(`[data-control="${control}"]`);
    if (target instanceof HTMLElement) target.focus();
  }

  function render() {
    const { active, client } = state;
    /** @type {string[]} */
    let names;
    const big = active && !isDirect(active) ? client.rooms.get(active) : undefined;
    const count = big?.memberCount;
    if (active !== shown) {
      shown = active;
      clearTimeout(searchTimer);
      search.value = "";
      // Its list was left filtered by an earlier search: the box is empty now, so the list is whole again.
      if (big?.memberCount !== undefined && big.membersPrefix !== "") {
        asked = "";
        run(() => client.members(big.name, {}));
      }
    }
    search.hidden = count === undefined;
    more.hidden = count === undefined || !big?.membersNext;
    if (count === undefined && search.value !== "") search.value = "";
    if (active && !isDirect(active)) {
      names = [...(client.rooms.get(active)?.members ?? [])];
      const n = count ?? names.length;
      title.textContent = `Members · ${n}`;
      viewSub.textContent = n === 1 ? "1 member" : `${n} members`;
    } else {
      const seen = new Map();
      for (const r of client.rooms.values()) for (const m of r.members) seen.set(m.toLowerCase(), m);
      names = [...seen.values()];
      title.textContent = `Online in your rooms · ${names.length}`;
      viewSub.textContent = active
        ? (onlineNames(client).has(active.slice(1).toLowerCase()) ? "Online" : "Not in your rooms right now")
        : "";
    }
    // A big room's pages stay in the server's order (code units), so "More" adds at the end and
    // someone told present by a presence line takes their place among them.
    names.sort((a, b) =>
      (client.isMe(b) ? 1 : 0) - (client.isMe(a) ? 1 : 0) ||
      (count === undefined ? a.localeCompare(b) : a < b ? -1 : a > b ? 1 : 0)
    );
    const room = active && !isDirect(active) ? active : "";
    const moderator = room !== "" && client.moderates(room) && !!client.rooms.get(room)?.joined;
    // A redraw (presence, a rename) must not take the keyboard focus away from a row's control.
    const focused = document.activeElement instanceof HTMLElement && list.contains(document.activeElement)
      ? {
        name: document.activeElement.closest("li")?.dataset.name ?? "",
        control: document.activeElement.dataset.control ?? "",
      }
      : undefined;
    list.replaceChildren(...names.map((name) => {
      const li = el("li", "member");
      li.dataset.name = name;
      const me = client.isMe(name);
      const inner = me ? el("div", "member-item") : el("button", "member-item");
      const display = client.displayOf(name);
      if (inner instanceof HTMLButtonElement) {
        inner.type = "button";
        inner.setAttribute(
          "aria-label",
          `${display === undefined ? name : `${display} (@${name})`}: send a direct message`,
        );
        inner.addEventListener("click", () => state.go(`@${name}`));
      }
      const dot = el("span", "presence online");
      dot.setAttribute("aria-hidden", "true");
      const face = el("span", "avatar-wrap");
      face.append(avatar(name, "small", display), dot);
      const label = el("span", "member-label");
      label.append(personName("member-name", name, display));
      if (display !== undefined) label.append(el("span", "member-handle", `@${name}`));
      inner.append(face, label);
      if (me) inner.append(el("span", "member-you", "you"));
      li.append(inner);
      if (moderator && !me) li.append(...moderationControls(room, name));
      return li;
    }));
    if (focused?.control) focusControl(focused.name, focused.control);
  }

  return { render };
}
