import { describe, expect, it } from "vitest";
import { ConfigError, choiceVar, integerVar, numberVar, portVar, stringVar } from "./env.js";

describe("config readers", () => {
  it("take the default when a variable is unset, empty or blank", () => {
    for (const env of [{}, { N: "" }, { N: "  " }]) {
      expect(integerVar(env, "N", 7)).toBe(7);
      expect(numberVar(env, "N", 1.5)).toBe(1.5);
      expect(portVar(env, "N", 8080)).toBe(8080);
      expect(choiceVar(env, "N", ["a", "b"], "b")).toBe("b");
      expect(stringVar(env, "N")).toBeUndefined();
    }
  });

  it("read values within their range", () => {
    expect(integerVar({ N: " 12 " }, "N", 0, { min: 1, max: 12 })).toBe(12);
    expect(numberVar({ N: "0.25" }, "N", 1, { exclusiveMin: 0 })).toBe(0.25);
    expect(portVar({ N: "0" }, "N", 1)).toBe(0);
    expect(choiceVar({ N: "a" }, "N", ["a", "b"], "b")).toBe("a");
  });

  it("reject a bad value with a ConfigError naming the variable, what it allows and the value", () => {
    const error = (read: () => unknown): ConfigError => {
      try {
        read();
      } catch (e) {
        if (e instanceof ConfigError) return e;
        throw e;
      }
      throw new Error("expected a ConfigError");
    };
    expect(error(() => integerVar({ N: "2.5" }, "N", 0)).message).toBe('N must be a non-negative integer, not "2.5"');
    expect(error(() => integerVar({ N: "0" }, "N", 1, { min: 1 })).message).toBe('N must be an integer >= 1, not "0"');
    expect(error(() => integerVar({ N: "20" }, "N", 1, { min: 0, max: 19 })).message).toBe('N must be an integer from 0 to 19, not "20"');
    expect(error(() => numberVar({ N: "0" }, "N", 1, { exclusiveMin: 0 })).message).toBe('N must be a positive number, not "0"');
    expect(error(() => numberVar({ N: "x" }, "N", 1, { min: 2 })).message).toBe('N must be a number >= 2, not "x"');
    expect(error(() => portVar({ PORT: "abc" }, "PORT", 1)).message).toBe('PORT must be a port number (0-65535), not "abc"');
    expect(new ConfigError("L", "a JSON list", "[1,", "not JSON").message).toBe("L must be a JSON list: not JSON");
    const choice = error(() => choiceVar({ N: "c" }, "N", ["a", "b"], "a"));
    expect(choice).toMatchObject({ variable: "N", allowed: "one of a, b", value: "c", name: "ConfigError" });
  });
});
