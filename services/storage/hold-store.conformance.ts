import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { Hold, HoldStore } from "./hold-store.js";
import { newRefId } from "./keys.js";

export interface HoldStoreFixture {
  readonly holds: HoldStore;
  dispose(): Promise<void>;
}

async function collect(holds: AsyncIterable<Hold>): Promise<Hold[]> {
  const out: Hold[] = [];
  for await (const hold of holds) out.push(hold);
  return out.sort((a, b) => `${a.workspace}${a.refId}${a.holder}`.localeCompare(`${b.workspace}${b.refId}${b.holder}`));
}

/** The behaviour every HoldStore backend must show; the factory builds an empty store. */
export function describeHoldStoreConformance(name: string, factory: () => Promise<HoldStoreFixture>): void {
  describe(`HoldStore conformance: ${name}`, () => {
    let fixture: HoldStoreFixture;
    let holds: HoldStore;
    beforeEach(async () => {
      fixture = await factory();
      holds = fixture.holds;
    });
    afterEach(async () => fixture?.dispose());

    it("keeps one hold per (object, holder), renewing its expiry but not its creation time", async () => {
      const refId = newRefId();
      await holds.add({ workspace: "ws:a", refId, holder: "run:r1", expiresMs: 0, createdMs: 100 });
      await holds.add({ workspace: "ws:a", refId, holder: "run:r1", expiresMs: 900, createdMs: 500 });
      await holds.add({ workspace: "ws:a", refId, holder: "cache:k", expiresMs: 0, createdMs: 200 });
      expect(await collect(holds.all())).toEqual([
        { workspace: "ws:a", refId, holder: "cache:k", expiresMs: 0, createdMs: 200 },
        { workspace: "ws:a", refId, holder: "run:r1", expiresMs: 900, createdMs: 100 },
      ]);
      expect((await holds.holdsOf("ws:a", refId)).map((h) => h.holder).sort()).toEqual(["cache:k", "run:r1"]);
    });

    it("removes a hold once, and separates workspaces", async () => {
      const refId = newRefId();
      await holds.add({ workspace: "ws-1", refId, holder: "run:r", expiresMs: 0, createdMs: 1 });
      await holds.add({ workspace: "ws-2", refId, holder: "run:r", expiresMs: 0, createdMs: 1 });
      expect(await holds.remove("ws-1", refId, "run:r")).toBe(true);
      expect(await holds.remove("ws-1", refId, "run:r")).toBe(false);
      expect(await holds.holdsOf("ws-1", refId)).toEqual([]);
      expect((await collect(holds.ofWorkspace("ws-2"))).map((h) => h.workspace)).toEqual(["ws-2"]);
      expect(await collect(holds.ofWorkspace("ws-1"))).toEqual([]);
    });

    it("adopts the refs stored before holds once, as upload holds lasting their own expiry", async () => {
      const ref = create(MediaRefSchema, { id: newRefId(), workspace: "ws-old", expiresAt: timestampFromMs(5_000) });
      async function* refs() {
        yield { ref, blobKey: "media/ws-old/x" };
      }
      await holds.adoptOnce(refs(), 10);
      expect(await holds.holdsOf("ws-old", ref.id)).toEqual([
        { workspace: "ws-old", refId: ref.id, holder: `upload:${ref.id}`, expiresMs: 5_000, createdMs: 10 },
      ]);
      await holds.remove("ws-old", ref.id, `upload:${ref.id}`);
      await holds.adoptOnce(refs(), 20);
      expect(await holds.holdsOf("ws-old", ref.id)).toEqual([]);
    });
  });
}
