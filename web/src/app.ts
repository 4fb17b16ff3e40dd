import { createApi, type Api } from "./api.js";
import { initAgentsSection } from "./agents-section.js";
import { byId, describeError, showStatus } from "./dom.js";
import { initFlowPage } from "./flow-page.js";
import { MediaLibrary } from "./media-library.js";
import { initMicrophoneControl } from "./microphone-control.js";
import { initMediaPage } from "./media-page.js";
import { startRouter } from "./router.js";
import { initRunPage } from "./run-page.js";
import { initRunsPage } from "./runs-page.js";
import { session } from "./session.js";
import { initStreamsSection } from "./streams-section.js";

let api: Api | undefined;
let live: AbortController | undefined;

const currentApi = (): Api => {
  if (!api) throw new Error("sign in first");
  return api;
};

const library = new MediaLibrary();
const agents = initAgentsSection(currentApi);
const streams = initStreamsSection(currentApi);
initMicrophoneControl(() => session.key());
const runs = initRunsPage(currentApi);
const run = initRunPage(currentApi);
const flows = initFlowPage(currentApi, library);
const media = initMediaPage(currentApi, library);
const router = startRouter(
  {
    runs: { show: () => runs.show(), hide: () => runs.hide() },
    run: { show: (runId) => run.open(runId), hide: () => run.close() },
    flows: { show: () => flows.show() },
    media: { show: () => media.show() },
    agents: { show: () => void agents.refresh() },
    streams: { show: (streamId) => streamId !== "" && streams.follow(streamId) },
  },
  "runs",
  () => api !== undefined,
);

/** Checks the key with a call every role may make, then shows the app. */
async function signIn(key: string): Promise<void> {
  const candidate = createApi(key);
  try {
    await candidate.registry.listAgents({ pageSize: 1 });
  } catch (err) {
    showStatus(`Could not sign in: ${describeError(err)}`, "error");
    return;
  }
  session.save(key);
  api = candidate;
  showSignedIn(true);
  showStatus("Signed in.");
  live?.abort();
  live = new AbortController();
  // The stream list follows announcements from sign-in on, so streams that end meanwhile stay listed.
  streams.start(live.signal);
  router.route();
}

function showSignedIn(signedIn: boolean): void {
  byId("sign-in", HTMLElement).hidden = signedIn;
  byId("app", HTMLDivElement).hidden = !signedIn;
  byId("nav", HTMLElement).hidden = !signedIn;
  byId("sign-out", HTMLButtonElement).hidden = !signedIn;
}

byId("sign-in-form", HTMLFormElement).addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId("api-key", HTMLInputElement);
  void signIn(input.value.trim()).then(() => (input.value = ""));
});

byId("sign-out", HTMLButtonElement).addEventListener("click", () => {
  live?.abort();
  runs.hide();
  run.close();
  session.clear();
  api = undefined;
  showSignedIn(false);
  showStatus("Signed out.");
});

const saved = session.key();
if (saved) void signIn(saved);
