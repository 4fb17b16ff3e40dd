import { describeRunStoreConformance } from "./run-store.conformance.js";
import { MemoryRunStore } from "./memory-run-store.js";

describeRunStoreConformance("memory", async () => {
  const store = new MemoryRunStore(1);
  return { store, peer: async () => store, cleanup: () => store.close() };
});
