/**
 * Messages in the page show a safe Markdown subset (#19 item 13): bold, italic, strike, code, code
 * blocks, links and quotes become elements, never HTML; the wire carries the raw text. In a real
 * browser against a real server; skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, openChat, type Page, say, waitText } from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const window: any;

/** The selector of message `seq` in the open conversation, once the page shows it. */
async function shown(page: Page, seq: number): Promise<string> {
  const sel = `.view:not([hidden]) ol.messages li.msg[data-seq="${seq}"] .msg-text`;
  await page.waitForSelector(sel);
  return sel;
}

/** `[tag, text]` of each element inside `sel`, in document order. */
async function elements(page: Page, sel: string): Promise<[string, string][]> {
  const list = await page.$eval(
    sel,
    // deno-lint-ignore no-explicit-any
    (e: any) => [...e.querySelectorAll("*")].map((c: any) => `${c.tagName.toLowerCase()} ${c.textContent}`),
  );
  return list.map((s) => [s.slice(0, s.indexOf(" ")), s.slice(s.indexOf(" ") + 1)]);
}

Deno.test({
  name:
    "browser markdown: a message shows bold, italic, code, blocks, links and quotes; the wire has the raw text",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
    const { page, context, problems } = await openChat(tb, server.url, { name: "alice" });
    const raw = [
      "**bold** and *italic*, _also_ ~~gone~~ `a **code** span` snake_case_name \\*literal\\*",
      "[the docs](https://example.com/docs) or https://example.org/x.",
      "> quoted *line*",
      "```",
      "let **x** = [y](https://example.com);",
      "```",
      "last line",
    ].join("\n");
    await say(page, raw);
    const sent = await bob.next("message", (m) => m.from === "alice");
    assert.equal(sent.text, raw, "the wire carries the text as typed");

    const sel = await shown(page, sent.seq);
    assert.deepEqual(await elements(page, sel), [
      ["strong", "bold"],
      ["em", "italic"],
      ["em", "also"],
      ["del", "gone"],
      ["code", "a **code** span"],
      ["a", "the docs"],
      ["a", "https://example.org/x"],
      ["blockquote", "quoted line"],
      ["em", "line"],
      ["pre", "let **x** = [y](https://example.com);"],
      ["code", "let **x** = [y](https://example.com);"],
    ]);
    assert.equal(
      await page.$eval(sel, (e) => e.textContent),
      "bold and italic, also gone a **code** span snake_case_name *literal*\nthe docs or https://example.org/x." +
        "quoted linelet **x** = [y](https://example.com);last line",
    );
    const links = await page.$$eval(
      `${sel} a`,
      (l) => l.map((a) => [a.getAttribute("href"), a.getAttribute("target"), a.getAttribute("rel")]),
    );
    assert.deepEqual(links, [
      ["https://example.com/docs", "_blank", "noopener noreferrer nofollow"],
      ["https://example.org/x", "_blank", "noopener noreferrer nofollow"],
    ]);
    // Lines stay lines: the quote and the code block sit below the text they follow.
    const tops = await page.$eval(
      sel,
      (e) => ["a", "blockquote", "pre"].map((t) => e.querySelector(t).getBoundingClientRect().top),
    );
    assert.ok(tops[0] < tops[1] && tops[1] < tops[2], `tops ${tops}`);

    // Editing starts from the raw text, not from what is shown.
    await page.hover(sel);
    await page.click(`.view:not([hidden]) li.msg[data-seq="${sent.seq}"] button[data-action="edit"]`);
    assert.equal(await page.$eval(".msg-edit-input", (e) => (e as unknown as { value: string }).value), raw);
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.querySelector(".msg-edit"));

    // A direct message is shown the same way.
    bob.send({ type: "send", to: "alice", text: "a **direct** `word`", cid: "d1" });
    await bob.next("ack", (m) => m.cid === "d1");
    // The ack can reach bob before the message reaches alice's page: its list entry comes with it.
    await page.waitForSelector('#dm-list a[href="#@bob"]');
    await page.click('#dm-list a[href="#@bob"]');
    await waitText(page, "#view-title", "@bob");
    await page.waitForSelector(".view:not([hidden]) li.msg .msg-text strong");
    assert.deepEqual(await elements(page, ".view:not([hidden]) li.msg .msg-text"), [
      ["strong", "direct"],
      ["code", "word"],
    ]);
    assert.deepEqual(problems.errors, []);
    await context.close();
  },
});

Deno.test({
  name: "browser markdown: HTML and javascript: links in a message stay text and run nothing",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    await using mallory = await TestClient.connect(server, { name: "mallory", room: "lobby" });
    await using observer = await TestClient.connect(server, { name: "observer", room: "lobby" });
    const { page, context, problems } = await openChat(tb, server.url, { name: "alice" });
    const payloads = [
      `<img src=x onerror="window.__xss='img'">`,
      `**<img src=x onerror="window.__xss='bold'">**`,
      `[click me](javascript:window.__xss='md')`,
      `[click me too](JaVaScRiPt:window.__xss='case')`,
      `[tab](java\tscript:window.__xss='tab')`,
      `[data](data:text/html,<script>window.__xss='data'</script>)`,
      "`<script>window.__xss='code'</script>`",
      "```\n<img src=x onerror=\"window.__xss='pre'\">\n```",
      `> <img src=x onerror="window.__xss='quote'">`,
      `[<img src=x onerror="window.__xss='label'">](https://example.com/)`,
    ];
    const seqs: number[] = [];
    for (const [i, text] of payloads.entries()) {
      mallory.send({ type: "send", room: "lobby", text, cid: `p${i}` });
      seqs.push((await mallory.next("ack", (m) => m.cid === `p${i}`)).seq);
    }
    for (const text of payloads) {
      assert.equal(
        (await observer.next("message", (m) => m.from === "mallory")).text,
        text,
        "raw on the wire",
      );
    }
    const texts: string[] = [];
    for (const seq of seqs) texts.push(await page.$eval(await shown(page, seq), (e) => e.textContent ?? ""));

    assert.equal(await page.evaluate(() => window.__xss), undefined, "no payload ran");
    assert.equal(
      await page.$$eval(
        ".messages img, .messages script, .messages iframe, .messages [onerror]",
        (l) => l.length,
      ),
      0,
    );
    assert.equal(await page.$$eval(".messages a:not([href^='https:'])", (l) => l.length), 0, "no other link");
    assert.deepEqual(texts, [
      `<img src=x onerror="window.__xss='img'">`,
      `<img src=x onerror="window.__xss='bold'">`,
      `[click me](javascript:window.__xss='md')`,
      `[click me too](JaVaScRiPt:window.__xss='case')`,
      `[tab](java\tscript:window.__xss='tab')`,
      `[data](data:text/html,<script>window.__xss='data'</script>)`,
      `<script>window.__xss='code'</script>`,
      `<img src=x onerror="window.__xss='pre'">`,
      `<img src=x onerror="window.__xss='quote'">`,
      `<img src=x onerror="window.__xss='label'">`,
    ]);
    // Where markup was asked for, the element holds the markup as text.
    const bold = await shown(page, seqs[1]);
    assert.equal(
      await page.$eval(`${bold} strong`, (e) => e.textContent),
      `<img src=x onerror="window.__xss='bold'">`,
    );
    const label = await shown(page, seqs[9]);
    assert.equal(await page.$eval(`${label} a`, (e) => e.getAttribute("href")), "https://example.com/");
    assert.deepEqual(problems.errors.filter((e) => !e.includes("Content Security Policy")), []);
    await context.close();
  },
});
