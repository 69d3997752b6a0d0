/** The display name rules (lib/display_names.ts, static/shared/display.js), one function at a time. */
import assert from "node:assert/strict";
import {
  canonicalDisplay,
  DISPLAY_MAX_CHARS,
  displayProblem,
  displaysOf,
  handleFromDisplay,
} from "../../lib/display_names.ts";
import * as shared from "../../static/shared/display.js";
import * as page from "../../static/chat-client.js";

Deno.test("display names: any script, spaces and punctuation are kept as written (NFKC, spaces trimmed)", () => {
  for (
    const ok of [
      "Ada Lovelace",
      "O'Brien",
      "Zoë Smith-Jones",
      "山田 太郎",
      "محمد بن موسى",
      "Nguyễn Thị Minh Khai",
      "Ivan Иванов",
      "👩‍💻 Ada", // the zero width joiner of an emoji sequence stays
      "می‌خواهم", // Persian needs the zero width non-joiner
      "<b>hi</b>", // shown as text, never HTML
      "x".repeat(DISPLAY_MAX_CHARS),
    ]
  ) {
    assert.equal(displayProblem(canonicalDisplay(ok)), undefined, JSON.stringify(ok));
  }
  assert.equal(canonicalDisplay("  Ada \t  Lovelace  "), "Ada Lovelace");
  assert.equal(canonicalDisplay("two\nlines\u2028here"), "two lines here", "a line break is a space");
  assert.equal(canonicalDisplay("Ｚｏｅ"), "Zoe", "full-width folds");
  assert.equal(canonicalDisplay("Zoe\u0308"), "Zoë", "decomposed marks compose");
});

Deno.test("display names: what would break the page around them is refused, with the code point named", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["   ", /empty/],
    ["x".repeat(DISPLAY_MAX_CHARS + 1), /at most 64 characters/],
    ["x".repeat(10_000), /at most 64 characters/],
    ["evil\u202Eexe.txt", /U\+202E/], // right-to-left override
    ["a\u2066b", /U\+2066/], // left-to-right isolate
    ["a\u200Fb", /U\+200F/], // right-to-left mark
    ["in\u200Bvisible", /U\+200B/], // zero width space
    ["bell\u0007", /U\+0007/],
    ["private\uE000", /U\+E000/],
    ["unassigned\u{40000}", /U\+40000/],
    ["tag\u{E0041}", /U\+E0041/],
    ["lone\uD800", /lone surrogate/],
    ["Z\u0300\u0301\u0302\u0303\u0304algo", /combining marks/],
  ];
  for (const [bad, why] of cases) {
    const problem = displayProblem(canonicalDisplay(bad));
    assert.ok(problem, `${JSON.stringify(bad)} is refused`);
    assert.match(problem, why, JSON.stringify(bad));
  }
});

Deno.test("a handle made from a display name keeps the handle rules, or there is none", () => {
  const cases: [string, string | undefined][] = [
    ["Ada Lovelace", "Ada_Lovelace"],
    ["O'Brien", "OBrien"],
    ["Zoë Smith-Jones", "Zoë_Smith-Jones"],
    ["山田 太郎", "山田_太郎"],
    ["  -Ada-  ", "Ada"],
    ["Dr. Who?", "Dr._Who"],
    ["Ivan Иванов", undefined], // scripts mixed
    ["!!!", undefined],
    ["system", undefined], // the server's own name
    ["a".repeat(40) + " b", "a".repeat(32)],
  ];
  for (const [display, handle] of cases) {
    assert.equal(handleFromDisplay(canonicalDisplay(display)), handle, display);
  }
});

Deno.test("displaysOf keeps the display names of the members only", () => {
  assert.deepEqual(displaysOf(["a", "b"], { a: "A", gone: "G" }), { a: "A" });
  assert.equal(displaysOf(["b"], { a: "A" }), undefined);
  assert.equal(displaysOf(["a"], undefined), undefined);
  assert.equal(displaysOf(["constructor"], {}), undefined, "only its own fields");
});

Deno.test("the server and the page check display names with one rule", () => {
  assert.equal(canonicalDisplay, shared.canonicalDisplay);
  assert.equal(displayProblem, shared.displayProblem);
  assert.equal(page.displayProblem, shared.displayProblem);
  assert.equal(page.DISPLAY_MAX_CHARS, DISPLAY_MAX_CHARS);
});
