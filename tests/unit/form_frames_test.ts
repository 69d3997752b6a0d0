/** The tutorial pages' form frames (`msg=TEXT`, `type=add&ming=NAME`), parsed like every client frame. */
import assert from "node:assert/strict";
import { decodeFormValue, isFormFrame, parseClientFrame, ProtocolError } from "../../lib/protocol.ts";

const limits = { maxTextChars: 100, maxFrameBytes: 1000 };
const parse = (s: string) => parseClientFrame(s, limits);
const code = (c: string) => (e: unknown) => e instanceof ProtocolError && e.code === c;

Deno.test("parseClientFrame() takes msg=TEXT as TEXT for the current room, decoded as a form", () => {
  assert.deepEqual(parse("msg=hello"), { type: "raw", text: "hello" });
  assert.deepEqual(parse("msg=hello+world%21"), { type: "raw", text: "hello world!" });
  assert.deepEqual(parse("msg=%E6%97%A9%E4%B8%8A%E5%A5%BD"), { type: "raw", text: "早上好" });
  // The pages send what was typed unencoded: "&" and "=" belong to the text.
  assert.deepEqual(parse("msg=tom & jerry=friends"), { type: "raw", text: "tom & jerry=friends" });
});

Deno.test("parseClientFrame() takes a msg= value that does not decode as it is", () => {
  assert.deepEqual(parse("msg=100%"), { type: "raw", text: "100%" });
  assert.deepEqual(parse("msg=%ff+1"), { type: "raw", text: "%ff+1" });
  assert.deepEqual(parse("msg=%E6%97"), { type: "raw", text: "%E6%97" });
});

Deno.test("parseClientFrame() refuses an empty or too long msg= with the codes of any text", () => {
  assert.throws(() => parse("msg="), code("bad_message"));
  assert.throws(() => parse("msg=+%20+"), code("bad_message"));
  assert.throws(() => parse(`msg=${"x".repeat(101)}`), code("text_too_long"));
  assert.throws(() => parse(`msg=${"x".repeat(1001)}`), code("frame_too_big"));
});

Deno.test("parseClientFrame() takes type=add&ming=NAME as nick NAME, in either order, decoded", () => {
  assert.deepEqual(parse("type=add&ming=carol"), { type: "nick", name: "carol" });
  assert.deepEqual(parse("ming=carol&type=add"), { type: "nick", name: "carol" });
  assert.deepEqual(parse("type=add&ming=zo%C3%AB"), { type: "nick", name: "zoë" });
  // A name with spaces is a display name, and the handle is made from it (when one can be).
  assert.deepEqual(parse("type=add&ming=bob+the+builder"), {
    type: "nick",
    name: "bob_the_builder",
    display: "bob the builder",
  });
  assert.deepEqual(parse("type=add&ming=Ivan+%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2"), {
    type: "nick",
    display: "Ivan Иванов",
  });
});

Deno.test("parseClientFrame() answers a type=add without a usable name with bad_name and a sentence", () => {
  assert.throws(
    () => parse("type=add&ming="),
    (e: unknown) => code("bad_name")(e) && /ming=NAME/.test((e as Error).message),
  );
  assert.throws(() => parse("type=add"), code("bad_name"));
  assert.throws(
    () => parse("type=add&ming=bob%E2%80%AEthe"),
    (e: unknown) => code("bad_name")(e) && /U\+202E/.test((e as Error).message),
  );
  assert.throws(() => parse(`type=add&ming=${"a".repeat(500)}`), code("bad_name"));
});

Deno.test("parseClientFrame() keeps any other non-JSON frame a plain message, as before", () => {
  for (const s of ["type=msg&text=hi", "message=hi", "a=b", "hello msg=x", "type=adder&ming=x"]) {
    assert.deepEqual(parse(s), { type: "raw", text: s }, s);
  }
});

Deno.test("isFormFrame() tells the tutorial forms from other frames", () => {
  for (const s of ["msg=hi", "msg=", "type=add&ming=x", "ming=x&type=add", "type=add"]) {
    assert.equal(isFormFrame(s), true, s);
  }
  for (const s of ["hi", '{"type":"ping"}', "type=msg&x=1", "message=hi", "type=adder"]) {
    assert.equal(isFormFrame(s), false, s);
  }
});

Deno.test("decodeFormValue() reads + as a space and %XX as UTF-8, and keeps what does not decode", () => {
  assert.equal(decodeFormValue("a+b%2Bc"), "a b+c");
  assert.equal(decodeFormValue("caf%C3%A9"), "café");
  assert.equal(decodeFormValue("50%+off"), "50%+off");
});
