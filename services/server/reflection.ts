import { create, toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The request shape shared by reflection v1 and v1alpha (the two differ only in package name). */
interface ReflectionRequest {
  readonly messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/** A response of either version, before it is given its schema. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** What reflection can tell about the served services: their files, symbols and extensions. */
class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  readonly serviceNames: readonly string[];

  constructor(services: readonly DescService[]) {
    this.serviceNames = [...new Set(services.map((service) => service.typeName))].sort();
    for (const service of services) this.addFile(service.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dependency of file.dependencies) this.addFile(dependency);
    for (const message of file.messages) this.addMessage(file, message);
    for (const descEnum of file.enums) this.symbols.set(descEnum.typeName, file);
    for (const extension of file.extensions) this.addExtension(file, extension.typeName, extension.extendee.typeName, extension.number);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
  }

  private addMessage(file: DescFile, message: DescMessage): void {
    this.symbols.set(message.typeName, file);
    for (const field of message.fields) this.symbols.set(`${message.typeName}.${field.name}`, file);
    for (const nested of message.nestedMessages) this.addMessage(file, nested);
    for (const nested of message.nestedEnums) this.symbols.set(nested.typeName, file);
    for (const extension of message.nestedExtensions) {
      this.addExtension(file, extension.typeName, extension.extendee.typeName, extension.number);
    }
  }

  private addExtension(file: DescFile, typeName: string, extendee: string, number: number): void {
    this.symbols.set(typeName, file);
    const byNumber = this.extensions.get(extendee) ?? new Map<number, DescFile>();
    byNumber.set(number, file);
    this.extensions.set(extendee, byNumber);
  }

  /** The file and everything it imports, transitively, as serialized FileDescriptorProtos. */
  private withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (current: DescFile) => {
      if (seen.has(current.proto.name)) return;
      seen.add(current.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, current.proto));
      for (const dependency of current.dependencies) visit(dependency);
    };
    visit(file);
    return out;
  }

  answer(request: ReflectionRequest): ReflectionAnswer {
    const notFound = (what: string): ReflectionAnswer => ({
      case: "errorResponse",
      value: { errorCode: Code.NotFound, errorMessage: `${what} is not known to this server` },
    });
    const files = (file: DescFile | undefined, what: string): ReflectionAnswer =>
      file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: this.withDependencies(file) } } : notFound(what);
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return files(this.files.get(messageRequest.value), `file "${messageRequest.value}"`);
      case "fileContainingSymbol":
        return files(this.symbols.get(messageRequest.value), `symbol "${messageRequest.value}"`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = messageRequest.value;
        return files(this.extensions.get(containingType)?.get(extensionNumber), `extension ${extensionNumber} of "${containingType}"`);
      }
      case "allExtensionNumbersOfType": {
        const byNumber = this.extensions.get(messageRequest.value);
        if (!byNumber && !this.symbols.has(messageRequest.value)) return notFound(`type "${messageRequest.value}"`);
        const numbers = [...(byNumber?.keys() ?? [])].sort((a, b) => a - b);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: messageRequest.value, extensionNumber: numbers } };
      }
      case undefined:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "set one of the message_request fields" } };
    }
  }
}

/** The reflection services, for callers that must know which services stay open (no auth). */
export const reflectionServices: readonly DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

/**
 * Mounts gRPC server reflection v1 and v1alpha describing `services` (plus reflection itself), so
 * `buf curl` and `grpcurl` work with no schema file.
 */
export function mountReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const index = new DescriptorIndex([...services, ...reflectionServices]);
  router.service(
    v1.ServerReflection,
    answerEach((request) =>
      create(v1.ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request, messageResponse: index.answer(request) }),
    ),
  );
  router.service(
    v1alpha.ServerReflection,
    answerEach((request) =>
      create(v1alpha.ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request, messageResponse: index.answer(request) }),
    ),
  );
}

/** A ServerReflectionInfo implementation answering each request of the stream in turn. */
function answerEach<Request, Response>(answer: (request: Request) => Response) {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<Request>) {
      for await (const request of requests) yield answer(request);
    },
  };
}
