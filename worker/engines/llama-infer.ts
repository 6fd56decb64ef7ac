/**
 * InferOperation on a loaded llama.cpp model: renders the prompt (raw, or a
 * chat transcript through the model's chat template), then samples token by
 * token on a context of its own, streaming each token as it comes. Driving
 * `LlamaContextSequence.evaluate` directly, rather than LlamaCompletion or
 * LlamaChatSession, is what gives exactly one streamed piece per generated
 * token, stop strings that never reach the client, and a check of the abort
 * signal between any two tokens.
 */
import { randomInt } from "node:crypto";
import type { ChatHistoryItem, ChatWrapper, LlamaModel, Token } from "node-llama-cpp";
import { ChatRole, type InferOperation } from "../../gen/stepq/v1/operation_pb.js";
import { NarrationLevel } from "../../gen/stepq/v1/output_pb.js";
import { StopReason } from "../../gen/stepq/v1/step_pb.js";
import { InvalidOperationError } from "../step-failure.js";
import type { EngineContext, EngineResult, StopSignal } from "./engine.js";
import { createTokenText } from "./llama-text.js";

/** A model loaded once per worker and shared by the steps that use it. */
export interface LoadedModel {
  readonly name: string;
  readonly path: string;
  readonly model: LlamaModel;
  /** Renders chat transcripts; resolved from the GGUF's template (Llama 2 style when it has none). */
  readonly chatWrapper: ChatWrapper;
}

/** Per-engine settings an inference needs. */
export interface InferSettings {
  threads: number;
  contextSize?: number;
  /** Unix ms when the attempt started (time to first token counts from here). */
  startedAt: number;
}

/** max_tokens when the operation leaves it at 0 (the proto's documented server default). */
export const DEFAULT_MAX_TOKENS = 256;
/** Sampling temperature when the operation leaves it unset (llama.cpp's default). */
export const DEFAULT_TEMPERATURE = 0.8;
/** Context size when the engine options leave it unset: enough for chat, small enough for RAM. */
const DEFAULT_CONTEXT_MAX = 4096;

interface Prompt {
  tokens: Token[];
  /** Text that ends the turn in the chat template (END_OF_TEXT, not STOP_SEQUENCE). */
  templateStops: string[];
  /** Special tokens that end the turn besides the model's end-of-generation tokens. */
  stopTokens: Set<Token>;
}

function rawPrompt(m: LoadedModel, prompt: string): Prompt {
  const bos = m.model.tokens.shouldPrependBosToken ? m.model.tokens.bos : null;
  const tokens = m.model.tokenize(prompt);
  return { tokens: bos === null ? tokens : [bos, ...tokens], templateStops: [], stopTokens: new Set() };
}

function chatPrompt(m: LoadedModel, op: InferOperation): Prompt {
  const history: ChatHistoryItem[] = op.messages.map((msg, i) => {
    switch (msg.role) {
      case ChatRole.SYSTEM:
        return { type: "system", text: msg.content };
      case ChatRole.USER:
        return { type: "user", text: msg.content };
      case ChatRole.ASSISTANT:
        return { type: "model", response: [msg.content] };
      default:
        throw new InvalidOperationError(`messages[${i}] has no role`);
    }
  });
  // A trailing assistant turn is continued; otherwise the model starts a new one.
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  const state = m.chatWrapper.generateContextState({ chatHistory: history });
  const templateStops: string[] = [];
  const stopTokens = new Set<Token>();
  for (const trigger of state.stopGenerationTriggers) {
    if (trigger.values.every((v) => typeof v === "string")) templateStops.push(trigger.values.join(""));
    else {
      const tokens = trigger.tokenize(m.model.tokenizer);
      if (tokens.length === 1) stopTokens.add(tokens[0] as Token);
    }
  }
  return { tokens: state.contextText.tokenize(m.model.tokenizer), templateStops, stopTokens };
}

/**
 * The error an aborted step ends with. The runtime ignores the outcome of a
 * cancelled, lease-lost or shut-down attempt and records a timeout as such,
 * so this only has to be clear in logs.
 */
export function stoppedError(signal: AbortSignal, tokens: number): Error {
  const why = (signal.reason as StopSignal | undefined)?.kind ?? "aborted";
  return new Error(`llama: stopped after ${tokens} tokens (${why})`);
}

/** Runs one InferOperation; throws when `ctx.signal` aborts (the runtime then ignores the attempt's result). */
export async function runInfer(m: LoadedModel, op: InferOperation, ctx: EngineContext, s: InferSettings): Promise<EngineResult> {
  if ((op.prompt === "") === (op.messages.length === 0)) {
    throw new InvalidOperationError("infer: set exactly one of prompt and messages");
  }
  const prompt = op.prompt !== "" ? rawPrompt(m, op.prompt) : chatPrompt(m, op);
  const context = await m.model.createContext({ contextSize: s.contextSize ?? { max: DEFAULT_CONTEXT_MAX }, threads: s.threads });
  try {
    const room = context.contextSize - prompt.tokens.length;
    if (room < 1) {
      throw new InvalidOperationError(
        `prompt is ${prompt.tokens.length} tokens; model ${m.name} runs with a context of ${context.contextSize} tokens`,
      );
    }
    const requested = op.maxTokens > 0 ? op.maxTokens : DEFAULT_MAX_TOKENS;
    const limit = Math.min(requested, room);
    if (limit < requested) {
      ctx.narrate(`max_tokens ${requested} capped to ${limit}: the prompt leaves room for no more in a ${context.contextSize}-token context`, NarrationLevel.WARN);
    }
    const userStops = new Set(op.stop.filter((x) => x !== ""));
    const text = createTokenText((tokens, before) => m.model.detokenize(tokens, false, before), [...userStops, ...prompt.templateStops]);
    const sequence = context.getSequence();
    const pieces: string[] = [];
    let stopReason = StopReason.MAX_TOKENS;
    let firstTokenAt: number | undefined;
    const genStart = Date.now();
    if (ctx.signal.aborted) throw stoppedError(ctx.signal, 0);
    const tokens = sequence.evaluate(prompt.tokens, {
      temperature: op.temperature ?? DEFAULT_TEMPERATURE,
      topK: op.topK ?? 0, // <= 0 disables the cut (node-llama-cpp would default to 40)
      topP: op.topP ?? 1,
      minP: 0,
      seed: op.seed ?? randomInt(2 ** 32),
      // The end-of-generation token is sampled like any other: it is counted
      // and streamed (as whatever text was still held back), as llama-server counts it.
      yieldEogToken: true,
    });
    for await (const token of tokens) {
      firstTokenAt ??= Date.now();
      const end = m.model.isEogToken(token) || prompt.stopTokens.has(token);
      const piece = end ? { text: text.flush() } : text.push(token);
      const last = end || piece.stop !== undefined || pieces.length + 1 >= limit;
      const out = last && !end && piece.stop === undefined ? piece.text + text.flush() : piece.text;
      ctx.token(out);
      pieces.push(out);
      if (end) stopReason = StopReason.END_OF_TEXT;
      else if (piece.stop !== undefined) stopReason = userStops.has(piece.stop) ? StopReason.STOP_SEQUENCE : StopReason.END_OF_TEXT;
      if (last || ctx.signal.aborted) break;
      if (pieces.length % 16 === 0) ctx.progress(pieces.length / limit, `${pieces.length}/${limit} tokens`);
    }
    if (ctx.signal.aborted) throw stoppedError(ctx.signal, pieces.length);
    const ms = Date.now() - genStart;
    const rate = ms > 0 ? Math.round((pieces.length * 1000) / ms) : pieces.length;
    ctx.narrate(`generated ${pieces.length} tokens in ${ms} ms (${rate} tok/s)`);
    return {
      text: pieces.join(""),
      promptTokens: prompt.tokens.length,
      completionTokens: pieces.length,
      timeToFirstTokenMs: firstTokenAt === undefined ? undefined : firstTokenAt - s.startedAt,
      stopReason,
    };
  } finally {
    await context.dispose(); // frees this step's KV cache; the model stays loaded
  }
}
