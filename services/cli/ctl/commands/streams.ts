import { createWriteStream } from "node:fs";
import { resolve } from "node:path";
import { finished } from "node:stream/promises";
import type { Command } from "commander";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { PinTypeSchema } from "../../../../gen/mentatlab/v1/common_pb.js";
import {
  ListStreamsResponseSchema,
  StreamAnnouncementKindSchema,
  StreamInfoSchema,
  StreamState,
  StreamStateSchema,
  WatchStreamsResponseSchema,
  type StreamFilterSchema,
  type StreamInfo,
} from "../../../../gen/mentatlab/v1/stream_pb.js";
import { formatBytes } from "../../../shared/format-bytes.js";
import type { ActionRunner } from "../action.js";
import { announcedRetry } from "../context.js";
import { CliError, ExitCode } from "../exit-codes.js";
import { columns, enumLabel, formatTime, table } from "../format.js";
import { followDeduplicated } from "../../../shared/resume.js";
import { announcementKey, watchStreamsCall } from "../../../shared/watched-calls.js";
import { followStream } from "../stream-follow.js";
import { fixWavSizes } from "../wav-sizes.js";
import { sequenceNumber } from "./runs.js";

const stateNames: Readonly<Record<string, StreamState>> = {
  open: StreamState.OPEN,
  completed: StreamState.COMPLETED,
  failed: StreamState.FAILED,
};

interface FilterFlags {
  run?: string;
  state?: string[];
}

export function registerStreamCommands(program: Command, run: ActionRunner): void {
  const streams = program.command("streams").description("list, watch and follow live streams");

  streams
    .command("list")
    .description("list the workspace's streams, newest first")
    .option("--run <run-id>", "only streams of this run")
    .option("--state <state...>", `only streams in these states (${Object.keys(stateNames).join(", ")})`)
    .action((opts: FilterFlags, command: Command) =>
      run(command, async (ctx) => {
        const response = await ctx.clients.stream.listStreams({ filter: filterOf(opts), pageSize: 500 });
        await ctx.printer.result(ListStreamsResponseSchema, response, (r) =>
          r.streams.length === 0
            ? "no streams"
            : columns(
                ["STREAM", "STATE", "TYPE", "MIME", "PRODUCER", "EVENTS", "BYTES", "CREATED"],
                r.streams.map((s) => [
                  s.ref?.streamId ?? "",
                  enumLabel(StreamStateSchema, s.state),
                  enumLabel(PinTypeSchema, s.ref?.payloadType ?? 0),
                  s.ref?.mimeType ?? "",
                  producer(s),
                  String(s.lastSeq),
                  formatBytes(s.bytesPublished),
                  formatTime(s.createdAt),
                ]),
              ),
        );
      }),
    );

  streams
    .command("get")
    .description("describe one stream")
    .argument("<stream-id>", "stream id")
    .action((streamId: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { stream } = await ctx.clients.stream.getStream({ streamId });
        await ctx.printer.result(StreamInfoSchema, stream ?? create(StreamInfoSchema), describeStream);
      }),
    );

  streams
    .command("watch")
    .description("print streams as they become available and end (open ones first); runs until interrupted")
    .option("--run <run-id>", "only streams of this run")
    .option("--state <state...>", `only streams in these states (${Object.keys(stateNames).join(", ")})`)
    .action((opts: FilterFlags, command: Command) =>
      run(command, async (ctx) => {
        const announcements = followDeduplicated(
          watchStreamsCall(ctx.clients.stream, filterOf(opts)),
          announcementKey,
          announcedRetry(ctx, () => "stream announcements"),
        );
        for await (const announcement of announcements) {
          await ctx.printer.event(
            WatchStreamsResponseSchema,
            announcement,
            (a) =>
              `${enumLabel(StreamAnnouncementKindSchema, a.kind)}  ${a.stream ? `${a.stream.ref?.streamId ?? ""}  ${enumLabel(StreamStateSchema, a.stream.state)}  ${a.stream.ref?.mimeType ?? ""}  ${producer(a.stream)}` : ""}`,
          );
        }
      }),
    );

  streams
    .command("follow")
    .description("write a stream's payload bytes as they arrive, until it ends; resumes after disconnects")
    .argument("<stream-id>", "stream id")
    .option("--from <seq>", "start after this event sequence number", "0")
    .option("-o, --out <file>", "write the payload here instead of stdout")
    .action((streamId: string, opts: { from: string; out?: string }, command: Command) =>
      run(command, async (ctx) => {
        const from = sequenceNumber(opts.from, "--from");
        const path = opts.out === undefined || opts.out === "-" ? undefined : resolve(ctx.io.cwd, opts.out);
        const file = path === undefined ? undefined : createWriteStream(path, { flags: from > 0n ? "a" : "w" });
        try {
          const result = await followStream(ctx, streamId, from, file ?? ctx.io.stdout);
          await ctx.printer.note(`stream ${streamId} ended: ${formatBytes(result.payloadBytes)} written, last event ${result.lastSeq}`);
        } finally {
          if (file) {
            file.end();
            await finished(file);
          }
        }
        // Reached only once the stream ended: a follow cut short has no final length yet (--from appends later).
        if (path !== undefined && (await fixWavSizes(path))) await ctx.printer.note(`${opts.out}: WAV header sizes set to the received length`);
      }),
    );
}

function filterOf(flags: FilterFlags): MessageInitShape<typeof StreamFilterSchema> {
  const states = (flags.state ?? []).map((name) => {
    const state = stateNames[name];
    if (state === undefined) throw new CliError(`unknown state "${name}"; use ${Object.keys(stateNames).join(", ")}`, ExitCode.usage);
    return state;
  });
  return { runId: flags.run ?? "", states };
}

function producer(s: StreamInfo): string {
  return s.runId ? `${s.runId}/${s.nodeId}.${s.pin}` : s.owner;
}

function describeStream(s: StreamInfo): string {
  return table([
    ["stream", s.ref?.streamId],
    ["state", enumLabel(StreamStateSchema, s.state)],
    ["type", enumLabel(PinTypeSchema, s.ref?.payloadType ?? 0)],
    ["mime type", s.ref?.mimeType],
    ["owner", s.owner],
    ["run", s.runId],
    ["node", s.nodeId],
    ["pin", s.pin],
    ["events", String(s.lastSeq)],
    ["retained from", String(s.firstRetainedSeq)],
    ["bytes", formatBytes(s.bytesPublished)],
    ["sse", s.ref?.ssePath],
    ["created", formatTime(s.createdAt)],
    ["ended", s.endedAt ? formatTime(s.endedAt) : undefined],
    [
      "labels",
      Object.entries(s.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ],
  ]);
}
