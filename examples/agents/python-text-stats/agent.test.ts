import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("./agent.py", import.meta.url));

function runAgent(input: unknown): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const child = spawn("/usr/bin/python3", [script], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdin.end(JSON.stringify(input));
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  return new Promise((resolve) =>
    child.on("close", (code) =>
      resolve({
        code,
        lines: stdout
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      }),
    ),
  );
}

describe("python text-stats agent (plain contract)", () => {
  it("emits events then a result keyed by its output pins", async () => {
    const { code, lines } = await runAgent({
      spec: { agent_id: "org.mentatlab.examples.text.python-stats", params: { top: 2 } },
      context: { inputs: { text: "The mesh runs agents. The agents stream! Do they? The end." } },
    });
    expect(code).toBe(0);
    expect(lines.slice(0, -1).map((line) => line.type)).toEqual(["log", "progress", "metric"]);
    expect(lines.at(-1)).toEqual({
      result: {
        stats: {
          characters: 58,
          words: 11,
          sentences: 4,
          unique_words: 8,
          top_words: [
            ["the", 3],
            ["agents", 2],
          ],
        },
        summary: "11 words in 4 sentences",
      },
    });
  });

  it("reports a missing text input as an error event and a non-zero exit", async () => {
    const { code, lines } = await runAgent({ spec: {}, context: { inputs: {} } });
    expect(code).toBe(1);
    expect(lines).toEqual([{ type: "error", message: "input pin 'text' must be text" }]);
  });
});
