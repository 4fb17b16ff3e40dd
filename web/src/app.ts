import { createApi, type Api } from "./api.js";
import { initAgentsSection } from "./agents-section.js";
import { byId, describeError, showStatus } from "./dom.js";
import { initFlowSection } from "./flow-section.js";
import { initMediaSection } from "./media-section.js";
import { initRunSection } from "./run-section.js";
import { session } from "./session.js";
import { initStreamsSection } from "./streams-section.js";

let api: Api | undefined;
let live: AbortController | undefined;

const currentApi = (): Api => {
  if (!api) throw new Error("sign in first");
  return api;
};

const agents = initAgentsSection(currentApi);
const runs = initRunSection(currentApi);
const streams = initStreamsSection(currentApi);
initMediaSection(currentApi);
initFlowSection(currentApi, runs);

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
  streams.start(live.signal);
  await agents.refresh();
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
  runs.clear();
  session.clear();
  api = undefined;
  showSignedIn(false);
  showStatus("Signed out.");
});

const saved = session.key();
if (saved) void signIn(saved);
