import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import type { Command } from "commander";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  DeleteResponseSchema,
  GetUsageResponseSchema,
  HolderKind,
  ListMediaResponseSchema,
  UploadResponseSchema,
} from "../../../../gen/mentatlab/v1/storage_pb.js";
import { type MediaRef, MediaRefSchema } from "../../../../gen/mentatlab/v1/common_pb.js";
import { formatBytes } from "../../../shared/format-bytes.js";
import type { ActionRunner } from "../action.js";
import { isRetryable } from "../../../shared/retryable.js";
import { announcedRetry, continueCommand } from "../context.js";
import { download } from "../download.js";
import { CliError, ExitCode } from "../exit-codes.js";
import { columns, describeMediaRef, table } from "../format.js";
import { byteProgress, type Progress } from "../progress.js";
import { uploadFile } from "../upload-file.js";
import { create } from "@bufbuild/protobuf";

export function registerStorageCommands(program: Command, run: ActionRunner): void {
  program
    .command("upload")
    .description("upload a file (streamed, SHA-256 verified by the server) and print its MediaRef")
    .argument("<file>", "file to upload")
    .option("--mime <type>", "declared MIME type (checked against the sniffed one)")
    .option("--temp", "store in the temp class, which expires after an hour")
    .option("--resumable", "use the resumable CreateUpload/UploadChunk/CompleteUpload calls (always over HTTP/1.1)")
    .option("--upload-id <id>", "continue an earlier resumable upload of the same file")
    .action((file: string, opts: { mime?: string; temp?: boolean; resumable?: boolean; uploadId?: string }, command: Command) =>
      run(command, async (ctx) => {
        const result = await uploadFile(ctx, file, { mimeType: opts.mime, temp: opts.temp, resumable: opts.resumable, uploadId: opts.uploadId });
        await ctx.printer.result(
          UploadResponseSchema,
          create(UploadResponseSchema, result),
          (r) => `${r.ref ? describeMediaRef(r.ref) : ""}${r.deduplicated ? "\n(already stored: no space charged)" : ""}`,
        );
      }),
    );

  program
    .command("download")
    .description("download an object, verifying its size and SHA-256")
    .argument("<ref-id>", "object id")
    .option("-o, --out <file>", "where to write it; - for stdout (default: the object's file name)")
    .option("--resume", "continue an interrupted download of the same file")
    .action((refId: string, opts: { out?: string; resume?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const out = opts.out ?? (await defaultFileName(ctx.clients.storage.stat({ refId }), refId));
        let progress: Progress | undefined;
        const options = {
          retry: announcedRetry(ctx, () => `download of ${refId}`),
          onHeader: (ref: { sizeBytes: bigint }, offset: number) => (progress = byteProgress(ctx.io, `download ${refId}`, Number(ref.sizeBytes), offset)),
          onProgress: (written: number) => progress?.update(written),
        };
        const target =
          out === "-"
            ? { kind: "stream" as const, stream: ctx.io.stdout }
            : { kind: "file" as const, path: resolve(ctx.io.cwd, out), resume: opts.resume ?? false };
        let ref: MediaRef;
        try {
          ref = await download(ctx.clients.storage, refId, target, options);
        } catch (err) {
          progress?.stop();
          const kept = target.kind === "file" ? ((await stat(`${target.path}.part`).catch(() => undefined))?.size ?? 0) : 0;
          if (kept > 0 && isRetryable(err)) {
            await ctx.printer.note(
              `download stopped with ${formatBytes(kept)} kept in ${out}.part; to continue: ${continueCommand(ctx, [["--out", out], ["--resume"]], { "-o": "--out" })}`,
            );
          }
          throw err;
        } finally {
          progress?.stop();
        }
        if (out !== "-") await ctx.printer.note(`wrote ${formatBytes(ref.sizeBytes)} to ${out} (sha256 ${ref.sha256} verified)`);
      }),
    );

  program
    .command("stat")
    .description("print an object's MediaRef")
    .argument("<ref-id>", "object id")
    .action((refId: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { ref } = await ctx.clients.storage.stat({ refId });
        await ctx.printer.result(MediaRefSchema, ref ?? create(MediaRefSchema), describeMediaRef);
      }),
    );

  program
    .command("ls")
    .description("list the workspace's stored objects, newest first")
    .option("--type <prefix>", "only objects whose MIME type starts with this, e.g. image/")
    .option("--limit <n>", "most objects to show", "50")
    .option("--page-token <token>", "continue after the page that printed this token")
    .action((opts: { type?: string; limit: string; pageToken?: string }, command: Command) =>
      run(command, async (ctx) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliError("--limit must be an integer from 1 to 500", ExitCode.usage);
        const response = await ctx.clients.storage.listMedia({ pageSize: limit, mimeTypePrefix: opts.type ?? "", pageToken: opts.pageToken ?? "" });
        await ctx.printer.result(ListMediaResponseSchema, response, (r) => {
          const rows = r.refs.map((ref) => [
            ref.id,
            ref.mimeType,
            formatBytes(ref.sizeBytes),
            ref.createdAt ? timestampDate(ref.createdAt).toISOString() : "",
            ref.filename,
          ]);
          const list = rows.length === 0 ? "no objects" : columns(["ID", "TYPE", "SIZE", "CREATED", "NAME"], rows);
          return r.nextPageToken ? `${list}\n(more: run again with --page-token ${r.nextPageToken})` : list;
        });
      }),
    );

  program
    .command("rm")
    .description("delete an object reference and give its space back")
    .argument("<ref-id>", "object id")
    .action((refId: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const response = await ctx.clients.storage.delete({ refId });
        await ctx.printer.result(DeleteResponseSchema, response, (r) =>
          r.remainingHolders > 0
            ? `released ${refId}: still stored, held by ${r.remainingHolders} run or cache holder(s)`
            : `deleted ${refId} (freed ${formatBytes(r.freedBytes)})`,
        );
      }),
    );

  program
    .command("usage")
    .description("show storage used against the user and workspace quotas, and what holds it")
    .action((_opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const usage = await ctx.clients.storage.getUsage({});
        await ctx.printer.result(GetUsageResponseSchema, usage, (u) =>
          table([
            ["user", `${formatBytes(u.userUsedBytes)} of ${formatBytes(u.userLimitBytes)} (${percent(u.userUsedBytes, u.userLimitBytes)})`],
            [
              "workspace",
              `${formatBytes(u.workspaceUsedBytes)} of ${formatBytes(u.workspaceLimitBytes)} (${percent(u.workspaceUsedBytes, u.workspaceLimitBytes)})`,
            ],
            ["objects", String(u.workspaceObjectCount)],
            ...u.byHolder.map((held): [string, string] => [
              `held by ${HOLDER_LABELS[held.kind]}`,
              `${formatBytes(held.bytes)} in ${held.objectCount} object(s), ${held.holderCount} holder(s)`,
            ]),
          ]),
        );
      }),
    );
}

const HOLDER_LABELS: Readonly<Record<HolderKind, string>> = {
  [HolderKind.UNSPECIFIED]: "others",
  [HolderKind.UPLOAD]: "uploads",
  [HolderKind.RUN]: "run outputs",
  [HolderKind.CACHE]: "cache entries",
};

function percent(used: bigint, limit: bigint): string {
  return limit === 0n ? "no limit" : `${((Number(used) / Number(limit)) * 100).toFixed(1)}%`;
}

// The uploader's file name, stripped of any directory part so a stored name cannot write outside cwd.
async function defaultFileName(stat: Promise<{ ref?: { filename: string } | undefined }>, refId: string): Promise<string> {
  const name = basename((await stat).ref?.filename ?? "");
  return name === "" || name === "." || name === ".." ? refId : name;
}
