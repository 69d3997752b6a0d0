/**
 * Nicknames: what a name may hold, the form it is shown in, and the key that makes lookalikes one name.
 *
 * - A name is taken in its NFKC form: full-width and mathematical letters fold to plain ones
 *   (`ａｌｉｃｅ`, `𝐚lice` become `alice`), a decomposed `e` + U+0308 becomes `ë`.
 * - Its letters come from one script (Unicode TR39 "highly restrictive": one script, or Latin with
 *   Han, Hiragana and Katakana, with Han and Bopomofo, or with Han and Hangul); digits and `_ - .`
 *   go with any script. `аlice` (Cyrillic а) is refused.
 * - Two names are one name when they share one of their {@link nameKeys}: TR39 confusable skeletons,
 *   case-insensitive, so whole-script lookalikes (`аӏісе` in Cyrillic, `alıce`, `aIice`) are `alice`.
 *
 * Pure functions of strings; the hub calls them when a name is given or looked up, not per room message.
 * @module
 */
import CONFUSABLES from "unhomoglyph/data.json" with { type: "json" };

/** Most characters (Unicode code points, as `NAME_RE`'s `u` flag counts them) in a nickname. */
export const NAME_MAX_CHARS = 32;

const NAME_RE = new RegExp(`^[\\p{L}\\p{N}_.-]{1,${NAME_MAX_CHARS}}$`, "u");
/**
 * A valid name is at most 32 code points after NFKC, each made of at most 4 UTF-16 units before it
 * (the longest canonical decomposition is 4 code points), so longer input is refused unnormalised.
 */
const RAW_MAX_UNITS = NAME_MAX_CHARS * 8;
const ASCII_NAME_RE = /^[A-Za-z0-9_.-]*$/;
/** TR39 confusables.txt (Unicode 13.0.0), as shipped by `unhomoglyph`: one code point to its prototype. */
const PROTOTYPE: Readonly<Record<string, string | undefined>> = CONFUSABLES;

/**
 * Every Script value this runtime's regular expressions know (Unicode 16). `tests/names_test.ts`
 * checks that each letter and digit outside Common/Inherited is in one of them, so a newer
 * Unicode in a newer Deno shows up as a failing test, not as a hole.
 */
const SCRIPTS = (
  "Latin Cyrillic Greek Han Hiragana Katakana Hangul Bopomofo Arabic Armenian Bengali Devanagari Ethiopic " +
  "Georgian Gujarati Gurmukhi Hebrew Kannada Khmer Lao Malayalam Myanmar Oriya Sinhala Tamil Telugu Thaana " +
  "Thai Tibetan Adlam Ahom Anatolian_Hieroglyphs Avestan Balinese Bamum Bassa_Vah Batak Bhaiksuki Brahmi " +
  "Braille Buginese Buhid Canadian_Aboriginal Carian Caucasian_Albanian Chakma Cham Cherokee Chorasmian " +
  "Coptic Cuneiform Cypriot Cypro_Minoan Deseret Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan " +
  "Elymaic Garay Glagolitic Gothic Grantha Gunjala_Gondi Gurung_Khema Hanifi_Rohingya Hanunoo Hatran " +
  "Imperial_Aramaic Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kawi Kayah_Li Kharoshthi " +
  "Khitan_Small_Script Khojki Khudawadi Kirat_Rai Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian " +
  "Mahajani Makasar Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui " +
  "Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Nabataean Nag_Mundari Nandinagari " +
  "New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Ol_Onal Old_Hungarian Old_Italic " +
  "Old_North_Arabian Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Osage " +
  "Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan " +
  "Saurashtra Sharada Shavian Siddham SignWriting Sogdian Sora_Sompeng Soyombo Sundanese Sunuwar " +
  "Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Takri Tangsa Tangut Tifinagh Tirhuta " +
  "Todhri Toto Tulu_Tigalari Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square"
).split(" ");

/** The script sets a name may be written in: TR39 highly restrictive, then every script alone. */
const SCRIPT_SETS: readonly (readonly string[])[] = [
  ["Latin", "Han", "Hiragana", "Katakana"],
  ["Latin", "Han", "Bopomofo"],
  ["Latin", "Han", "Hangul"],
  ...SCRIPTS.filter((s) => s !== "Latin").map((s) => [s]),
];
/** Compiled on first use: most names are Latin and never need the other 170 expressions. */
const setRes: (RegExp | undefined)[] = [];
/** Names the server itself speaks under: `system` signs the server API's messages. */
const RESERVED = ["system"];
let reservedKeys: Set<string> | undefined;

/**
 * The name as the server keeps and shows it: `raw` in NFKC. Input too long to be a name is
 * returned as is (for {@link nameProblem} to refuse) rather than normalised at any length.
 */
export function canonicalName(raw: string): string {
  if (raw.length > RAW_MAX_UNITS || ASCII_NAME_RE.test(raw)) return raw; // ASCII is its own NFKC
  return raw.normalize("NFKC");
}

/**
 * Why `name` (already {@link canonicalName}) is not a valid nickname, or `undefined` when it is:
 * 1-{@link NAME_MAX_CHARS} letters, digits, `_`, `-`, `.`, whose letters come from one script set.
 */
export function nameProblem(name: string): string | undefined {
  if (!NAME_RE.test(name)) {
    return `names are 1-${NAME_MAX_CHARS} letters, digits, "_", "-" or ".", got ${quote(name)}`;
  }
  // The server speaks under these (the API's system messages): nobody may look like it.
  reservedKeys ??= new Set(RESERVED.flatMap(nameKeys));
  if (nameKeys(name).some((k) => reservedKeys!.has(k))) return `${quote(name)} is reserved for the server`;
  if (ASCII_NAME_RE.test(name)) return undefined;
  for (let i = 0; i < SCRIPT_SETS.length; i++) {
    const re = setRes[i] ??= new RegExp(
      `^[${SCRIPT_SETS[i].map((s) => `\\p{scx=${s}}`).join("")}\\p{scx=Zyyy}\\p{scx=Zinh}]*$`,
      "u",
    );
    if (re.test(name)) return undefined;
  }
  return `${quote(name)} mixes scripts (${scriptsOf(name).join(", ")}); a name's letters come from one ` +
    `script (Latin may go with Han, Hiragana, Katakana, Hangul or Bopomofo)`;
}

/**
 * The keys under which a name is held: two names that share a key are one name, and a DM to a name
 * reaches the person holding one of its keys. Two keys, because case-insensitive uniqueness and TR39
 * disagree on capitals: the first is the skeleton of the lower-cased name (`ALICE` = `alice`,
 * `alıce` = `alice`, Cyrillic `аӀісе` = `alice`), the second the lower-cased skeleton of the name as
 * written (`aIice` = `alice` because `I` looks like `l`; Greek `ΒΟΒ` = `BOB`). One key for both would
 * have to make `i` and `l` one letter (and, through other capitals, `n` and `v`, `r` and `u` ...).
 * A skeleton is TR39's: NFD, each code point to its prototype, NFD. Keys are never shown.
 * @returns one key, or two when they differ; the case-insensitive one first.
 */
export function nameKeys(name: string): string[] {
  const ascii = ASCII_NAME_RE.test(name);
  const lower = name.toLowerCase();
  const folded = ascii ? lower.replace(ASCII_FOLD_RE, asciiFold) : fold(lower);
  const asWritten = ascii ? name.replace(ASCII_FOLD_RE, asciiFold) : fold(name);
  return folded === asWritten ? [folded] : [folded, asWritten];
}

/** The TR39 skeleton of `s`, lower-cased. */
function fold(s: string): string {
  let out = "";
  for (const ch of s.normalize("NFD")) out += PROTOTYPE[ch] ?? ch;
  return out.normalize("NFD").toLowerCase();
}

/**
 * Most names are ASCII, and an ASCII string's {@link fold} is its characters' folds one by one (NFD
 * leaves ASCII alone and ASCII prototypes are ASCII), so a table made by `fold` itself gives the keys
 * in a quarter of the time (about 1 us instead of 4 for `alice-2`): a DM looks its target up.
 */
const ASCII_FOLDS = new Map<string, string>();
for (const ch of "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-") {
  const key = fold(ch);
  if (key !== ch) ASCII_FOLDS.set(ch, key);
}
const ASCII_FOLD_RE = new RegExp(`[${[...ASCII_FOLDS.keys()].join("").replace(/[-\]\\^]/g, "\\$&")}]`, "g");
const asciiFold = (ch: string) => ASCII_FOLDS.get(ch)!;

/**
 * `name` with `suffix` appended, `name` cut first so the result has at most {@link NAME_MAX_CHARS}
 * code points. Cut by code point, not UTF-16 unit, so an astral letter is never split into a lone
 * surrogate. Names hold no combining marks (the name rules refuse them), so a code point boundary is
 * a character boundary.
 */
export function withSuffix(name: string, suffix: string): string {
  const room = NAME_MAX_CHARS - [...suffix].length;
  if (name.length <= room) return name + suffix; // at most `room` units: at most `room` code points
  const chars = [...name];
  return (chars.length <= room ? name : chars.slice(0, room).join("")) + suffix;
}

/** The scripts of `name`'s letters, for the sentence that refuses a mixed name. */
function scriptsOf(name: string): string[] {
  const found = new Set<string>();
  for (const ch of name) {
    if (/[\p{scx=Zyyy}\p{scx=Zinh}]/u.test(ch)) continue;
    const s = SCRIPTS.find((s) => new RegExp(`\\p{scx=${s}}`, "u").test(ch));
    found.add(s?.replaceAll("_", " ") ?? "unknown");
  }
  return [...found].sort();
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);
}
