import { MemoryStreamRegistry } from "./memory-registry.js";
import { describeStreamRegistryConformance } from "./registry-conformance.js";

describeStreamRegistryConformance("memory", async (retention) => new MemoryStreamRegistry(retention));
