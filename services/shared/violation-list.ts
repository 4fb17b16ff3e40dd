/** At most this many violations are spelled out (and sent as details); the rest are counted. */
export const MAX_LISTED_VIOLATIONS = 20;
/**
 * Bound on the message text. The gRPC status travels in an HTTP/2 trailer, percent-encoded (up to
 * 3 bytes a character): an unbounded list overflowed the frame (FRAME_SIZE_ERROR) and the client saw
 * no status at all.
 */
export const MAX_VIOLATION_MESSAGE_CHARS = 2048;
const MAX_VIOLATION_CHARS = 300;

/**
 * `prefix` then the first violations, `; `-separated, then "and K more": at most
 * MAX_LISTED_VIOLATIONS of them and MAX_VIOLATION_MESSAGE_CHARS in all. Also says how many were listed.
 */
export function listViolations(prefix: string, violations: readonly string[]): { message: string; listed: number } {
  const clip = (text: string) => (text.length > MAX_VIOLATION_CHARS ? `${text.slice(0, MAX_VIOLATION_CHARS - 1)}…` : text);
  const moreNote = (more: number) => `; and ${more} more`;
  let message = prefix;
  let listed = 0;
  for (const violation of violations) {
    const next = `${listed === 0 ? "" : "; "}${clip(violation)}`;
    const remaining = violations.length - listed - 1;
    const reserve = remaining > 0 ? moreNote(remaining).length : 0;
    if (listed === MAX_LISTED_VIOLATIONS || message.length + next.length + reserve > MAX_VIOLATION_MESSAGE_CHARS) break;
    message += next;
    listed += 1;
  }
  if (listed < violations.length) message += moreNote(violations.length - listed);
  return { message, listed };
}
