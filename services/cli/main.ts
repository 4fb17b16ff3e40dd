import { Command, InvalidArgumentError } from "commander";
import { startEmbedded } from "../mesh/embedded.js";
import { startGateway, startServiceProcess, type MeshProcess } from "../mesh/distributed.js";
import { listenFailureMessage } from "../mesh/listen-failure.js";
import { serviceProcesses, type ServiceProcess } from "../mesh/topology.js";
import { installSignalHandlers } from "../server/server.js";
import { ConfigError } from "../shared/env.js";
import { webhookConfigFromEnv } from "../webhook/config.js";
import { mutatePath, type RunningWebhook, startWebhook } from "../webhook/server.js";

const targets = ["embedded", "gateway", ...serviceProcesses, "webhook"] as const;
type Target = (typeof targets)[number];

function parseTarget(value: string): Target {
  if (!(targets as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${targets.join(", ")}`);
  }
  return value as Target;
}

async function serve(target: Target): Promise<void> {
  if (target === "embedded") {
    const mesh = await startEmbedded();
    installSignalHandlers(mesh.server, () => mesh.close());
    console.log(`MentatLab Mesh is serving gRPC, gRPC-web and Connect on ${mesh.url}`);
    if (mesh.adminKey) {
      console.log(`No API keys configured: a development admin key was created (kept in the data dir).`);
      console.log(`  Authorization: Bearer ${mesh.adminKey}`);
      console.log(`  try: npx buf curl --http2-prior-knowledge -H "Authorization: Bearer ${mesh.adminKey}" ${mesh.url}/mentatlab.v1.StorageService/GetUsage`);
    } else {
      console.log("Authenticate with `Authorization: Bearer <key>` using a key from MENTATLAB_API_KEYS.");
    }
    return;
  }
  if (target === "webhook") {
    let webhook: RunningWebhook;
    try {
      webhook = await startWebhook(webhookConfigFromEnv(process.env));
    } catch (error) {
      // A setting to fix (a variable, the certificate's files, the port): one line naming it.
      console.error(`mentatlab: ${listenFailureMessage(error, "MENTATLAB_WEBHOOK_PORT") ?? (error instanceof Error ? error.message : String(error))}`);
      process.exitCode = 1;
      return;
    }
    installSignalHandlers(webhook, () => webhook.close());
    console.log(`mentatlab sidecar injection webhook serving AdmissionReviews on ${webhook.url}${mutatePath}`);
    return;
  }
  const process_: MeshProcess = target === "gateway" ? await startGateway(process.env) : await startServiceProcess(target as ServiceProcess, process.env);
  installSignalHandlers(process_.server, () => process_.close());
  console.log(`mentatlab ${target} serving on ${process_.url}`);
}

const program = new Command("mentatlab").description("MentatLab Mesh: run multimodal agent flows");
program
  .command("serve")
  .description("run every service in one process (embedded, the default) or one part of the distributed mesh")
  .argument("[target]", `one of ${targets.join(", ")}`, parseTarget, "embedded")
  .action(serve);

// A bad setting (a variable's value, a port it cannot take) is the operator's to fix: one line naming
// it and exit code 1. Anything else is a bug and keeps its stack trace.
function startupFailureMessage(error: unknown): string | undefined {
  return listenFailureMessage(error) ?? (error instanceof ConfigError ? error.message : undefined);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const failure = startupFailureMessage(error);
  if (!failure) throw error;
  console.error(`mentatlab: ${failure}`);
  process.exitCode = 1;
}
