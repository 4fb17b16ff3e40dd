import { defaultResumePolicy, type ResumePolicy } from "../../services/shared/resume.js";
import { describeError, showStatus } from "./dom.js";

/** The shared resume policy, telling the user in the status line why the page is waiting. */
export function announcedResume(what: () => string): ResumePolicy {
  return {
    ...defaultResumePolicy,
    onRetry: (err, delayMs) => showStatus(`Connection to ${what()} lost (${describeError(err)}); retrying in ${(delayMs / 1000).toFixed(1)} s…`),
  };
}
