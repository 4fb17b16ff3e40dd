import { MemoryStreamStore } from "./memory-stream-store.js";
import { describeStreamStoreConformance } from "./stream-store.conformance.js";

describeStreamStoreConformance("memory", async (retention) => new MemoryStreamStore(retention));
