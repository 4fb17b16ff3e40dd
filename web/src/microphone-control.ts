import { byId, showError } from "./dom.js";
import { type MicrophonePublisher, publishMicrophone } from "./microphone-publisher.js";

/** The streams page's "Publish microphone" button: starts a live audio stream, and ends it on the second press. */
export function initMicrophoneControl(apiKey: () => string | undefined): void {
  const button = byId("publish-microphone", HTMLButtonElement);
  const status = byId("microphone-status", HTMLElement);
  let publishing: MicrophonePublisher | undefined;
  button.addEventListener("click", () => {
    button.disabled = true;
    const step = publishing ? stop(publishing) : start();
    step.catch(showError).finally(() => {
      button.disabled = false;
      button.textContent = publishing ? "Stop publishing" : "Publish microphone";
    });
  });

  async function start(): Promise<void> {
    const key = apiKey();
    if (!key) throw new Error("sign in first");
    publishing = await publishMicrophone({ apiKey: key, onStatus: (message) => (status.textContent = message) });
    button.dataset.stream = publishing.streamId;
  }

  async function stop(current: MicrophonePublisher): Promise<void> {
    publishing = undefined;
    await current.stop();
  }
}
