import { describe, expect, it } from "vitest";
import { layoutDag } from "./dag-layout.js";

describe("layoutDag", () => {
  it("puts each node one column right of its furthest upstream node", () => {
    const placed = layoutDag(
      ["a", "b", "c", "d"],
      [
        { from: "a", to: "b" },
        { from: "b", to: "d" },
        { from: "a", to: "d" },
        { from: "a", to: "c" },
      ],
    );
    expect(placed).toEqual([
      { id: "a", layer: 0, row: 0 },
      { id: "b", layer: 1, row: 0 },
      { id: "c", layer: 1, row: 1 },
      { id: "d", layer: 2, row: 0 },
    ]);
  });

  it("stacks unconnected nodes in the first column and ignores edges to unknown nodes", () => {
    expect(layoutDag(["x", "y"], [{ from: "ghost", to: "y" }])).toEqual([
      { id: "x", layer: 0, row: 0 },
      { id: "y", layer: 0, row: 1 },
    ]);
  });
});
