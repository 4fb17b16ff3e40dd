import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import type { Executor, ExecutorEvent, NodeTask } from "./executor.js";
import { jsonPinValue, textPinValue } from "../../agent-contract/pin-values.js";

/**
 * Finishes every attempt at once, in process, with an empty value of each output pin's kind. Measures
 * the orchestrator's own overhead (bench) without processes or I/O.
 */
export class NoopExecutor implements Executor {
  async *execute(task: NodeTask): AsyncIterable<ExecutorEvent> {
    const outputs = Object.fromEntries(
      task.agent.outputs
        .filter((pin) => pin.type === PinType.TEXT || pin.type === PinType.JSON)
        .map((pin) => [pin.name, pin.type === PinType.TEXT ? textPinValue("") : jsonPinValue(null)]),
    );
    yield { kind: "succeeded", outputs };
  }
}
