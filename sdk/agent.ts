import { createReadStream, type ReadStream } from "node:fs";
import { create, fromJson, toJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow, ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { AgentEventSchema, LogLevel, PinType, type MediaRef, type PinValue, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import {
  SidecarService,
  WriteOutputRequestSchema,
  WriteOutputStreamRequestSchema,
  type AdaptOutputBitrate,
  type GetInputsResponse,
  type LocalInput,
  type WriteOutputRequest,
  type WriteOutputStreamRequest,
} from "../gen/mentatlab/v1/sidecar_pb.js";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { defaultResumePolicy, followSequenced } from "../services/shared/resume.js";
import { subscribeCall } from "../services/shared/watched-calls.js";
import { BytesOutput, FileOutput, type OutputValue } from "./outputs.js";
import { createSidecarTransport, sidecarAddressFromEnv, type SidecarAddress } from "./sidecar-transport.js";

/** How long a stopped agent may wind down before it exits; the sidecar SIGKILLs it at 5 s. */
const stopGraceMs = 3_000;

/** Plain values of an agent's text, JSON and file inputs, by pin (files as their local path). */
export type PlainInputs = Record<string, JsonValue>;

/** A media input, already downloaded and verified by the sidecar. */
export interface MediaInput {
  readonly pin: string;
  /** Local file on the shared volume. */
  readonly path: string;
  /** The stored object it came from. */
  readonly ref: MediaRef | undefined;
  readonly mimeType: string;
  /** The bytes as a stream, for tools that read pipes. */
  stream(): ReadStream;
}

export interface StreamOutputOptions {
  /** Payload MIME type, e.g. `audio/wav`. */
  readonly mimeType?: string;
  /** Payload kind; defaults to the pin's declared payload or binary. */
  readonly payloadType?: PinType;
  /**
   * Called when a subscriber of this audio or video stream receives less than it produces and falls
   * behind (the reason names it and both rates): lower the encoder bitrate to `suggestedBitsPerSecond`.
   * At most once per measuring window; every call has happened by the time `streamOutput` resolves.
   */
  readonly onAdaptBitrate?: (advice: AdaptOutputBitrate) => void;
}

/**
 * An agent's handle on the mesh, through its sidecar only. `process` and `processMedia` run the agent's
 * work on its inputs and publish what it returns; `streamOutput` sends live chunks; `progress`,
 * `heartbeat` and `log` report; `signal` aborts when the run is cancelled or the sidecar stops the agent.
 */
export class Agent {
  private readonly cancellation = new AbortController();
  private inputsResponse: GetInputsResponse | undefined;

  private constructor(
    private readonly client: Client<typeof SidecarService>,
    private readonly streams: Client<typeof StreamService>,
  ) {
    // The sidecar stops a cancelled agent with SIGTERM: abort the work so it can wind down, then exit as
    // SIGTERM would have, in case the work ignores the signal.
    process.once("SIGTERM", () => {
      this.cancellation.abort(new Error("the agent was asked to stop"));
      setTimeout(() => process.exit(143), stopGraceMs).unref();
    });
  }

  /** Connects to the sidecar named by MENTATLAB_SIDECAR_ADDRESS / MENTATLAB_SIDECAR_TOKEN (or `address`). */
  static connect(address: SidecarAddress = sidecarAddressFromEnv()): Agent {
    const transport = createSidecarTransport(address);
    return new Agent(createClient(SidecarService, transport), createClient(StreamService, transport));
  }

  /** Aborted when the run is cancelled: stop work, the node's result is discarded. */
  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  /** The node's inputs as the sidecar holds them (media already on local disk), fetched once. */
  async inputs(): Promise<GetInputsResponse> {
    this.inputsResponse ??= await this.client.getInputs({});
    return this.inputsResponse;
  }

  /** The node's parameters from the flow. */
  async params(): Promise<JsonObject> {
    return (await this.inputs()).params ?? {};
  }

  /** Directory on the shared volume to write output files to. */
  async workDir(): Promise<string> {
    return (await this.inputs()).workDir;
  }

  /**
   * Runs `work` on the node's inputs as plain values (text as strings, JSON as values, files as local
   * paths) and publishes every pin of the object it returns.
   */
  async process(work: (inputs: PlainInputs, agent: Agent) => Promise<Record<string, OutputValue> | void>): Promise<void> {
    await this.eachAttempt(async () => {
      const response = await this.inputs();
      const plain: PlainInputs = {};
      for (const [pin, input] of Object.entries(response.inputs)) plain[pin] = plainValue(input);
      await this.putOutputs((await work(plain, this)) ?? {});
    });
  }

  /**
   * Runs `work` on a media input (the one on `pin`, else the first media input): a local file with a
   * readable stream of its bytes, and publishes every pin of the object it returns.
   */
  async processMedia(work: (media: MediaInput, agent: Agent) => Promise<Record<string, OutputValue> | void>, pin?: string): Promise<void> {
    await this.eachAttempt(() => this.processMediaOnce(work, pin));
  }

  /**
   * Runs `attempt` once, or, in a warm worker (MENTATLAB_WARM_WORKER=1, docs/warm-agents.md), once for
   * every node attempt the worker is handed until it is drained: what the agent loaded before calling
   * `process` stays loaded. A failed attempt is reported to the sidecar and the loop goes on.
   */
  private async eachAttempt(attempt: () => Promise<void>): Promise<void> {
    if (process.env.MENTATLAB_WARM_WORKER !== "1") return attempt();
    for (;;) {
      const next = await this.client.nextAttempt({});
      if (next.drain) return;
      this.inputsResponse = undefined;
      let errorMessage = "";
      try {
        await attempt();
      } catch (error) {
        errorMessage = messageOf(error) || "the attempt failed";
      }
      await this.client.finishAttempt({ errorMessage });
    }
  }

  private async processMediaOnce(work: (media: MediaInput, agent: Agent) => Promise<Record<string, OutputValue> | void>, pin?: string): Promise<void> {
    const response = await this.inputs();
    const entry = Object.entries(response.inputs).find(([name, input]) => (pin === undefined || name === pin) && input.value.case === "filePath");
    if (!entry || entry[1].value.case !== "filePath") {
      throw new Error(pin ? `input ${pin} is not a media input` : "the node has no media input");
    }
    const [name, input] = entry;
    const path = entry[1].value.value;
    const media: MediaInput = {
      pin: name,
      path,
      ref: input.ref,
      mimeType: input.ref?.mimeType ?? "",
      stream: () => createReadStream(path, { highWaterMark: 256 * 1024 }),
    };
    await this.putOutputs((await work(media, this)) ?? {});
  }

  /** Publishes outputs by pin. */
  async putOutputs(outputs: Record<string, OutputValue>): Promise<Record<string, PinValue>> {
    const values: Record<string, PinValue> = {};
    for (const [pin, value] of Object.entries(outputs)) values[pin] = await this.putOutput(pin, value);
    return values;
  }

  /** Publishes one output pin. */
  async putOutput(pin: string, value: OutputValue): Promise<PinValue> {
    const response = await this.client.putOutput(
      value instanceof FileOutput
        ? { pin, mimeType: value.mimeType, value: { case: "filePath", value: value.path } }
        : value instanceof BytesOutput
          ? { pin, mimeType: value.mimeType, value: { case: "inlineBytes", value: value.bytes } }
          : typeof value === "string"
            ? { pin, value: { case: "text", value } }
            : { pin, value: { case: "json", value: fromJson(ValueSchema, value) } },
      { signal: this.signal },
    );
    if (!response.value) throw new Error(`the sidecar returned no value for output ${pin}`);
    return response.value;
  }

  /** Streams bytes of any size to an output pin (stored as a MediaRef) without buffering them. */
  async writeOutput(pin: string, chunks: AsyncIterable<Uint8Array>, mimeType = ""): Promise<PinValue> {
    async function* requests(): AsyncGenerator<WriteOutputRequest> {
      yield create(WriteOutputRequestSchema, { part: { case: "header", value: { pin, mimeType } } });
      for await (const chunk of chunks) yield create(WriteOutputRequestSchema, { part: { case: "chunk", value: chunk } });
    }
    const response = await this.client.writeOutput(requests(), { signal: this.signal });
    if (!response.value) throw new Error(`the sidecar returned no value for output ${pin}`);
    return response.value;
  }

  /**
   * Streams live chunks on an output pin: consumers follow them while they are produced. The sidecar
   * relays them, buffering through network blips; the stream ends when `chunks` ends (with an error
   * when it throws). Resolves with the stream's ref and the number of chunks acknowledged.
   */
  async streamOutput(
    pin: string,
    chunks: AsyncIterable<Uint8Array | string>,
    options: StreamOutputOptions = {},
  ): Promise<{ stream: StreamRef; chunksRelayed: bigint }> {
    const opened = await this.client.openOutputStream({
      pin,
      mimeType: options.mimeType ?? "",
      payloadType: options.payloadType ?? PinType.UNSPECIFIED,
    });
    const stream = opened.stream;
    if (!stream) throw new Error(`the sidecar opened no stream for ${pin}`);
    const encoder = new TextEncoder();
    async function* requests(): AsyncGenerator<WriteOutputStreamRequest> {
      for await (const chunk of chunks) {
        const data = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
        yield create(WriteOutputStreamRequestSchema, { streamId: stream!.streamId, data });
      }
    }
    const stopWatching = new AbortController();
    const watching = options.onAdaptBitrate
      ? this.watchAdvice(stream.streamId, options.onAdaptBitrate, AbortSignal.any([this.signal, stopWatching.signal]))
      : Promise.resolve();
    try {
      try {
        await this.client.writeOutputStream(requests(), { signal: this.signal });
      } catch (error) {
        await this.client.closeOutputStream({ streamId: stream.streamId, errorMessage: messageOf(error) });
        throw error;
      }
      const closed = await this.client.closeOutputStream({ streamId: stream.streamId });
      // The sidecar ends the watch once the stream is closed, so every piece of advice has been handled here.
      await watching;
      return { stream, chunksRelayed: closed.chunksRelayed };
    } finally {
      // On failure the stream's own error is the one to report, not the watch's.
      stopWatching.abort();
      await watching.catch(() => undefined);
    }
  }

  private async watchAdvice(streamId: string, onAdaptBitrate: (advice: AdaptOutputBitrate) => void, signal: AbortSignal): Promise<void> {
    for await (const response of this.client.watchOutputStream({ streamId }, { signal })) {
      if (response.advice.case === "adaptBitrate") onAdaptBitrate(response.advice.value);
    }
  }

  /**
   * Follows the live stream on input `pin` (a `stream` edge) from its start, or after `afterSeq`: the
   * payloads in order, each once, ending with the stream (throwing if it ended with stream_error). The
   * sidecar resumes its subscription through network blips; should the call to the sidecar itself
   * break, this resumes it after the last event passed on.
   */
  async *followStream(pin: string, afterSeq = 0n): AsyncGenerator<Uint8Array> {
    const input = (await this.inputs()).inputs[pin];
    if (input?.value.case !== "stream") throw new Error(`input ${pin} is not a stream`);
    const events = followSequenced(subscribeCall(this.streams, input.value.value.streamId), afterSeq, defaultResumePolicy, this.signal);
    for await (const event of events) {
      if (event.event.case === "data") yield event.event.value.data;
      if (event.event.case === "error") throw new Error(`stream ${pin} failed: ${event.event.value.message}`);
      if (event.event.case === "end") return;
    }
  }

  /** Reports progress (0–100). */
  async progress(percent: number, message = "", etaSeconds = 0): Promise<void> {
    await this.report({ case: "progress", value: { percent: Math.min(100, Math.max(0, percent)), message, etaSeconds } });
  }

  /** Tells the orchestrator the agent is alive. */
  async heartbeat(): Promise<void> {
    await this.report({ case: "heartbeat", value: {} });
  }

  /** Sends a heartbeat every `intervalMs` until the returned function is called. */
  startHeartbeat(intervalMs = 10_000): () => void {
    const timer = setInterval(() => {
      this.heartbeat().catch(() => undefined);
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  async log(level: LogLevel, message: string, data?: JsonObject): Promise<void> {
    await this.report({ case: "log", value: { level, message, data } });
  }

  async metric(name: string, value: number, labels: Record<string, string> = {}): Promise<void> {
    await this.report({ case: "metric", value: { name, value, labels } });
  }

  async checkpoint(name: string, data?: JsonObject): Promise<void> {
    await this.report({ case: "checkpoint", value: { name, data } });
  }

  private async report(event: MessageInitShape<typeof AgentEventSchema>["event"]): Promise<void> {
    const response = await this.client.report({ event: create(AgentEventSchema, { time: timestampNow(), event }) });
    if (response.cancelled) this.cancellation.abort(new Error("the run was cancelled"));
  }
}

function plainValue(input: LocalInput): JsonValue {
  switch (input.value.case) {
    case "text":
    case "filePath":
      return input.value.value;
    case "json":
      return toJson(ValueSchema, input.value.value);
    case "stream":
      return { streamId: input.value.value.streamId, mimeType: input.value.value.mimeType };
    default:
      return null;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
