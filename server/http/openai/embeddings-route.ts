/**
 * POST /v1/embeddings: one embed step on `embed:<model>` for the request's
 * input (a string or an array of strings; token arrays are refused), and
 * OpenAI's list of embeddings when it ends. `encoding_format: "base64"`
 * (what OpenAI's SDKs ask for by default) gives each vector as the base64 of
 * its little-endian float32 values; "float" as numbers.
 */
import type { ServerResponse } from "node:http";
import type { HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { readJsonObject } from "../read-json-body.js";
import { OpenAiFieldError, writeOpenAiError } from "./openai-error.js";
import { mustHaveSucceeded, submitOpenAiStep } from "./openai-step.js";

function inputsOf(body: Record<string, unknown>): string[] {
  const v = body.input;
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string")) return v as string[];
  throw new OpenAiFieldError("input", "must be a string or a non-empty array of strings (token arrays are not supported)");
}

function base64Of(values: number[]): string {
  const floats = Float32Array.from(values);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

async function answer(call: RouteCall, internal: InternalTransport, maxBytes: number): Promise<void> {
  const body = await readJsonObject(call.req, maxBytes);
  if (typeof body.model !== "string" || body.model === "") throw new OpenAiFieldError("model", "is required: the name of an embedding model a worker serves (GET /v1/models)");
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") throw new OpenAiFieldError("encoding_format", `must be "float" or "base64" (got ${JSON.stringify(format)})`);
  if (body.dimensions !== undefined && body.dimensions !== null) throw new OpenAiFieldError("dimensions", "is not supported: the model's vectors have its own size");
  const model = body.model;
  const { step, finished } = await submitOpenAiStep(call, internal, {
    route: `embed:${model}`,
    model,
    operation: { kind: { case: "embed", value: { model, inputs: inputsOf(body) } } },
    api: "openai.embeddings",
    names: { inputs: "input" },
  });
  const done = await finished();
  mustHaveSucceeded(done);
  const vectors = done.result?.embeddings ?? [];
  const tokens = done.result?.usage?.promptTokens ?? 0;
  const reply = JSON.stringify({
    object: "list",
    data: vectors.map((v, index) => ({ object: "embedding", index, embedding: format === "base64" ? base64Of(v.values) : v.values })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
  (call.res as ServerResponse).writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply), "x-stepq-step-id": step.id });
  call.res.end(reply);
}

export function embeddingsRoute(internal: InternalTransport, maxBytes: number): HttpRoute {
  return { method: "POST", path: /^\/v1\/embeddings$/, fail: writeOpenAiError, handle: (call) => answer(call, internal, maxBytes) };
}
