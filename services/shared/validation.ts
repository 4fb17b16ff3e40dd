import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { createValidator, violationsToProto } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

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

/**
 * Checks every request message against the protovalidate rules written in the protos, once, at the
 * edge: a bad request ends with INVALID_ARGUMENT listing the broken rules before a handler runs.
 * Streamed requests are checked message by message as they arrive.
 */
export function validationInterceptor(): Interceptor {
  const validator = createValidator();
  const check = <D extends DescMessage>(schema: D, message: MessageShape<D>): void => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "error") throw new ConnectError(result.error.message, Code.Internal);
    const { message: text, listed } = listViolations(`invalid ${schema.name}: `, result.violations.map((v) => v.toString()));
    // The details carry buf.validate.Violations so generated clients can show each field's problem;
    // the listed ones only, as they share the trailer with the message.
    const [violations, violationsSchema] = violationsToProto(result.violations.slice(0, listed));
    throw new ConnectError(
      text,
      Code.InvalidArgument,
      undefined,
      [{ desc: violationsSchema, value: violations }],
    );
  };
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const messages = req.message;
    async function* checked() {
      for await (const message of messages) {
        check(req.method.input, message);
        yield message;
      }
    }
    return next({ ...req, message: checked() });
  };
}
