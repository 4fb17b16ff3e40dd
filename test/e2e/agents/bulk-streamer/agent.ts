import { createHash } from "node:crypto";
import { Agent, PinType } from "../../../../sdk/index.js";
import { bulkChunk } from "./chunks.js";

// Streams `mebibytes` of bytes as fast as the mesh takes them, then says when every chunk was
// acknowledged: a test compares that moment with what a slow downstream reader had by then.
const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const params = await agent.params();
  const mebibytes = typeof params.mebibytes === "number" ? params.mebibytes : 16;
  const hash = createHash("sha256");
  const count = mebibytes * 16;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let n = 0; n < count; n++) {
      const chunk = bulkChunk(n);
      hash.update(chunk);
      yield chunk;
    }
  }
  await agent.streamOutput("bytes", chunks(), { mimeType: "application/octet-stream", payloadType: PinType.BINARY });
  return { report: { finished_at_ms: Date.now(), bytes: count * 65_536, sha256: hash.digest("hex") } };
});
