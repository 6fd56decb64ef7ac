/**
 * POST /v1/chat/completions and POST /v1/completions: each request becomes
 * one infer step on `infer:<model>`. Without `stream` the reply is the
 * finished completion; with it, server-sent `data:` chunks as the tokens
 * come, a last chunk with the finish reason (and, with
 * stream_options.include_usage, one with the usage), then `data: [DONE]`.
 * The two differ only in their objects' shapes (`TextShape`).
 */
import type { ServerResponse } from "node:http";
import type { StepEnd } from "../../../gen/stepq/v1/output_pb.js";
import type { Step, Usage } from "../../../gen/stepq/v1/step_pb.js";
import type { HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { readJsonObject } from "../read-json-body.js";
import { startSse } from "../sse-response.js";
import { writeOpenAiError } from "./openai-error.js";
import { finishReason, mustHaveSucceeded, submitOpenAiStep } from "./openai-step.js";
import { chatRequest, completionRequest, type TextRequest } from "./text-request.js";

interface TextShape {
  path: RegExp;
  api: string;
  parse(body: Record<string, unknown>): TextRequest;
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The choice of a finished completion. */
  choice(text: string, finish: string): object;
  /** The choice of a chunk: `text` undefined for the first chunk, `finish` for the last. */
  chunkChoice(text: string | undefined, finish: string | null): object;
}

const CHAT: TextShape = {
  path: /^\/v1\/chat\/completions$/,
  api: "openai.chat.completions",
  parse: chatRequest,
  idPrefix: "chatcmpl-",
  object: "chat.completion",
  chunkObject: "chat.completion.chunk",
  choice: (text, finish) => ({ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: finish }),
  chunkChoice: (text, finish) => ({
    index: 0,
    delta: text === undefined ? (finish ? {} : { role: "assistant", content: "" }) : { content: text },
    logprobs: null,
    finish_reason: finish,
  }),
};

const COMPLETION: TextShape = {
  path: /^\/v1\/completions$/,
  api: "openai.completions",
  parse: completionRequest,
  idPrefix: "cmpl-",
  object: "text_completion",
  chunkObject: "text_completion",
  choice: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
  chunkChoice: (text, finish) => ({ index: 0, text: text ?? "", logprobs: null, finish_reason: finish }),
};

function usageOf(u: Usage | undefined): object {
  const prompt = u?.promptTokens ?? 0;
  const completion = u?.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

async function answer(call: RouteCall, internal: InternalTransport, shape: TextShape, maxBytes: number): Promise<void> {
  const req = shape.parse(await readJsonObject(call.req, maxBytes));
  const { step, pieces, finished } = await submitOpenAiStep(call, internal, {
    route: `infer:${req.model}`,
    model: req.model,
    operation: { kind: { case: "infer", value: req.infer } },
    api: shape.api,
    names: { max_tokens: "max_tokens", messages: "messages", prompt: "prompt" },
  });
  const head = { id: shape.idPrefix + step.id, created: Math.floor(Date.now() / 1000), model: req.model };
  const res = call.res as ServerResponse;
  res.setHeader("x-stepq-step-id", step.id);
  if (!req.stream) {
    const done: Step = await finished();
    mustHaveSucceeded(done);
    const result = done.result;
    const body = JSON.stringify({
      ...head,
      object: shape.object,
      choices: [shape.choice(result?.text ?? "", finishReason(result?.stopReason ?? 0))],
      usage: usageOf(result?.usage),
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const it = pieces();
  const sse = startSse(call.res, 0);
  const chunk = (text: string | undefined, finish: string | null) =>
    sse.data(JSON.stringify({ ...head, object: shape.chunkObject, choices: [shape.chunkChoice(text, finish)] }));
  try {
    if (shape === CHAT) await chunk(undefined, null);
    let next = await it.next();
    while (!next.done) {
      await chunk(next.value, null);
      next = await it.next();
    }
    const end: StepEnd = next.value;
    mustHaveSucceeded(end);
    await chunk(undefined, finishReason(end.stopReason));
    if (req.includeUsage) await sse.data(JSON.stringify({ ...head, object: shape.chunkObject, choices: [], usage: usageOf(end.usage) }));
    await sse.data("[DONE]");
  } catch (e) {
    // Headers are sent: the error goes in the stream, in OpenAI's shape, as its streams carry them.
    const message = e instanceof Error ? e.message.replace(/^\[\w+\] /, "") : String(e);
    await sse.data(JSON.stringify({ error: { message, type: "server_error", param: null, code: null } }));
  } finally {
    sse.end();
  }
}

/** The two routes; request bodies are bounded by `maxBytes` (--max-request-bytes). */
export function textRoutes(internal: InternalTransport, maxBytes: number): HttpRoute[] {
  return [CHAT, COMPLETION].map((shape) => ({
    method: "POST" as const,
    path: shape.path,
    fail: writeOpenAiError,
    handle: (call: RouteCall) => answer(call, internal, shape, maxBytes),
  }));
}
