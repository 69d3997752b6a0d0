/**
 * The Markdown subset the page shows messages in (static/views/markdown.js): each construct, nesting,
 * markers left unclosed, escapes, code left unformatted, link schemes refused, HTML that stays text,
 * and inputs built to make a careless parser quadratic.
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { type MarkdownNode, MAX_NESTING, parseMarkdown } from "../../static/views/markdown.js";

/**
 * The tree as HTML-like text, for readable expectations: elements are tags, text is escaped, so
 * `&lt;b>` is text and `<b>` would be an element.
 */
function html(nodes: MarkdownNode[]): string {
  const esc = (t: string) => t.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  return nodes.map((n) => {
    switch (n.type) {
      case "text":
        return esc(n.text);
      case "code":
        return `<code>${esc(n.text)}</code>`;
      case "pre":
        return `<pre${n.lang ? ` lang=${n.lang}` : ""}>${esc(n.text)}</pre>`;
      case "link":
        return `<a ${n.href}>${html(n.children)}</a>`;
      case "quote":
        return `<q>${html(n.children)}</q>`;
      default:
        return `<${n.type}>${html(n.children)}</${n.type}>`;
    }
  }).join("");
}

const md = (text: string) => html(parseMarkdown(text));

function check(cases: [string, string][]) {
  for (const [text, want] of cases) assert.equal(md(text), want, JSON.stringify(text));
}

Deno.test("parseMarkdown() reads bold, italic, strike, code, links and quotes", () => {
  check([
    ["plain words", "plain words"],
    ["**bold** text", "<strong>bold</strong> text"],
    ["*italic* and _italic_", "<em>italic</em> and <em>italic</em>"],
    ["~~gone~~", "<del>gone</del>"],
    ["run `deno task test` now", "run <code>deno task test</code> now"],
    ["``a ` b``", "<code>a ` b</code>"],
    ["` `` `", "<code>``</code>"],
    ["see [the docs](https://example.com/docs) first", "see <a https://example.com/docs>the docs</a> first"],
    ["[mail me](mailto:ada@example.com)", "<a mailto:ada@example.com>mail me</a>"],
    [
      "[tea](https://en.wikipedia.org/wiki/Tea_(meal))",
      "<a https://en.wikipedia.org/wiki/Tea_(meal)>tea</a>",
    ],
    ["[](https://example.com)", "<a https://example.com/>https://example.com/</a>"],
    ["> quoted\n> twice\nafter", "<q>quoted\ntwice</q>after"],
    [">tight", "<q>tight</q>"],
    ["a > b", "a > b"],
    ["before\n```\nlet x = 1;\n```\nafter", "before<pre>let x = 1;</pre>after"],
    ["```ts\nconst a = 1;\n\nconst b = 2;\n```", "<pre lang=ts>const a = 1;\n\nconst b = 2;</pre>"],
    ["```inline```", "<code>inline</code>"],
  ]);
});

Deno.test("parseMarkdown() turns bare http(s) URLs into links, leaving the sentence's punctuation outside", () => {
  check([
    ["go to https://example.com.", "go to <a https://example.com/>https://example.com</a>."],
    ["(http://example.com/a)", "(<a http://example.com/a>http://example.com/a</a>)"],
    ["https://example.com/a_(b)).", "<a https://example.com/a_(b)>https://example.com/a_(b)</a>)."],
    ["HTTPS://EXAMPLE.COM/X", "<a https://example.com/X>HTTPS://EXAMPLE.COM/X</a>"],
    [
      "https://example.com/snake_case_path_",
      "<a https://example.com/snake_case_path>https://example.com/snake_case_path</a>_",
    ],
    ["**https://example.com**", "<strong><a https://example.com/>https://example.com</a></strong>"],
    ["xhttps://example.com", "xhttps://example.com"],
    ["http:// and https://?q", "http:// and https://?q"],
    ["ftp://example.com www.example.com", "ftp://example.com www.example.com"],
  ]);
});

Deno.test("parseMarkdown() nests constructs, and never a link in a link", () => {
  check([
    ["**bold _and italic_**", "<strong>bold <em>and italic</em></strong>"],
    ["***both***", "<em><strong>both</strong></em>"],
    ["*a **b** c*", "<em>a <strong>b</strong> c</em>"],
    [
      "[**bold** `code`](https://x.example)",
      "<a https://x.example/><strong>bold</strong> <code>code</code></a>",
    ],
    ["**[link](https://x.example)**", "<strong><a https://x.example/>link</a></strong>"],
    ["[see https://y.example](https://x.example)", "<a https://x.example/>see https://y.example</a>"],
    [
      "[a [b](https://x.example) c](https://y.example)",
      "[a <a https://x.example/>b</a> c](<a https://y.example/>https://y.example</a>)",
    ],
    ["> **bold** in a quote", "<q><strong>bold</strong> in a quote</q>"],
    // A closer takes the nearest opener first, as CommonMark does.
    ["**a *b** c*", "<em><em>a <em>b</em></em> c</em>"],
    ["*a [b* c](https://x.example)", "*a <a https://x.example/>b* c</a>"],
  ]);
});

Deno.test("parseMarkdown() nests bold and italic at most MAX_NESTING deep; deeper markers stay text", () => {
  const depth = (nodes: MarkdownNode[]): number =>
    Math.max(0, ...nodes.map((n) => "children" in n ? 1 + depth(n.children) : 0));
  const marks = Array.from({ length: 20 }, (_, k) => k % 2 ? "_" : "*");
  const deep = marks.map((m) => `${m}a `).join("") + "x" + marks.reverse().map((m) => ` a${m}`).join("");
  const tree = parseMarkdown(deep);
  assert.equal(depth(tree), MAX_NESTING);
  assert.equal(html(tree).replace(/<\/?em>/g, "").length, deep.length - 2 * MAX_NESTING);
  assert.equal(depth(parseMarkdown(deep, { maxNesting: 2 })), 2);
});

Deno.test("parseMarkdown() leaves markers that are not closed, and underscores inside words, as text", () => {
  check([
    ["**not closed", "**not closed"],
    ["*not closed", "*not closed"],
    ["a ** b ** c", "a ** b ** c"],
    ["2 * 3 * 4", "2 * 3 * 4"],
    ["`not closed", "`not closed"],
    ["``two` one", "``two` one"],
    ["~one~ ~~~three~~~", "~one~ ~~~three~~~"],
    ["[text](https://x.example", "[text](<a https://x.example/>https://x.example</a>"],
    ["[text] (https://x.example)", "[text] (<a https://x.example/>https://x.example</a>)"],
    ["[a](https://x.example with space)", "[a](<a https://x.example/>https://x.example</a> with space)"],
    ["```\nnever closed\n**bold**", "```\nnever closed\n<strong>bold</strong>"],
    ["snake_case_names and __init__.py", "snake_case_names and <strong>init</strong>.py"],
    ["file_name_v2", "file_name_v2"],
    ["_a_b", "_a_b"],
  ]);
});

Deno.test("parseMarkdown() reads a backslash before punctuation as that character, and keeps others", () => {
  check([
    ["\\*not italic\\*", "*not italic*"],
    ["\\**bold?**", "*<em>bold?</em>*"],
    ["\\`not code`", "`not code`"],
    ["\\[not](https://x.example)", "[not](<a https://x.example/>https://x.example</a>)"],
    ["\\> not a quote", "> not a quote"],
    ["a \\\\ b \\n \\", "a \\ b \\n \\"],
    ["`\\*` stays", "<code>\\*</code> stays"],
  ]);
});

Deno.test("parseMarkdown() formats nothing inside code", () => {
  check([
    [
      "`**a** _b_ [c](https://x.example) https://y.example`",
      "<code>**a** _b_ [c](https://x.example) https://y.example</code>",
    ],
    [
      "```\n**a** _b_ [c](https://x.example) https://y.example\n> not a quote\n<b>\n```",
      "<pre>**a** _b_ [c](https://x.example) https://y.example\n> not a quote\n&lt;b></pre>",
    ],
  ]);
});

Deno.test("parseMarkdown() links only http, https and mailto URLs; every other scheme stays text", () => {
  for (
    const href of [
      "javascript:alert(1)",
      "JavaScript:alert(1)",
      " javascript:alert(1)",
      "java\tscript:alert(1)",
      "javascript&#58;alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox",
      "file:///etc/passwd",
      "ftp://example.com",
      "/relative",
      "//example.com",
      "http://",
      "mailto:",
    ]
  ) {
    const tree = parseMarkdown(`[click](${href})`);
    const links: string[] = [];
    const walk = (ns: MarkdownNode[]) =>
      ns.forEach((n) => n.type === "link" ? links.push(n.href) : "children" in n && walk(n.children));
    walk(tree);
    assert.ok(links.every((l) => /^(https?|mailto):/.test(l)), `${href}: ${links.join(", ")}`);
    assert.ok(!html(tree).includes("<a javascript"), href);
    assert.ok(html(tree).startsWith("[click]("), `${href}: ${html(tree)}`);
  }
});

Deno.test("parseMarkdown() keeps HTML as text", () => {
  check([
    ["<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"],
    ["<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"],
    ["**<b>bold</b>**", "<strong>&lt;b>bold&lt;/b></strong>"],
    [
      "[<img src=x onerror=alert(1)>](https://x.example)",
      "<a https://x.example/>&lt;img src=x onerror=alert(1)></a>",
    ],
    ["&lt;b&gt;", "&amp;lt;b&amp;gt;"],
  ]);
});

Deno.test("parseMarkdown() keeps line breaks in the text, but not the one between a paragraph and a block", () => {
  check([
    ["one\ntwo\r\nthree", "one\ntwo\nthree"],
    ["a\n\nb", "a\n\nb"],
    ["**a\nb**", "<strong>a\nb</strong>"],
    ["a\n> q\nb", "a<q>q</q>b"],
    ["", ""],
  ]);
});

Deno.test("parseMarkdown() returns more top-level nodes than a function call may take arguments", () => {
  // 200,000 nodes: more than a spread into push() may pass (it threw RangeError); a server may allow
  // texts this long.
  const tree = parseMarkdown("*a* ".repeat(100_000));
  assert.equal(tree.length, 200_000);
  assert.deepEqual(tree.slice(0, 2), [{ type: "em", children: [{ type: "text", text: "a" }] }, {
    type: "text",
    text: " ",
  }]);
});

/** Texts of `n` characters built to make a parser that rescans or backtracks take quadratic time. */
function pathological(n: number): Record<string, string> {
  const fill = (unit: string) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const runs = Math.floor(Math.sqrt(2 * n));
  return {
    "a star run": fill("*"),
    "stars between letters": fill("*a"),
    "underscore openers never closed": fill("_a "),
    "bold openers never closed": fill("**a"),
    "nested openers, closed in reverse": fill("*_").slice(0, n / 2) + fill("_*").slice(0, n / 2),
    "crossing openers": fill("*a _b "),
    "strike pairs": fill("~~a"),
    "brackets never closed": fill("["),
    "link starts never closed": fill("[a]("),
    "link ends without a start": fill("a]("),
    "links without a closing parenthesis": fill("[a](https://x.example/("),
    "brackets with emphasis inside": fill("[*a "),
    "backtick runs of every length": Array.from({ length: runs }, (_, k) => "`".repeat(k + 1) + "x").join("")
      .slice(0, n),
    "URLs that are not": fill("http://?"),
    "URLs that are not, no spaces": fill("http://?("),
    "a URL of parentheses": "https://x.example/" + fill("("),
    "a URL of closing parentheses": "https://x.example/" + fill(")"),
    "fences never closed": fill("```x\n"),
    "quote lines": fill("> a\n"),
    "backslashes": fill("\\"),
    "everything at once": fill("**a _b `c [d](http://e.example ~~f > "),
  };
}

/** The CPU time of parsing `text` (not wall time: the machine may be shared), in ms. */
function cpuMs(text: string): number {
  const t0 = process.cpuUsage();
  parseMarkdown(text);
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / 1000;
}

/** How many nodes a tree has. */
function count(nodes: MarkdownNode[]): number {
  return nodes.reduce((n, node) => n + 1 + ("children" in node ? count(node.children) : 0), 0);
}

Deno.test("parseMarkdown() takes linear time on 20,000-character inputs built against naive parsers", () => {
  const small = pathological(20_000), large = pathological(160_000);
  for (const [name, text] of Object.entries(small)) {
    const tree = parseMarkdown(text);
    assert.ok(html(tree).length > 0, name);
    // The best of three, each size in turn, so that a collection, the first run's compiling or a busy
    // spell of the machine counts against neither size alone.
    let ms = Infinity, big = Infinity;
    for (let run = 0; run < 3; run++) {
      ms = Math.min(ms, cpuMs(text));
      big = Math.min(big, cpuMs(large[name]));
    }
    assert.ok(ms < 150, `${name}: ${ms.toFixed(1)} ms for 20,000 characters`);
    // Eight times the text: eight times the time if linear, 64 if quadratic. Only where the tree stays
    // under 5,000 nodes: a tree of tens of thousands costs the collector more than linearly, and the
    // rescans this guards against are scans of text. (Tried: without the mark a failed bare URL leaves,
    // or with a fence search from every opener, this fails.)
    if (count(tree) > 5000) continue;
    assert.ok(
      big < 32 * Math.max(ms, 5),
      `${name}: ${ms.toFixed(1)} ms, then ${big.toFixed(1)} ms for 8x the text`,
    );
  }
});
