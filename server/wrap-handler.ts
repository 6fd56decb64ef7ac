/**
 * Connect's universal handlers carry their descriptor (service, method,
 * path, content types, HTTP methods) as properties the router and the Node
 * adapter read. The wrappers around them (request budget, refusal bodies,
 * request-error explanations) each change only the call: this keeps the
 * rest in one place.
 */
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

/** A handler that answers with `call` and describes itself as `handler` does. */
export function wrapHandler(handler: UniversalHandler, call: (req: UniversalServerRequest) => Promise<UniversalServerResponse>): UniversalHandler {
  return Object.assign(call, {
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    supportedContentType: handler.supportedContentType,
    protocolNames: handler.protocolNames,
    allowedMethods: handler.allowedMethods,
  });
}
