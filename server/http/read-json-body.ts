/**
 * Reads a JSON request body for the HTTP routes that take one, bounded by
 * --max-request-bytes as it arrives (a body that declares a larger size is
 * refused before this, by server/refusals.ts). A body that is not JSON, or
 * not a JSON object, is INVALID_ARGUMENT saying so.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { HttpRequest } from "./http-api.js";

export async function readJsonObject(req: HttpRequest, maxBytes: number): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new ConnectError(`send the body as JSON with content-type: application/json (got ${type})`, Code.InvalidArgument);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new ConnectError(`the body is over ${maxBytes} bytes (--max-request-bytes); send less`, Code.ResourceExhausted);
    }
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw new ConnectError(`the body is not JSON: ${(e as Error).message}`, Code.InvalidArgument);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConnectError("the body must be a JSON object", Code.InvalidArgument);
  }
  return value as Record<string, unknown>;
}
