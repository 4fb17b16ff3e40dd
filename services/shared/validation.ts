import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { createValidator, violationsToProto } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { listViolations } from "./violation-list.js";

/**
 * Throws INVALID_ARGUMENT listing the protovalidate rules `message` breaks. Shared by the interceptor
 * and the plain-HTTP and WebSocket views that build request messages themselves.
 */
export function messageValidator(): <D extends DescMessage>(schema: D, message: MessageShape<D>) => void {
  const validator = createValidator();
  return (schema, message) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "error") throw new ConnectError(result.error.message, Code.Internal);
    const { message: text, listed } = listViolations(
      `invalid ${schema.name}: `,
      result.violations.map((v) => v.toString()),
    );
    // The details carry buf.validate.Violations so generated clients can show each field's problem;
    // the listed ones only, as they share the trailer with the message.
    const [violations, violationsSchema] = violationsToProto(result.violations.slice(0, listed));
    throw new ConnectError(text, Code.InvalidArgument, undefined, [{ desc: violationsSchema, value: violations }]);
  };
}

/**
 * Checks every request message against the protovalidate rules written in the protos, once, at the
 * edge: a bad request ends with INVALID_ARGUMENT listing the broken rules before a handler runs.
 * Streamed requests are checked message by message as they arrive.
 */
export function validationInterceptor(): Interceptor {
  const check = messageValidator();
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
