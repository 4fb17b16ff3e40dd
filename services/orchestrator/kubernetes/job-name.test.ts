import { describe, expect, it } from "vitest";
import { jobName, labelValue } from "./job-name.js";

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe("jobName", () => {
  it("is a DNS-1123 label of at most 63 characters, whatever the ids", () => {
    for (const [run, node] of [
      ["run_00abc", "echo"],
      ["run_00abc", "Ünïcode Node!!"],
      ["run_" + "x".repeat(200), "n".repeat(200)],
      ["run_1", "---"],
    ] as const) {
      const name = jobName(run, node, 12);
      expect(name).toMatch(dns1123Label);
      expect(name.length).toBeLessThanOrEqual(63);
    }
  });

  it("is stable for one attempt and differs between attempts, nodes and runs", () => {
    expect(jobName("run_1", "a", 1)).toBe(jobName("run_1", "a", 1));
    const names = new Set([jobName("run_1", "a", 1), jobName("run_1", "a", 2), jobName("run_1", "A", 1), jobName("run_2", "a", 1)]);
    expect(names.size).toBe(4);
  });

  it("keeps the node id readable", () => {
    expect(jobName("run_1", "Resize_Image", 3)).toMatch(/^ml-resize-image-a3-[0-9a-f]{12}$/);
  });
});

describe("labelValue", () => {
  it("keeps valid values and repairs invalid ones", () => {
    expect(labelValue("run_00abc.x-1")).toBe("run_00abc.x-1");
    expect(labelValue("team/α beta")).toBe("team-beta");
    expect(labelValue("-" + "a".repeat(100))).toMatch(/^a{62,63}$/);
  });
});
