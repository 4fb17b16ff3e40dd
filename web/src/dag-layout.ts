/** An edge between node ids, as the flow's `from: node.pin` / `to: node.pin` name them. */
export interface LayoutEdge {
  readonly from: string;
  readonly to: string;
}

export interface PlacedNode {
  readonly id: string;
  /** Column: the longest path from a source node, so every edge points rightwards. */
  readonly layer: number;
  /** Row within the column. */
  readonly row: number;
}

/**
 * Places a DAG in columns by longest path from its sources (Argo's and Temporal's left-to-right
 * reading order), rows in the order the flow lists its nodes. Flows are validated acyclic before
 * they run; an edge to an unknown node is ignored rather than breaking the picture.
 */
export function layoutDag(nodeIds: readonly string[], edges: readonly LayoutEdge[]): PlacedNode[] {
  const known = new Set(nodeIds);
  const incoming = new Map<string, string[]>(nodeIds.map((id) => [id, []]));
  for (const edge of edges) if (known.has(edge.from) && known.has(edge.to)) incoming.get(edge.to)?.push(edge.from);
  const layerOf = new Map<string, number>();
  const visiting = new Set<string>();
  const layer = (id: string): number => {
    const cached = layerOf.get(id);
    if (cached !== undefined) return cached;
    // A cycle cannot reach here from a validated flow; treating the back edge as absent keeps this total.
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const value = Math.max(-1, ...(incoming.get(id) ?? []).map(layer)) + 1;
    visiting.delete(id);
    layerOf.set(id, value);
    return value;
  };
  const rows = new Map<number, number>();
  return nodeIds.map((id) => {
    const column = layer(id);
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return { id, layer: column, row };
  });
}
