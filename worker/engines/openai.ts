/**
 * The openai engine: runs infer and embed steps on an OpenAI-compatible
 * server (vLLM, llama.cpp's server, Ollama, TGI, OpenAI itself, or another
 * stepq fleet's /v1), with the official `openai` package as its client.
 *
 * - Routes: `infer:<name>` for each --upstream-model, `embed:<name>` for
 *   each --upstream-embed-model; `name=upstream-name` maps a route's model
 *   to the upstream's.
 * - Tokens stream as they arrive (chat completions for messages,
 *   completions for a prompt); narration says when it connected, when the
 *   first token came and how it finished; the usage is the upstream's.
 * - Cancelling the step aborts the upstream request.
 * - 429, 5xx, timeouts and dropped connections are tried again within the
 *   attempt (up to IN_ATTEMPT_TRIES, after Retry-After or a doubling pause),
 *   then fail the attempt as retryable (the queue's retry policy takes
 *   over); other 4xx fail the step for good with the upstream's message
 *   (upstream-errors.ts). A retry after tokens were sent is left to the
 *   queue, whose restart event tells followers.
 * - At most --upstream-concurrency requests at once (slot-limiter.ts).
 */
import OpenAI from "openai";
import { setTimeout as sleep } from "node:timers/promises";
import { ChatRole, type InferOperation } from "../../gen/stepq/v1/operation_pb.js";
import { StopReason } from "../../gen/stepq/v1/step_pb.js";
import type { ClaimedStep } from "../../queue/leases.js";
import { InvalidOperationError } from "../step-failure.js";
import type { Engine, EngineContext, EngineResult } from "./engine.js";
import { createSlotLimiter } from "./slot-limiter.js";
import { judgeUpstreamError } from "./upstream-errors.js";

export interface OpenAiEngineOptions {
  /** The upstream's base URL, e.g. http://gpu-1:8000/v1. */
  baseUrl: string;
  apiKey?: string;
  /** Text models: route name -> the upstream's model name. */
  models: ReadonlyMap<string, string>;
  /** Embedding models: route name -> the upstream's model name. */
  embedModels: ReadonlyMap<string, string>;
  /** Requests at once (default 8). */
  concurrency?: number;
  /** One request's timeout, ms (default 120 s). */
  timeoutMs?: number;
}

const IN_ATTEMPT_TRIES = 3;
const MAX_WAIT_MS = 30_000;

const ROLE_NAMES: Record<number, "system" | "user" | "assistant"> = {
  [ChatRole.SYSTEM]: "system",
  [ChatRole.USER]: "user",
  [ChatRole.ASSISTANT]: "assistant",
};

const finishOf = (reason: string | null | undefined) => (reason === "length" ? StopReason.MAX_TOKENS : StopReason.END_OF_TEXT);

/** Parses `name` or `name=upstream` items into a map. */
export function modelMap(items: readonly string[]): Map<string, string> {
  return new Map(items.map((i) => (i.includes("=") ? (i.split(/=(.*)/s).slice(0, 2) as [string, string]) : [i, i])));
}

export function createOpenAiEngine(options: OpenAiEngineOptions): Engine {
  const client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey || "none", maxRetries: 0, timeout: options.timeoutMs ?? 120_000 });
  const slots = createSlotLimiter(options.concurrency ?? 8);
  const host = new URL(options.baseUrl).host;

  /** Runs `request` in a slot, trying again within the attempt while the upstream says it may help and nothing was sent. */
  async function withRetries<T>(ctx: EngineContext, sent: () => boolean, request: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      if (!slots.free) ctx.narrate(`openai: waiting for one of ${options.concurrency ?? 8} connections to ${host}`);
      const give = await slots.take(ctx.signal);
      try {
        return await request();
      } catch (e) {
        ctx.signal.throwIfAborted();
        const verdict = judgeUpstreamError(e, host);
        if (!verdict.retry || sent() || tries >= IN_ATTEMPT_TRIES) throw verdict.failure;
        const wait = Math.min(MAX_WAIT_MS, verdict.retryAfterMs ?? 500 * 2 ** (tries - 1));
        ctx.narrate(`openai: ${verdict.failure.message}; trying again in ${wait} ms`);
        await sleep(wait, undefined, { signal: ctx.signal });
      } finally {
        give();
      }
    }
  }

  async function infer(op: InferOperation, ctx: EngineContext): Promise<EngineResult> {
    const model = options.models.get(op.model);
    if (!model) throw new InvalidOperationError(`openai engine: model "${op.model}" is not served here`);
    const started = Date.now();
    let first: number | undefined;
    let text = "";
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    let finish: string | null | undefined;
    const sampling = { max_tokens: op.maxTokens || undefined, temperature: op.temperature, top_p: op.topP, seed: op.seed, stop: op.stop.length > 0 ? op.stop : undefined };
    const onText = (t: string | null | undefined) => {
      if (!t) return;
      if (first === undefined) {
        first = Date.now();
        ctx.narrate(`openai: first token after ${first - started} ms`);
      }
      text += t;
      ctx.token(t);
    };
    await withRetries(ctx, () => text !== "", async () => {
      ctx.narrate(`openai: asking ${model} at ${host}`);
      if (op.messages.length > 0) {
        const messages = op.messages.map((m) => ({ role: ROLE_NAMES[m.role] ?? "user", content: m.content }));
        const stream = await client.chat.completions.create({ model, messages, ...sampling, stream: true, stream_options: { include_usage: true } }, { signal: ctx.signal });
        for await (const chunk of stream) {
          onText(chunk.choices[0]?.delta?.content);
          finish = chunk.choices[0]?.finish_reason ?? finish;
          if (chunk.usage) usage = chunk.usage;
        }
      } else {
        const stream = await client.completions.create({ model, prompt: op.prompt, ...sampling, stream: true, stream_options: { include_usage: true } }, { signal: ctx.signal });
        for await (const chunk of stream) {
          onText(chunk.choices[0]?.text);
          finish = chunk.choices[0]?.finish_reason ?? finish;
          if (chunk.usage) usage = chunk.usage;
        }
      }
    });
    ctx.narrate(`openai: finished (${finish ?? "stop"}) after ${Date.now() - started} ms`);
    return {
      text,
      promptTokens: usage?.prompt_tokens,
      completionTokens: usage?.completion_tokens,
      timeToFirstTokenMs: first === undefined ? undefined : first - started,
      stopReason: finishOf(finish),
    };
  }

  return {
    name: "openai",
    routes: () => [...[...options.models.keys()].map((m) => `infer:${m}`), ...[...options.embedModels.keys()].map((m) => `embed:${m}`)],
    async run(step: ClaimedStep, ctx: EngineContext): Promise<EngineResult> {
      const k = step.operation.kind;
      if (k.case === "infer") return infer(k.value, ctx);
      if (k.case === "embed") {
        const model = options.embedModels.get(k.value.model);
        if (!model) throw new InvalidOperationError(`openai engine: embedding model "${k.value.model}" is not served here`);
        const inputs = k.value.inputs;
        const res = await withRetries(ctx, () => false, () => client.embeddings.create({ model, input: inputs, encoding_format: "float" }, { signal: ctx.signal }));
        return { embeddings: res.data.map((d) => d.embedding as number[]), promptTokens: res.usage?.prompt_tokens };
      }
      throw new InvalidOperationError(`openai engine cannot run a ${k.case ?? "missing"} operation`);
    },
  };
}
