import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentRegistryService, ValidateManifestResponseSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { DownloadResponseSchema, StorageService, UploadResponseSchema } from "../../gen/mentatlab/v1/storage_pb.js";

/**
 * A tiny stand-in for two of our services, only to exercise the transport (protocols, streaming,
 * compression, limits, shutdown). It is not the registry or the storage service.
 *
 * - `ValidateManifest`: empty text → one fixed violation; any other text → a violation echoing it.
 * - `Upload` (client stream): sums chunk sizes and sha256 of the bytes.
 * - `Download` (server stream): `ref_id` picks the behaviour: `zeros` sends `length` zero bytes in
 *   `chunk_bytes` chunks; `slow:<ms>` sends `length` one-byte chunks `<ms>` apart and fails with the
 *   abort reason when aborted; `truncating:<ms>` does the same but just returns on abort.
 */
export function mountTransportFixture(router: ConnectRouter): void {
  router.service(AgentRegistryService, {
    validateManifest(request) {
      const text = request.source?.source.case === "text" ? request.source.source.value : "";
      const violation =
        text === ""
          ? { fieldPath: "source.text", message: "manifest is empty", hint: "send a YAML or JSON manifest", rule: "fixture.empty" }
          : { fieldPath: "source.text", message: `fixture echoes: ${text}`, rule: "fixture.echo" };
      return create(ValidateManifestResponseSchema, { valid: false, violations: [violation] });
    },
  });
  router.service(StorageService, {
    async upload(requests) {
      const hash = createHash("sha256");
      let size = 0n;
      let filename = "";
      for await (const request of requests) {
        if (request.part.case === "header") filename = request.part.value.filename;
        if (request.part.case === "chunk") {
          hash.update(request.part.value);
          size += BigInt(request.part.value.length);
        }
      }
      return create(UploadResponseSchema, { ref: { id: "fixture", filename, sizeBytes: size, sha256: hash.digest("hex") } });
    },
    async *download(request, context: HandlerContext) {
      const [kind, delay] = request.refId.split(":");
      if (kind === "zeros") {
        const chunkBytes = request.chunkBytes || 65_536;
        for (let offset = 0n; offset < request.length; offset += BigInt(chunkBytes)) {
          const size = Math.min(chunkBytes, Number(request.length - offset));
          yield create(DownloadResponseSchema, { part: { case: "chunk", value: { offset, data: new Uint8Array(size) } } });
        }
        return;
      }
      for (let offset = 0n; offset < request.length; offset++) {
        try {
          await sleep(Number(delay), undefined, { signal: context.signal });
        } catch {
          if (kind === "truncating") return;
          context.signal.throwIfAborted();
        }
        yield create(DownloadResponseSchema, { part: { case: "chunk", value: { offset, data: new Uint8Array([1]) } } });
      }
    },
  });
}
