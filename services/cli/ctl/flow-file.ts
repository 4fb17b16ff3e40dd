import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parse } from "yaml";
import { CliError } from "./exit-codes.js";

/** A flow node as far as the CLI needs it: which agent version binds its pins, and the pin it maps over (which takes a json list). */
export interface FlowNodeAgent {
  readonly nodeId: string;
  readonly agent: string;
  readonly version: string;
  readonly mappedPin?: string;
}

/** A flow file: its text goes to the server as is; its nodes tell the CLI the agents whose pins inputs bind. */
export interface FlowFile {
  readonly text: string;
  readonly nodes: readonly FlowNodeAgent[];
}

const maxFlowBytes = 4 * 1024 * 1024;

/**
 * Reads a flow (YAML or JSON). The server is the one that validates it; here the nodes are read
 * leniently (our field names or the original project's camelCase) and a document that does not
 * parse yields no nodes, so the server's violations are what the user sees.
 */
export async function readFlowFile(cwd: string, file: string): Promise<FlowFile> {
  const path = resolve(cwd, file);
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read flow ${file}: ${err.code ?? err.message}`);
  });
  if (Buffer.byteLength(text) > maxFlowBytes) throw new CliError(`flow ${file} is larger than 4 MiB`);
  return { text, nodes: nodesOf(text) };
}

function nodesOf(text: string): FlowNodeAgent[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return [];
  }
  const nodes = field(field(doc, "graph"), "nodes");
  if (!Array.isArray(nodes)) return [];
  return nodes.flatMap((node: unknown) => {
    const nodeId = field(node, "id");
    const agent = field(node, "agent") ?? field(node, "type");
    const version = field(node, "agent_version") ?? field(node, "agentVersion") ?? field(node, "version") ?? "";
    const map = field(node, "map");
    const mappedPin = typeof map === "string" ? map : field(map, "pin");
    if (typeof nodeId !== "string" || typeof agent !== "string") return [];
    return [{ nodeId, agent, version: String(version), ...(typeof mappedPin === "string" ? { mappedPin } : {}) }];
  });
}

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}
