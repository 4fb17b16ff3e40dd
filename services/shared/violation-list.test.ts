import { describe, expect, it } from "vitest";
import { listViolations, MAX_LISTED_VIOLATIONS, MAX_VIOLATION_MESSAGE_CHARS } from "./violation-list.js";

describe("listViolations", () => {
  it("lists every violation when there are few", () => {
    expect(listViolations("invalid X: ", ["a: bad", "b: worse"])).toEqual({ message: "invalid X: a: bad; b: worse", listed: 2 });
  });

  it("lists the first ones and counts the rest", () => {
    const violations = Array.from({ length: 200 }, (_, i) => `states[${i}]: value must be one of the defined enum values`);
    const { message, listed } = listViolations("invalid ListRunsRequest: ", violations);
    expect(listed).toBe(MAX_LISTED_VIOLATIONS);
    expect(message).toContain("states[0]: value must be one of the defined enum values");
    expect(message).not.toContain(`states[${MAX_LISTED_VIOLATIONS}]`);
    expect(message.endsWith(`; and ${200 - MAX_LISTED_VIOLATIONS} more`)).toBe(true);
  });

  it("keeps the message bounded however long each violation is", () => {
    const violations = Array.from({ length: 50 }, (_, i) => `field${i}: ${"x".repeat(10_000)}`);
    const { message, listed } = listViolations("invalid Y: ", violations);
    expect(message.length).toBeLessThanOrEqual(MAX_VIOLATION_MESSAGE_CHARS);
    expect(listed).toBeGreaterThan(0);
    expect(message).toMatch(new RegExp(`; and ${50 - listed} more$`));
  });
});
