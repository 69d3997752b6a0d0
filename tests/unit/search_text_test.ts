/**
 * The search text rules (lib/search_text.ts): words in every script, folding, the query language,
 * FTS syntax taken literally, highlighting ranges. The FTS5 expressions are run against a real FTS5
 * table here too, so "taken literally" is checked where it matters.
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  fold,
  ftsMatch,
  indexTerms,
  matches,
  matchRanges,
  parseQuery,
  QueryError,
  searchId,
  tagsOf,
  tokensOf,
} from "../../lib/search_text.ts";

const MAX = 256;
const q = (s: string) => parseQuery(s, MAX);
/** What `query` highlights in `text`, as the substrings. */
const marked = (text: string, query: string) => matchRanges(text, q(query)).map(([s, e]) => text.slice(s, e));

Deno.test("tokensOf() splits words in every script: Thai by the segmenter, CJK runs apart from other letters", () => {
  // CJK runs are one token each (their pairs do the finding, see indexTerms), cut from Latin letters.
  assert.deepEqual(tokensOf("你好世界"), ["你好世界"]);
  assert.deepEqual(tokensOf("Deno会議で"), ["deno", "会議で"]);
  assert.deepEqual(tokensOf("สวัสดีครับ ผมชื่อ"), ["สวัสดี", "ครับ", "ผม", "ชื่อ"]);
  assert.deepEqual(tokensOf("Привет, мир!"), ["привет", "мир"]);
  assert.deepEqual(tokensOf("مرحبا بالعالم"), ["مرحبا", "بالعالم"]);
  assert.deepEqual(tokensOf("Don't e-mail me at 3.14"), ["don", "t", "e", "mail", "me", "at", "3", "14"]);
});

Deno.test("fold() drops case and optional accents, keeps the marks that are letters (Thai)", () => {
  assert.equal(fold("Café"), "cafe");
  assert.equal(fold("ÉCOLE Zoë Ångström"), "ecole zoe angstrom");
  assert.equal(fold("ｆｕｌｌ"), "full");
  assert.equal(fold("Ёлка"), "елка");
  assert.equal(fold("ชื่อ"), "ชื่อ");
});

Deno.test("indexTerms() indexes CJK runs as characters and pairs too, and tells links", () => {
  const t = indexTerms("会議室で see https://example.com");
  assert.deepEqual(t.words, ["会議室で", "see", "https", "example", "com"]);
  assert.deepEqual(t.extra.sort(), ["会", "会議", "室", "室で", "議", "議室", "で"].sort());
  assert.equal(t.link, true);
  assert.equal(indexTerms("no link at www or http").link, false);
  assert.equal(indexTerms("see www.example.com").link, true);
});

Deno.test("parseQuery() reads words, the last as a prefix, phrases, -words and every operator", () => {
  const p = q('Café "exact phrase" -spam from:@Ada in:#dev before:2026-12-01 after:2026-11-01 has:link deci');
  assert.deepEqual(p.terms, [
    { tokens: ["cafe"], prefix: false },
    { tokens: ["exact", "phrase"], prefix: false },
    { tokens: ["deci"], prefix: true },
  ]);
  assert.deepEqual(p.without, [{ tokens: ["spam"], prefix: false }]);
  assert.equal(p.from, "ada");
  assert.equal(p.in, "dev");
  assert.equal(p.before, Date.UTC(2026, 11, 1));
  assert.equal(p.after, Date.UTC(2026, 10, 2));
  assert.equal(p.hasLink, true);
  // A space after the last word: it is whole.
  assert.deepEqual(q("deci ").terms, [{ tokens: ["deci"], prefix: false }]);
  // A word the segmenter cuts is a phrase of its parts.
  assert.deepEqual(q("e-mail ").terms, [{ tokens: ["e", "mail"], prefix: false }]);
  // CJK text is looked for by its character pairs, the Latin word beside it as a word.
  assert.deepEqual(q("Deno会議室").terms, [
    { tokens: ["deno"], prefix: false },
    { tokens: ["会議", "議室"], prefix: false, cjk: "会議室" },
  ]);
});

Deno.test("parseQuery() takes an unclosed quote to the end, and unknown operators as words", () => {
  assert.deepEqual(q('"two words').terms, [{ tokens: ["two", "words"], prefix: false }]);
  assert.deepEqual(q("lang:fr ").terms, [{ tokens: ["lang", "fr"], prefix: false }]);
  assert.deepEqual(q('-"bad idea" good ').without, [{ tokens: ["bad", "idea"], prefix: false }]);
});

Deno.test("parseQuery() refuses long queries, queries with nothing to find and bad operator values", () => {
  const long = "a".repeat(10_000);
  assert.throws(
    () => q(long),
    (e) => e instanceof QueryError && /at most 256 characters, got 10000/.test(e.message),
  );
  for (
    const bad of ["", "   ", "*", '"', '""', "-spam", "from:ada", "in:dev before:2026-01-01", "( ) * ^ :"]
  ) {
    assert.throws(() => q(bad), QueryError, JSON.stringify(bad));
  }
  assert.throws(() => q("x before:2026-13-01"), /needs a date like 2026-12-01/);
  assert.throws(() => q("x after:2026-02-30"), /needs a date like 2026-12-01/);
  assert.throws(() => q("x has:image"), /knows only "has:link"/);
  // has:link alone is something to look for.
  assert.equal(q("has:link").hasLink, true);
});

Deno.test("ftsMatch() quotes every token: FTS syntax typed in a query is looked for as words", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(`CREATE VIRTUAL TABLE t USING fts5 (words, extra, tags, content = '', contentless_delete = 1,
           tokenize = 'ascii')`);
  const add = db.prepare("INSERT INTO t (rowid, words, extra, tags) VALUES (?, ?, ?, ?)");
  const rows = [
    "near the tags column",
    "words and more words",
    "plain text",
    'a "quoted" one',
    "https://x.example",
  ];
  rows.forEach((text, i) => {
    const t = indexTerms(text);
    add.run(i + 1, t.words.join(" "), t.extra.join(" "), t.link ? "link" : "");
  });
  const find = (query: string) =>
    (db.prepare("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid").all(ftsMatch(q(query))) as {
      rowid: number;
    }[])
      .map((r) => r.rowid);
  assert.deepEqual(find("NEAR( tags "), [1]);
  assert.deepEqual(find("NEAR(near, tags) "), []);
  // Not the tags column's filter: the words "tags" and "link" side by side.
  assert.deepEqual(find("tags:link "), []);
  assert.deepEqual(find("has:link"), [5]);
  assert.deepEqual(find("words: "), [2]);
  assert.deepEqual(find('plain* OR "text '), []);
  assert.deepEqual(find("plain* text "), [3]);
  // Column names and operators are words every one of which must be there: none has them all.
  assert.deepEqual(find("{words extra}: plain "), []);
  assert.deepEqual(find("plain OR text "), []);
  assert.deepEqual(find('"quoted'), [4]);
  assert.deepEqual(find("^plain text "), [3]);
  assert.deepEqual(find("^plain AND text NOT tags "), []);
  assert.deepEqual(find("-plain words "), [2]);
  db.close();
});

Deno.test("matches() finds what the FTS expression finds: prefix, phrase, CJK pairs, -word, has:link", () => {
  const t = indexTerms("明日の会議室で Café decisions https://x.example");
  assert.ok(matches(t, q("cafe ")));
  assert.ok(matches(t, q("deci")));
  assert.ok(!matches(t, q("deci ")));
  assert.ok(matches(t, q("会議 ")));
  assert.ok(matches(t, q("議室 ")));
  assert.ok(matches(t, q('"cafe decisions"')));
  assert.ok(!matches(t, q('"decisions cafe"')));
  assert.ok(!matches(t, q("cafe -decisions")));
  assert.ok(matches(t, q("cafe has:link")));
  assert.ok(!matches(indexTerms("Café"), q("cafe has:link")));
  assert.ok(matches(indexTerms("你好世界"), q("你好 ")));
  assert.ok(matches(indexTerms("你好世界"), q("你好世界 ")));
  assert.ok(matches(indexTerms("全世界"), q("世界")));
  assert.ok(matches(indexTerms("明日の会議は"), q("会議")));
  assert.ok(!matches(indexTerms("明日の会議は"), q("会社")));
  assert.ok(matches(indexTerms("我爱北京天安门"), q("京天")));
  assert.ok(matches(indexTerms("Deno会議で"), q("deno会議")));
  assert.ok(matches(indexTerms("안녕하세요 여러분"), q("안녕")));
});

Deno.test("matchRanges() marks words, prefixes, phrases and CJK words inside longer ones", () => {
  assert.deepEqual(marked("Le Café est ouvert, CAFE!", "cafe "), ["Café", "CAFE"]);
  assert.deepEqual(marked("we decided: decisions", "deci"), ["decided", "decisions"]);
  assert.deepEqual(marked("an exact phrase here", '"exact phrase"'), ["exact phrase"]);
  assert.deepEqual(marked("明日の会議室で", "議室 "), ["議室"]);
  assert.deepEqual(marked("你好世界", "世界 "), ["世界"]);
  assert.deepEqual(marked("spam and eggs", "eggs -spam"), ["eggs"]);
  assert.deepEqual(matchRanges("a b a", q("a ")), [[0, 1], [4, 5]]);
});

Deno.test("searchId() orders by ms, then by the order messages were stored in it", () => {
  assert.equal(searchId(5, 0), 5000);
  assert.equal(searchId(5, 5000), 5001);
  assert.equal(searchId(6, 5001), 6000);
  // A clock that went back keeps the order of storing.
  assert.equal(searchId(4, 5001), 5002);
});

Deno.test("ftsMatch() narrows to rooms and from: by tags, whatever characters the names hold", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(`CREATE VIRTUAL TABLE t USING fts5 (words, extra, tags, content = '', contentless_delete = 1,
           tokenize = 'ascii')`);
  const add = db.prepare("INSERT INTO t (rowid, words, extra, tags) VALUES (?, ?, ?, ?)");
  const rows: [string, string, string][] = [["a.b-c", "Zoë", "news"], ["a", "zoe", "news"], [
    "a.b",
    "Ada",
    "news",
  ]];
  rows.forEach(([room, from, text], i) => {
    const terms = indexTerms(text);
    add.run(i + 1, terms.words.join(" "), "", tagsOf(room, from, terms.link));
  });
  const find = (query: string, rooms?: string[]) =>
    (db.prepare("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid").all(ftsMatch(q(query), rooms)) as {
      rowid: number;
    }[]).map((r) => r.rowid);
  assert.deepEqual(find("news "), [1, 2, 3]);
  assert.deepEqual(find("news ", ["a.b-c"]), [1]);
  assert.deepEqual(find("news ", ["a", "a.b"]), [2, 3]);
  assert.deepEqual(find("news from:zoe"), [1, 2]);
  assert.deepEqual(find("news from:ZOË", ["a"]), [2]);
  db.close();
});

Deno.test("tagsOf() writes a room and a sender as the hex of their UTF-8, whatever they hold", () => {
  // Stored in the index: a change here would leave older rows unfound.
  assert.equal(tagsOf("lobby", "Ada", false), "r6c6f626279 w616461");
  assert.equal(tagsOf("@a:b", "ADA-9", true), "link r40613a62 w6164612d39");
  assert.equal(tagsOf("café", "Zoë", false), "r636166c3a9 w7a6f65");
  assert.equal(tagsOf("会議", "ZOE\u0308", false), "re4bc9ae8adb0 w7a6f65");
  assert.equal(fold("ASCII Name-9"), "ascii name-9");
});

Deno.test("indexTerms() takes ASCII text by its fast path to the same words as the general one", () => {
  const alphabet = "aZ09 _-.,:;!?'\"()[]{}<>/\\@#$%^&*+=~`|\t\n";
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 2000; i++) {
    let text = "";
    const n = next() % 80;
    for (let j = 0; j < n; j++) {
      const c = alphabet[next() % alphabet.length];
      text += /[aZ09]/.test(c)
        ? String.fromCharCode((c === "a" ? 97 : c === "Z" ? 65 : 48) + next() % (c < "A" ? 10 : 26))
        : c;
    }
    if (i % 7 === 0) text += " see https://example.com/x";
    const fast = indexTerms(text);
    assert.deepEqual(fast.words, tokensOf(text), JSON.stringify(text));
    assert.deepEqual(fast.extra, []);
    assert.equal(fast.link, i % 7 === 0, JSON.stringify(text));
  }
});

Deno.test("indexTerms() folds a text's runs in one call to the same words and CJK terms as word by word", () => {
  // Marks alone and after other letters, case with context (final sigma, dotted I), compatibility forms
  // that become letters, separators or CJK (℡, ½, ﬁ, ㊀, ﷺ, half-width kana), Hangul jamo that compose.
  const pieces = [
    "a",
    "Z",
    "7",
    "é",
    "e\u0301",
    "\u0308",
    "\u0301\u0323",
    "ΟΔΟΣ",
    "Σ",
    "ς",
    "ё",
    "й",
    "İ",
    "ı",
    "ß",
    "ẞ",
    "℡",
    "½",
    "ﬁ",
    "Ⅻ",
    "㊀",
    "ﷺ",
    "ｱ",
    "ー",
    "会",
    "議",
    "か\u3099",
    "가",
    "\u1100\u1161",
    "مرحبا",
    "\u064e",
    "שָׁלוֹם",
    "क्षि",
    " ",
    "-",
    ".",
    "'",
    "’",
    "\n",
    "\u200d",
  ];
  const oldFold = (s: string) =>
    s.normalize("NFKD").replace(
      /(?<=[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Arabic}\p{Script=Hebrew}]\p{M}*)\p{M}/gu,
      "",
    ).normalize("NFC").toLowerCase();
  let seed = 11;
  // The high bits: the low ones of this generator repeat in short cycles.
  const below = (n: number) => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 * n);
  for (let i = 0; i < 3000; i++) {
    let text = "";
    for (let j = below(24); j > 0; j--) text += pieces[below(pieces.length)];
    const t = indexTerms(text);
    assert.deepEqual(t.words, tokensOf(text), JSON.stringify(text));
    assert.equal(fold(text), oldFold(text), JSON.stringify(text));
    const extra = new Set<string>();
    for (
      const [run] of oldFold(text).matchAll(
        /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}ー]+/gu,
      )
    ) {
      const chars = [...run];
      chars.forEach((c, k) => (extra.add(c), k + 1 < chars.length && extra.add(c + chars[k + 1])));
    }
    assert.deepEqual(t.extra, [...extra], JSON.stringify(text));
  }
});
