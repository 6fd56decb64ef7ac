/**
 * Reads a JSON request body for the HTTP routes that take one, bounded by
 * --max-request-bytes: one that declares a larger size is refused before it
 * is read, one that grows past it as it arrives is refused then, both 413
 * in the route's error shape. A body that is not JSON, or not a JSON object,
 * is INVALID_ARGUMENT saying so.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { type HttpRequest, HttpStatusError } from "./http-api.js";

export async function readJsonObject(req: HttpRequest, maxBytes: number): Promise<Record<string, unknown>> {
  const tooLarge = (size: string) =>
    new HttpStatusError(`the body is ${size} bytes, over this server's limit of ${maxBytes} (--max-request-bytes); send less`, Code.ResourceExhausted, 413);
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isSafeInteger(declared) && declared > maxBytes) throw tooLarge(String(declared));
  const type = req.headers["content-type"];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new ConnectError(`send the body as JSON with content-type: application/json (got ${type})`, Code.InvalidArgument);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(`over ${size - chunk.length}`);
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
