import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "proto-deps/**"],
    // Real servers (redis, S3, clamd, chromium) start per file; 2 cores is the target machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
    setupFiles: ["test/setup/check-node.ts"],
  },
});
