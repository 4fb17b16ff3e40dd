// Child-process entry for the S3 harness, run by Node's own type stripping (no relative imports,
// erasable syntax only). fauxqs's startFauxqs() always binds 0.0.0.0, so this builds its app and
// listens on loopback only. In a child process, the objects fauxqs holds in memory stay out of the
// test process.
import { buildApp } from "fauxqs";

const region = process.env.MENTATLAB_S3_REGION ?? "us-east-1";
const app = buildApp({ logger: false, defaultRegion: region });
await app.listen({ port: 0, host: "127.0.0.1" });
const address = app.server.address();
if (address === null || typeof address === "string") {
  throw new Error("fauxqs did not report a TCP address");
}
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);

// The parent holds our stdin open; when it goes away (even by SIGKILL) the pipe closes and we
// follow, so no orphaned server survives a crashed test run.
process.stdin.on("close", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
