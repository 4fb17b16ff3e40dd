import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ctlConfig, defaultUrl } from "./config.js";

describe("ctlConfig", () => {
  const empty = mkdtempSync(join(tmpdir(), "ctl-config-"));

  it("defaults to the local gateway over HTTP/2 with text output and no key", () => {
    expect(ctlConfig({}, {}, empty)).toEqual({ url: defaultUrl, apiKey: undefined, httpVersion: "2", output: "text", retrySeconds: 60 });
  });

  it("takes flags over environment variables", () => {
    const env = { MENTATLAB_URL: "http://127.0.0.1:9000", MENTATLAB_API_KEY: "from-env", MENTATLAB_OUTPUT: "json" };
    expect(ctlConfig({}, env, empty)).toMatchObject({ url: "http://127.0.0.1:9000", apiKey: "from-env", output: "json" });
    expect(ctlConfig({ url: "http://127.0.0.1:9001/", key: "from-flag", output: "text", http1: true }, env, empty)).toEqual({
      url: "http://127.0.0.1:9001",
      apiKey: "from-flag",
      httpVersion: "1.1",
      output: "text",
      retrySeconds: 60,
    });
  });

  it("falls back to the development key npm start writes into the data dir", () => {
    const cwd = mkdtempSync(join(tmpdir(), "ctl-devkey-"));
    mkdirSync(join(cwd, ".mentatlab"));
    writeFileSync(join(cwd, ".mentatlab", "dev-admin.key"), "mlk_dev_abc\n");
    expect(ctlConfig({}, {}, cwd).apiKey).toBe("mlk_dev_abc");
    writeFileSync(join(cwd, "other.key"), "ignored");
    mkdirSync(join(cwd, "data"));
    writeFileSync(join(cwd, "data", "dev-admin.key"), "mlk_dev_other");
    expect(ctlConfig({}, { MENTATLAB_DATA_DIR: "data" }, cwd).apiKey).toBe("mlk_dev_other");
    expect(ctlConfig({}, { MENTATLAB_API_KEY: "explicit" }, cwd).apiKey).toBe("explicit");
  });

  it("rejects values it cannot use, naming the fix", () => {
    expect(() => ctlConfig({ output: "yaml" }, {}, empty)).toThrow(/"json" or "text"/);
    expect(() => ctlConfig({}, { MENTATLAB_HTTP_VERSION: "3" }, empty)).toThrow('MENTATLAB_HTTP_VERSION must be one of 1.1, 2, not "3"');
    expect(() => ctlConfig({ url: "127.0.0.1:8080" }, {}, empty)).toThrow(/http:\/\//);
    expect(() => ctlConfig({}, { MENTATLAB_RETRY_SECONDS: "a minute" }, empty)).toThrow(/MENTATLAB_RETRY_SECONDS must be a number of seconds/);
  });

  it("reads how long to retry a lost connection from MENTATLAB_RETRY_SECONDS", () => {
    expect(ctlConfig({}, { MENTATLAB_RETRY_SECONDS: "300" }, empty).retrySeconds).toBe(300);
  });
});
