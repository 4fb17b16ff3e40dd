import { describe, expect, it } from "vitest";
import { CliError, ExitCode } from "./exit-codes.js";
import { parseInputSpec } from "./pin-inputs.js";

describe("parseInputSpec", () => {
  it("reads files, stored refs and literal text", () => {
    expect(parseInputSpec("resize.image=@photos/cat.png")).toEqual({ key: "resize.image", source: { kind: "file", value: "photos/cat.png" } });
    expect(parseInputSpec("resize.image=ref:m_123")).toEqual({ key: "resize.image", source: { kind: "ref", value: "m_123" } });
    expect(parseInputSpec("echo.text=a=b, c.d")).toEqual({ key: "echo.text", source: { kind: "literal", value: "a=b, c.d" } });
    expect(parseInputSpec("echo.text=")).toEqual({ key: "echo.text", source: { kind: "literal", value: "" } });
  });

  it("rejects bindings that do not name node.pin as a usage error", () => {
    for (const bad of ["text=hello", "echo=hi", "a.b.c=x", "=x", "echo.text"]) {
      let caught: unknown;
      try {
        parseInputSpec(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(CliError);
      expect((caught as CliError).exitCode).toBe(ExitCode.usage);
      expect((caught as CliError).message).toContain("node.pin=");
    }
  });
});
