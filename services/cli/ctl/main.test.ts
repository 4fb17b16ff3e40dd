import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../../../gen/mentatlab/v1/common_pb.js";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../../mesh/embedded.js";
import { wavHeader } from "../../shared/wav.js";
import { CapturedIo, startCuttingProxy, type CuttingProxy } from "./testing.js";
import { main } from "./main.js";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");

let mesh: EmbeddedMesh;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "mentatctl-"));
  // The embedded mesh does not yet hand its generated presign secret to storage (reported to the lead).
  mesh = await startEmbedded({ port: 0, dataDir: join(work, "data"), env: { MENTATLAB_PRESIGN_SECRET: "mentatctl-test-presign-secret" } });
});

afterAll(async () => {
  await mesh?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Runs mentatctl in-process against the embedded mesh, as a user in `work` would. */
async function ctl(args: string[], env: Record<string, string> = {}, terminal = false) {
  const io = new CapturedIo({ MENTATLAB_URL: mesh.url, MENTATLAB_API_KEY: mesh.adminKey ?? "", ...env }, work, terminal);
  const code = await main(["node", "mentatctl", ...args], io);
  return { code, stdout: io.stdoutText, stdoutBytes: io.stdoutBytes, stderr: io.stderrText };
}

function adminClient<S extends typeof StorageService | typeof StreamService>(service: S) {
  const transport = createConnectTransport({
    baseUrl: mesh.url,
    httpVersion: "1.1",
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${mesh.adminKey}`), next(req))],
  });
  return createClient(service, transport);
}

function randomFile(name: string, bytes: number): { path: string; sha256: string } {
  const path = join(work, name);
  const data = randomBytes(bytes);
  writeFileSync(path, data);
  return { path, sha256: createHash("sha256").update(data).digest("hex") };
}

function uploadedRef(stdout: string): { id: string; sha256: string; sizeBytes: string } {
  return (JSON.parse(stdout) as { ref: { id: string; sha256: string; sizeBytes: string } }).ref;
}

/** Writes the manifest of the test agent (testdata/shout-agent.mjs), runnable from any cwd. */
function manifest(): string {
  const path = join(work, "shout.yaml");
  writeFileSync(
    path,
    [
      "id: org.mentatlab.test.shout",
      "version: 1.0.0",
      "description: upper-cases its input",
      "runtime: node",
      `command: [${JSON.stringify(process.execPath)}, shout-agent.mjs]`,
      `working_dir: ${JSON.stringify(testdata)}`,
      "capabilities: [progress]",
      "inputs:",
      "  - { name: text, type: text, required: true }",
      "outputs:",
      "  - { name: text, type: text }",
    ].join("\n"),
  );
  return path;
}

describe("mentatctl media commands", () => {
  it.each([
    ["HTTP/2 client streaming", []],
    ["HTTP/1.1 resumable", ["--http1"]],
    ["resumable over HTTP/2", ["--resumable"]],
  ])("uploads, stats and downloads byte-exact over %s", async (_name, flags) => {
    const file = randomFile(`media-${flags.join("") || "h2"}.bin`, 5 * 1024 * 1024 + 123);
    const up = await ctl(["--output", "json", "upload", file.path, ...flags]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const ref = uploadedRef(up.stdout);
    expect(ref.sha256).toBe(file.sha256);
    expect(ref.sizeBytes).toBe(String(5 * 1024 * 1024 + 123));

    const stat = await ctl(["stat", ref.id]);
    expect(stat.code).toBe(0);
    expect(stat.stdout).toContain(file.sha256);
    expect(stat.stdout).toMatch(/size\s+5\.0 MiB \(5243003 bytes\)/);

    const out = join(work, `copy-${ref.id}.bin`);
    const down = await ctl(["download", ref.id, "-o", out, ...flags.filter((f) => f === "--http1")]);
    expect(down.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(file.path))).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it("draws progress bars on a terminal only", async () => {
    const file = randomFile("bar.bin", 2 * 1024 * 1024);
    const onTerminal = await ctl(["upload", file.path], {}, true);
    expect(onTerminal.code).toBe(0);
    expect(onTerminal.stderr).toMatch(/hash bar\.bin \[.*\] 100% \| 2\.0 MiB\/2\.0 MiB/);
    expect(onTerminal.stderr).toMatch(/upload bar\.bin \[.*\] 100% \| 2\.0 MiB\/2\.0 MiB/);
    const piped = await ctl(["upload", file.path]);
    expect(piped.stderr).toBe("");
  });

  it("downloads to stdout", async () => {
    const file = randomFile("stdout.bin", 300_000);
    const ref = uploadedRef((await ctl(["--output", "json", "upload", file.path])).stdout);
    const down = await ctl(["download", ref.id, "-o", "-"]);
    expect(down.code).toBe(0);
    expect(down.stdoutBytes.equals(readFileSync(file.path))).toBe(true);
  });

  it("resumes a download from a partial file and refuses a corrupt one", async () => {
    const file = randomFile("resume.bin", 1_000_000);
    const ref = uploadedRef((await ctl(["--output", "json", "upload", file.path])).stdout);
    const original = readFileSync(file.path);

    const good = join(work, "resumed.bin");
    writeFileSync(`${good}.part`, original.subarray(0, 400_000));
    const resumed = await ctl(["download", ref.id, "-o", good, "--resume"]);
    expect(resumed.code).toBe(0);
    expect(readFileSync(good).equals(original)).toBe(true);

    const bad = join(work, "corrupt.bin");
    const prefix = Buffer.from(original.subarray(0, 400_000));
    prefix[10] = (prefix[10] ?? 0) ^ 0xff;
    writeFileSync(`${bad}.part`, prefix);
    const refused = await ctl(["download", ref.id, "-o", bad, "--resume"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/corrupt: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
    expect(existsSync(bad)).toBe(false);
  });

  it("continues an interrupted resumable upload from what the server committed", async () => {
    const file = randomFile("interrupted.bin", 3 * 1024 * 1024);
    const storage = adminClient(StorageService);
    const { uploadId } = await storage.createUpload({ header: { filename: "interrupted.bin", sizeBytes: BigInt(3 * 1024 * 1024) } });
    await storage.uploadChunk({ uploadId, offset: 0n, data: readFileSync(file.path).subarray(0, 1024 * 1024) });

    const resumed = await ctl(["--output", "json", "upload", file.path, "--upload-id", uploadId]);
    expect(resumed.code).toBe(0);
    expect(uploadedRef(resumed.stdout).sha256).toBe(file.sha256);
  });

  it("lists the workspace's objects newest first, by type and page by page", async () => {
    const older = uploadedRef((await ctl(["--output", "json", "upload", randomFile("listed-older.bin", 2000).path])).stdout);
    const newer = uploadedRef((await ctl(["--output", "json", "upload", randomFile("listed-newer.bin", 3000).path])).stdout);
    const first = await ctl(["ls", "--limit", "1"]);
    expect(first.code).toBe(0);
    const [header, row] = first.stdout.split("\n");
    expect(header).toMatch(/^ID +TYPE +SIZE +CREATED +NAME$/);
    expect(row?.split(/ +/)).toEqual([newer.id, "application/octet-stream", "2.9", "KiB", expect.stringMatching(/^\d{4}-\d\d-\d\dT/), "listed-newer.bin"]);
    const token = /run again with --page-token (\S+)\)/.exec(first.stdout)?.[1] ?? "";
    const second = await ctl(["ls", "--limit", "1", "--page-token", token]);
    expect(second.stdout).toContain(older.id);
    expect((await ctl(["ls", "--type", "video/"])).stdout).toBe("no objects\n");
    expect((await ctl(["ls", "--limit", "0"])).code).toBe(2);
  });

  it("deletes an object and reports usage", async () => {
    const file = randomFile("doomed.bin", 10_000);
    const ref = uploadedRef((await ctl(["--output", "json", "upload", file.path, "--temp"])).stdout);
    const usage = await ctl(["--output", "json", "usage"]);
    expect(usage.code).toBe(0);
    expect(Number((JSON.parse(usage.stdout) as { workspaceObjectCount: string }).workspaceObjectCount)).toBeGreaterThan(0);
    expect((await ctl(["usage"])).stdout).toMatch(/^held by uploads +\S+ \S+ in \d+ object\(s\), \d+ holder\(s\)$/m);
    expect((await ctl(["rm", ref.id])).stdout).toContain(`deleted ${ref.id}`);
    const gone = await ctl(["stat", ref.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: \[NotFound\] .+\n$/);
  });
});

describe("mentatctl errors", () => {
  it("prints the Connect code and message, without a stack, and exits non-zero", async () => {
    const anonymous = await ctl(["stat", "anything"], { MENTATLAB_API_KEY: "mlk_not_a_real_key_at_all" });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^error: \[Unauthenticated\] .+\n$/);
    expect(anonymous.stderr).not.toContain("    at ");
  });

  it("runs from the bin shim as a separate process", async () => {
    const shim = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "bin", "mentatctl.mjs");
    // Asynchronously: the mesh answering it runs in this very process.
    const failure = await promisify(execFile)(process.execPath, [shim, "--url", mesh.url, "--key", mesh.adminKey ?? "", "stat", "no-such-object"]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.stderr).toMatch(/^error: \[NotFound\] .+\n$/);
    expect(failure?.code).toBe(1);
  });

  it("exits 1, not 2, when a file it was given does not exist: the command line itself was fine", async () => {
    for (const args of [
      ["upload", "no-such.bin"],
      ["agents", "register", "no-such.yaml"],
      ["run", join(testdata, "shout-flow.yaml"), "--input", "shout.text=@no-such.txt"],
    ]) {
      const missing = await ctl(args);
      expect(missing.code, args.join(" ")).toBe(1);
      expect(missing.stderr).toBe(`error: ${args.at(-1)?.replace(/^.*@/, "")} is not a readable file\n`);
    }
  });

  it("exits 2 on a bad command line", async () => {
    const bad = await ctl(["upload"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("missing required argument 'file'");
    expect((await ctl(["run", join(testdata, "shout-flow.yaml"), "--input", "nonsense"])).code).toBe(2);
    const badUrl = await ctl(["usage"], { MENTATLAB_URL: "127.0.0.1:8080" });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("must start with http:// or https://");
  });
});

describe("mentatctl agents and runs", () => {
  it("prints every violation of a bad manifest with its field path and exits 1", async () => {
    const result = await ctl(["agents", "validate", join(testdata, "bad-manifest.yaml")]);
    expect(result.code).toBe(1);
    for (const path of ["id:", "version:", "inputs[0].name:", "inputs[0].media:", "inputs[1].type:", "outputs[0].required:", "resources.cpu:"]) {
      expect(result.stdout).toContain(`  ${path}`);
    }
    expect(result.stdout).toContain("hint:");
  });

  it("registers, lists and gets an agent", async () => {
    const valid = await ctl(["agents", "validate", manifest()]);
    expect(valid.stdout).toContain("valid");
    expect(valid.code).toBe(0);
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    const list = await ctl(["agents", "list"]);
    expect(list.stdout).toMatch(/org\.mentatlab\.test\.shout\s+1\.0\.0/);
    const get = await ctl(["--output", "json", "agents", "get", "org.mentatlab.test.shout"]);
    expect(JSON.parse(get.stdout)).toMatchObject({ id: "org.mentatlab.test.shout", version: "1.0.0" });
  });

  it("runs a flow, watching it live to success", async () => {
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    const flow = join(testdata, "shout-flow.yaml");
    const validate = await ctl(["flows", "validate", flow, "--input", "shout.text=hello"]);
    expect(validate.code).toBe(0);

    const run = await ctl(["run", flow, "--input", "shout.text=hello", "--watch"]);
    expect(run.stderr).toMatch(/run \S+ submitted; watching/);
    expect(run.stdout).toMatch(/shout {2}running \(attempt 1\)/);
    expect(run.stdout).toContain("progress 50% halfway");
    expect(run.stdout).toContain("log info: shouting 5 characters");
    expect(run.stdout).toMatch(/ run {2}succeeded\n/);
    expect(run.stdout).toContain('"HELLO!"');
    expect(run.code).toBe(0);

    const runId = /run (\S+) submitted/.exec(run.stderr)?.[1] ?? "";
    const get = await ctl(["--output", "json", "runs", "get", runId]);
    expect(JSON.parse(get.stdout)).toMatchObject({ runId, state: "RUN_STATE_SUCCEEDED" });
    expect((await ctl(["runs", "list"])).stdout).toContain(runId);
    const replay = await ctl(["runs", "watch", runId]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/ run {2}succeeded\n/);
  });

  it("reads @file as text for a text pin, as the agent's manifest declares", async () => {
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    writeFileSync(join(work, "greeting.txt"), "from a file");
    const run = await ctl(["run", join(testdata, "shout-flow.yaml"), "--input", "shout.text=@greeting.txt", "--watch"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('shout.text = "FROM A FILE!"');
  });

  it("exits by the run's final state: 1 when it failed, 3 when it was cancelled", async () => {
    const agent = (id: string, script: string) => {
      const path = join(work, `${id}.yaml`);
      writeFileSync(
        path,
        [`id: org.mentatlab.test.${id}`, "version: 1.0.0", `command: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(script)}]`].join("\n"),
      );
      return path;
    };
    const flow = (id: string) => {
      const path = join(work, `${id}-flow.yaml`);
      writeFileSync(
        path,
        ["apiVersion: v1", "kind: Flow", `meta: { id: ${id} }`, "graph:", "  nodes:", `    - { id: only, agent: org.mentatlab.test.${id} }`].join("\n"),
      );
      return path;
    };
    expect((await ctl(["agents", "register", agent("crash", "process.exit(1)")])).code).toBe(0);
    expect((await ctl(["agents", "register", agent("sleepy", "setTimeout(() => {}, 30000)")])).code).toBe(0);

    const failed = await ctl(["run", flow("crash"), "--watch"]);
    expect(failed.stdout).toMatch(/ run {2}failed/);
    expect(failed.code).toBe(1);

    const submitted = await ctl(["--output", "json", "run", flow("sleepy")]);
    const runId = (JSON.parse(submitted.stdout) as { runId: string }).runId;
    const cancel = await ctl(["runs", "cancel", runId, "--reason", "test is done"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const watched = await ctl(["runs", "watch", runId]);
    expect(watched.stdout).toMatch(/ run {2}cancelled/);
    expect(watched.code).toBe(3);
  });

  it("retries a failed run, rerunning only the failed node, and shows which nodes were kept", async () => {
    const ledger = join(work, "retry-ledger");
    const agent = join(work, "ledger.yaml");
    const script = join(dirname(fileURLToPath(import.meta.url)), "../../../test/agents/ledger.mjs");
    writeFileSync(
      agent,
      [
        "id: org.mentatlab.test.ledger",
        "version: 1.0.0",
        `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}]`,
        "inputs: [{ name: text, type: text }]",
        "outputs: [{ name: text, type: text }]",
      ].join("\n"),
    );
    const params = (more: string) => `{ ledger: ${JSON.stringify(ledger)}${more} }`;
    const flow = join(work, "retry-flow.yaml");
    writeFileSync(
      flow,
      [
        "apiVersion: v1",
        "kind: Flow",
        "meta: { id: retry }",
        "graph:",
        "  nodes:",
        `    - { id: first, agent: org.mentatlab.test.ledger, params: ${params("")} }`,
        `    - { id: second, agent: org.mentatlab.test.ledger, params: ${params(`, fail_once: ${JSON.stringify(join(work, "second-failed"))}`)} }`,
        "  edges:",
        "    - { from: first.text, to: second.text }",
      ].join("\n"),
    );
    expect((await ctl(["agents", "register", agent])).code).toBe(0);
    const failed = await ctl(["--output", "json", "run", flow, "--watch"]);
    expect(failed.code).toBe(1);
    const runId = /"runId":\s*"([^"]+)"/.exec(failed.stdout)?.[1] ?? "";

    const retried = await ctl(["runs", "retry", runId, "--watch"]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toMatch(new RegExp(`run \\S+ retries ${runId}; watching`));
    expect(retried.stdout).toContain(` first  succeeded: reused from run ${runId} node first (retry)`);
    expect(retried.stdout).toMatch(/second {2}running \(attempt 1\)/);
    expect(retried.stdout).toMatch(new RegExp(`first +org\\.mentatlab\\.test\\.ledger@1\\.0\\.0 +succeeded +100% +kept from ${runId} first`));
    expect(readFileSync(ledger, "utf8")).toBe("first\nsecond\nsecond\n");

    const again = await ctl(["runs", "retry", runId, "--from", "first"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/retry of +\S+/);
    const succeededId = /^run +(\S+)/m.exec(retried.stdout)?.[1] ?? "";
    const refused = await ctl(["runs", "retry", succeededId]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `error: [FailedPrecondition] run ${succeededId} is succeeded: only a failed or cancelled run can be retried (submit the flow again to run it anew)\n`,
    );
  });

  it("shows a mapped node's items: each item's events while watching, and map progress with the failed items in runs get", async () => {
    const agent = join(work, "map-item.yaml");
    const script = join(dirname(fileURLToPath(import.meta.url)), "../../../test/agents/map-item.mjs");
    writeFileSync(
      agent,
      [
        "id: org.mentatlab.test.map-item",
        "version: 1.0.0",
        `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}]`,
        "inputs: [{ name: text, type: text }]",
        "outputs: [{ name: text, type: text }]",
      ].join("\n"),
    );
    const flow = join(work, "map-flow.yaml");
    const params = `{ ledger: ${JSON.stringify(join(work, "map-ledger"))}, fail: [c] }`;
    writeFileSync(
      flow,
      [
        "apiVersion: v1",
        "kind: Flow",
        "meta: { id: mapped }",
        "graph:",
        "  nodes:",
        `    - { id: each, agent: org.mentatlab.test.map-item, map: { pin: text, concurrency: 2, on_failure: continue }, params: ${params} }`,
      ].join("\n"),
    );
    expect((await ctl(["agents", "register", agent])).code).toBe(0);
    const run = await ctl(["run", flow, "--input", 'each.text=["a","b","c","d","e"]', "--watch"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(" each  running (attempt 0): mapping over 5 items of text, at most 2 at once");
    expect(run.stdout).toMatch(/ each {2}item 2 failed \(attempt \d\): agent exited with code 1: item c fails \(exit 1\) · map \d\/5, 1 failed/);
    expect(run.stdout).toMatch(/ each\[4\] {2}output text = "e!"/);
    const runId = /run (\S+) submitted/.exec(run.stderr)?.[1] ?? "";
    const get = await ctl(["runs", "get", runId]);
    expect(get.stdout).toMatch(/each +org\.mentatlab\.test\.map-item@1\.0\.0 +failed +map 5\/5, 1 failed +item 2 of 5 failed; item 2: agent exited/);
    expect(get.stdout).toContain("failed items:\n  each[2]: agent exited with code 1: item c fails (exit 1)");
  });

  it("runs a cacheable agent's node once for the same inputs, shows the hit, and runs it anyway with --cache off", async () => {
    const ledger = join(work, "cache-ledger");
    const agent = join(work, "cached-ledger.yaml");
    const script = join(dirname(fileURLToPath(import.meta.url)), "../../../test/agents/ledger.mjs");
    writeFileSync(
      agent,
      [
        "id: org.mentatlab.test.cached-ledger",
        "version: 1.0.0",
        "cacheable: true",
        `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}]`,
        "inputs: [{ name: text, type: text }]",
        "outputs: [{ name: text, type: text }]",
      ].join("\n"),
    );
    const flow = join(work, "cached-flow.yaml");
    writeFileSync(
      flow,
      [
        "apiVersion: v1",
        "kind: Flow",
        "meta: { id: cached }",
        "graph:",
        "  nodes:",
        `    - { id: only, agent: org.mentatlab.test.cached-ledger, params: { ledger: ${JSON.stringify(ledger)} } }`,
      ].join("\n"),
    );
    expect((await ctl(["agents", "register", agent])).code).toBe(0);
    const first = await ctl(["run", flow, "--input", "only.text=hi", "--watch"]);
    expect(first.code, first.stderr).toBe(0);
    const firstId = /run (\S+) submitted/.exec(first.stderr)?.[1] ?? "";
    const hit = await ctl(["run", flow, "--input", "only.text=hi", "--watch"]);
    expect(hit.code, hit.stderr).toBe(0);
    expect(hit.stdout).toContain(` only  succeeded: reused from run ${firstId} node only (cached)`);
    expect(hit.stdout).toContain('only.text = "hi>only"');
    const hitId = /run (\S+) submitted/.exec(hit.stderr)?.[1] ?? "";
    expect((await ctl(["runs", "get", hitId])).stdout).toMatch(
      new RegExp(`only +org\\.mentatlab\\.test\\.cached-ledger@1\\.0\\.0 +succeeded +100% +cached from ${firstId} only`),
    );
    expect(readFileSync(ledger, "utf8")).toBe("only\n");
    expect((await ctl(["run", flow, "--input", "only.text=hi", "--cache", "off", "--watch"])).code).toBe(0);
    expect(readFileSync(ledger, "utf8")).toBe("only\nonly\n");
    const bad = await ctl(["run", flow, "--input", "only.text=hi", "--cache", "sometimes"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown --cache mode "sometimes"; use read-write, read, write, off');
  });

  it("uploads @file for a media pin and passes stored objects by ref:<id>", async () => {
    const looker = join(work, "looker.yaml");
    writeFileSync(
      looker,
      [
        "id: org.mentatlab.test.looker",
        "version: 1.0.0",
        `command: [${JSON.stringify(process.execPath)}, "-e", "0"]`,
        "inputs: [{ name: image, type: image, required: true, media: { accepted_mime_types: [image/png], max_size_bytes: 1048576 } }]",
      ].join("\n"),
    );
    const flow = join(work, "looker-flow.yaml");
    writeFileSync(
      flow,
      ["apiVersion: v1", "kind: Flow", "meta: { id: looker }", "graph:", "  nodes:", "    - { id: look, agent: org.mentatlab.test.looker }"].join("\n"),
    );
    expect((await ctl(["agents", "register", looker])).code).toBe(0);
    const png = join(work, "dot.png");
    await sharp({ create: { width: 4, height: 4, channels: 3, background: "#808080" } })
      .png()
      .toFile(png);

    const byFile = await ctl(["flows", "validate", flow, "--input", "look.image=@dot.png"]);
    expect(byFile.stdout).toContain("valid");
    expect(byFile.code, byFile.stdout).toBe(0);

    const ref = uploadedRef((await ctl(["--output", "json", "upload", png])).stdout);
    expect((await ctl(["flows", "validate", flow, "--input", `look.image=ref:${ref.id}`])).code).toBe(0);

    const asText = await ctl(["flows", "validate", flow, "--input", "look.image=a picture"]);
    expect(asText.code).toBe(2);
    expect(asText.stderr).toContain("look.image is an image pin: pass @file or ref:<id>, not text");
  });

  it("rejects a flow input that does not fit the pin before running anything", async () => {
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    const result = await ctl(["run", join(testdata, "shout-flow.yaml"), "--input", "shout.missing=x"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: \[InvalidArgument\]/);
  });
});

describe("mentatctl after a dropped connection", () => {
  let proxy: CuttingProxy;
  beforeAll(async () => {
    proxy = await startCuttingProxy(mesh.url);
  });
  afterAll(() => proxy?.close());
  const viaProxy = () => ({ MENTATLAB_URL: proxy.url });

  it("resumes a resumable upload from GetUploadStatus and a download from the next missing byte", async () => {
    const file = randomFile("cut.bin", 6 * 1024 * 1024);
    const cutsBefore = proxy.cuts;
    proxy.cutAfter(2_500_000, "upload");
    const up = await ctl(["--output", "json", "--http1", "upload", file.path], viaProxy());
    expect(up.code).toBe(0);
    expect(proxy.cuts).toBe(cutsBefore + 1);
    expect(up.stderr).toMatch(/upload of cut\.bin interrupted \(\[\w+\] .*\); retrying in [\d.]+ s/);
    const ref = uploadedRef(up.stdout);
    expect(ref.sha256).toBe(file.sha256);

    for (const flags of [[], ["--http1"]]) {
      const out = join(work, `cut-copy${flags.join("")}.bin`);
      proxy.cutAfter(2_000_000, "download");
      const down = await ctl([...flags, "download", ref.id, "-o", out], viaProxy());
      expect(down.code, down.stderr).toBe(0);
      expect(down.stderr).toMatch(new RegExp(`download of ${ref.id} interrupted .*; retrying in [\\d.]+ s`));
      expect(readFileSync(out).equals(readFileSync(file.path))).toBe(true);
    }
  });

  it("says how to upload resumably when a streaming upload's connection breaks, and that command works", async () => {
    const file = randomFile("streamed-cut.bin", 4 * 1024 * 1024);
    proxy.cutAfter(1_500_000, "upload");
    const broken = await ctl(["--output", "json", "upload", file.path], viaProxy());
    expect(broken.code).toBe(1);
    const hint = /to upload so that it resumes: (.+)\n/.exec(broken.stderr)?.[1];
    expect(hint, broken.stderr).toBe(`mentatctl --output json upload ${file.path} --resumable`);
    const again = await ctl(hint!.split(" ").slice(1), viaProxy());
    expect(again.code, again.stderr).toBe(0);
    expect(uploadedRef(again.stdout).sha256).toBe(file.sha256);
  });

  it("follows a stream to a file, exactly once across a disconnect and from a later sequence number", async () => {
    const streams = adminClient(StreamService);
    const { stream } = await streams.initStream({ payloadType: PinType.BINARY, mimeType: "application/octet-stream" });
    const streamId = stream?.ref?.streamId ?? "";
    const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    for (let i = 0; i < chunks.length; i += 10) {
      await streams.publishBatch({ streamId, payloads: chunks.slice(i, i + 10).map((data, j) => ({ data, clientSeq: BigInt(i + j + 1) })) });
    }
    await streams.closeStream({ streamId });

    const out = join(work, "followed.bin");
    proxy.cutAfter(1_000_000, "download");
    const followed = await ctl(["streams", "follow", streamId, "-o", out], viaProxy());
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stderr).toMatch(new RegExp(`stream ${streamId} after event \\d+ interrupted .*; retrying in [\\d.]+ s`));
    expect(readFileSync(out).equals(Buffer.concat(chunks))).toBe(true);

    // Events are numbered from 1 with stream_start first, so data chunk n is event n + 1.
    const tail = await ctl(["streams", "follow", streamId, "--from", "31"]);
    expect(tail.code).toBe(0);
    expect(tail.stdoutBytes.equals(Buffer.concat(chunks.slice(30)))).toBe(true);

    const list = await ctl(["streams", "list", "--state", "completed"]);
    expect(list.stdout).toMatch(new RegExp(`${streamId}\\s+completed\\s+binary`));
  });

  it("saves a live WAV sent with unknown sizes as a file whose header has its real length", async () => {
    const streams = adminClient(StreamService);
    const { stream } = await streams.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/wav" });
    const streamId = stream?.ref?.streamId ?? "";
    // 2 s of 16 kHz mono 16-bit PCM in 100 ms chunks, after a header saying "length unknown".
    const format = { sampleRate: 16_000, channels: 1 };
    const chunks = [wavHeader(format), ...Array.from({ length: 20 }, () => randomBytes(3_200))];
    const publish = (from: number, to: number) =>
      streams.publishBatch({ streamId, payloads: chunks.slice(from, to).map((data, i) => ({ data, clientSeq: BigInt(from + i + 1) })) });
    await publish(0, 11);
    const out = join(work, "live.wav");
    const following = ctl(["streams", "follow", streamId, "-o", out]);
    await publish(11, chunks.length);
    await streams.closeStream({ streamId });
    const followed = await following;
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stderr).toContain(`${out}: WAV header sizes set to the received length`);

    const saved = readFileSync(out);
    expect(saved.byteLength).toBe(44 + 20 * 3_200);
    expect([saved.readUInt32LE(4), saved.readUInt32LE(40)]).toEqual([saved.byteLength - 8, 20 * 3_200]);
    const probed = await promisify(execFile)("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", out]);
    expect(Number(probed.stdout)).toBeCloseTo(2, 3);
    const soxi = await promisify(execFile)("soxi", ["-D", out]);
    expect(Number(soxi.stdout)).toBeCloseTo(2, 3);
  });

  it("resumes watching a run after the last event it printed", async () => {
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    const submitted = await ctl(["--output", "json", "run", join(testdata, "shout-flow.yaml"), "--input", "shout.text=hi"]);
    const runId = (JSON.parse(submitted.stdout) as { runId: string }).runId;
    expect((await ctl(["runs", "watch", runId])).code).toBe(0);

    proxy.cutAfter(600, "download");
    const watched = await ctl(["runs", "watch", runId], viaProxy());
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toMatch(new RegExp(`watch of run ${runId} after event \\d+ interrupted`));
    const seqs = [...watched.stdout.matchAll(/^#(\d+) /gm)].map((m) => Number(m[1]));
    expect(seqs.length).toBeGreaterThan(5);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });
});
