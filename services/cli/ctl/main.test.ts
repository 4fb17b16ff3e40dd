import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../../mesh/embedded.js";
import { main } from "./main.js";
import { CapturedIo } from "./test-io.js";

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
async function ctl(args: string[], env: Record<string, string> = {}) {
  const io = new CapturedIo({ MENTATLAB_URL: mesh.url, MENTATLAB_API_KEY: mesh.adminKey ?? "", ...env }, work);
  const code = await main(["node", "mentatctl", ...args], io);
  return { code, stdout: io.stdoutText, stdoutBytes: io.stdoutBytes, stderr: io.stderrText };
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
    const storage = createClient(
      StorageService,
      createConnectTransport({
        baseUrl: mesh.url,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${mesh.adminKey}`), next(req))],
      }),
    );
    const { uploadId } = await storage.createUpload({ header: { filename: "interrupted.bin", sizeBytes: BigInt(3 * 1024 * 1024) } });
    await storage.uploadChunk({ uploadId, offset: 0n, data: readFileSync(file.path).subarray(0, 1024 * 1024) });

    const resumed = await ctl(["--output", "json", "upload", file.path, "--upload-id", uploadId]);
    expect(resumed.code).toBe(0);
    expect(uploadedRef(resumed.stdout).sha256).toBe(file.sha256);
  });

  it("deletes an object and reports usage", async () => {
    const file = randomFile("doomed.bin", 10_000);
    const ref = uploadedRef((await ctl(["--output", "json", "upload", file.path, "--temp"])).stdout);
    const usage = await ctl(["--output", "json", "usage"]);
    expect(usage.code).toBe(0);
    expect(Number((JSON.parse(usage.stdout) as { workspaceObjectCount: string }).workspaceObjectCount)).toBeGreaterThan(0);
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

  it("exits 2 on a bad command line", async () => {
    const bad = await ctl(["upload"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("missing required argument 'file'");
    expect((await ctl(["run", join(testdata, "shout-flow.yaml"), "--input", "nonsense"])).code).toBe(2);
  });
});

describe("mentatctl agents and runs", () => {
  const manifest = () => {
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
  };

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

  it("rejects a flow input that does not fit the pin before running anything", async () => {
    expect((await ctl(["agents", "register", manifest()])).code).toBe(0);
    const result = await ctl(["run", join(testdata, "shout-flow.yaml"), "--input", "shout.missing=x"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: \[InvalidArgument\]/);
  });
});
