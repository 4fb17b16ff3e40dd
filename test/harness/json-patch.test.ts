import { describe, expect, it } from "vitest";
import { applyJsonPatch } from "./json-patch.js";

// The examples of RFC 6902 appendix A, with their documented results and errors.
describe("applyJsonPatch (RFC 6902 appendix A)", () => {
  it("A.1 adds an object member", () => {
    expect(applyJsonPatch({ foo: "bar" }, [{ op: "add", path: "/baz", value: "qux" }])).toEqual({ baz: "qux", foo: "bar" });
  });
  it("A.2 adds an array element", () => {
    expect(applyJsonPatch({ foo: ["bar", "baz"] }, [{ op: "add", path: "/foo/1", value: "qux" }])).toEqual({ foo: ["bar", "qux", "baz"] });
  });
  it("A.3 and A.4 remove a member and an element", () => {
    expect(applyJsonPatch({ baz: "qux", foo: "bar" }, [{ op: "remove", path: "/baz" }])).toEqual({ foo: "bar" });
    expect(applyJsonPatch({ foo: ["bar", "qux", "baz"] }, [{ op: "remove", path: "/foo/1" }])).toEqual({ foo: ["bar", "baz"] });
  });
  it("A.5 replaces a value", () => {
    expect(applyJsonPatch({ baz: "qux", foo: "bar" }, [{ op: "replace", path: "/baz", value: "boo" }])).toEqual({ baz: "boo", foo: "bar" });
  });
  it("A.6 and A.7 move a value and an array element", () => {
    const doc = { foo: { bar: "baz", waldo: "fred" }, qux: { corge: "grault" } };
    expect(applyJsonPatch(doc, [{ op: "move", from: "/foo/waldo", path: "/qux/thud" }])).toEqual({
      foo: { bar: "baz" },
      qux: { corge: "grault", thud: "fred" },
    });
    expect(applyJsonPatch({ foo: ["all", "grass", "cows", "eat"] }, [{ op: "move", from: "/foo/1", path: "/foo/3" }])).toEqual({
      foo: ["all", "cows", "eat", "grass"],
    });
  });
  it("A.8 and A.9 test a value: success, and an error that stops the patch", () => {
    const doc = { baz: "qux", foo: ["a", 2, "c"] };
    expect(
      applyJsonPatch(doc, [
        { op: "test", path: "/baz", value: "qux" },
        { op: "test", path: "/foo/1", value: 2 },
      ]),
    ).toEqual(doc);
    expect(() => applyJsonPatch({ baz: "qux" }, [{ op: "test", path: "/baz", value: "bar" }])).toThrow(/test failed/);
  });
  it("A.10 adds a nested member object; A.11 ignores unknown members of an operation", () => {
    expect(applyJsonPatch({ foo: "bar" }, [{ op: "add", path: "/child", value: { grandchild: {} } }])).toEqual({ foo: "bar", child: { grandchild: {} } });
    expect(applyJsonPatch({ foo: "bar" }, [{ op: "add", path: "/baz", value: "qux", xyz: 123 }])).toEqual({ foo: "bar", baz: "qux" });
  });
  it("A.12 refuses to add to a nonexistent target", () => {
    expect(() => applyJsonPatch({ foo: "bar" }, [{ op: "add", path: "/baz/bat", value: "qux" }])).toThrow(/no member "baz"/);
  });
  it("A.14 unescapes ~0 and ~1; A.15 compares strings and numbers strictly", () => {
    expect(applyJsonPatch({ "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: 10 }])).toEqual({ "/": 9, "~1": 10 });
    expect(() => applyJsonPatch({ "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: "10" }])).toThrow(/test failed/);
  });
  it("A.16 appends with '-'; out-of-bounds indexes are errors", () => {
    expect(applyJsonPatch({ foo: ["bar"] }, [{ op: "add", path: "/foo/-", value: ["abc", "def"] }])).toEqual({ foo: ["bar", ["abc", "def"]] });
    expect(() => applyJsonPatch({ foo: ["bar"] }, [{ op: "add", path: "/foo/2", value: 1 }])).toThrow(/out of bounds/);
    expect(() => applyJsonPatch({ foo: ["bar"] }, [{ op: "remove", path: "/foo/1" }])).toThrow(/out of bounds/);
  });
  it("copies by value, and leaves the input document untouched", () => {
    const doc = { a: { b: [1] } };
    const out = applyJsonPatch(doc, [
      { op: "copy", from: "/a", path: "/c" },
      { op: "add", path: "/c/b/-", value: 2 },
    ]);
    expect(out).toEqual({ a: { b: [1] }, c: { b: [1, 2] } });
    expect(doc).toEqual({ a: { b: [1] } });
  });
});
