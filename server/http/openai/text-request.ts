/**
 * The bodies of POST /v1/chat/completions and /v1/completions, read into an
 * InferOperation. Types are checked here, naming the field as OpenAI does
 * (`messages[1].role`); ranges (max_tokens, temperature, top_p, stop) are
 * checked by SubmitStep like any step's, and its errors come back under the
 * same names (openai-step.ts). Fields stepq cannot honour (several choices,
 * tools, logprobs, JSON mode) are refused rather than ignored; fields that do
 * not change the text (user, metadata, store...) are ignored.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChatRole, type InferOperationSchema } from "../../../gen/stepq/v1/operation_pb.js";
import { OpenAiFieldError } from "./openai-error.js";

export interface TextRequest {
  model: string;
  infer: MessageInitShape<typeof InferOperationSchema>;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage. */
  includeUsage: boolean;
}

type Body = Record<string, unknown>;

const ROLES: Record<string, ChatRole> = {
  system: ChatRole.SYSTEM,
  developer: ChatRole.SYSTEM,
  user: ChatRole.USER,
  assistant: ChatRole.ASSISTANT,
};

/** Fields refused because honouring them is not possible, with what to do instead. */
const UNSUPPORTED: Record<string, string> = {
  tools: "tool calling is not supported by stepq's engines; send messages only",
  functions: "function calling is not supported by stepq's engines; send messages only",
  tool_choice: "tool calling is not supported by stepq's engines",
  logprobs: "log probabilities are not available from stepq's engines",
  top_logprobs: "log probabilities are not available from stepq's engines",
  echo: "echoing the prompt is not supported; leave echo out",
  best_of: "best_of is not supported; leave it out",
  suffix: "suffix is not supported; leave it out",
};

function refuseUnsupported(body: Body): void {
  for (const [field, why] of Object.entries(UNSUPPORTED)) {
    const v = body[field];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0)) throw new OpenAiFieldError(field, why);
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw new OpenAiFieldError("n", `only 1 choice per request is supported (got ${JSON.stringify(body.n)})`);
  const format = body.response_format as { type?: unknown } | undefined;
  if (format && format.type !== "text") throw new OpenAiFieldError("response_format", `only {"type": "text"} is supported (got ${JSON.stringify(format)})`);
}

function optionalNumber(body: Body, field: string, integer = false): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new OpenAiFieldError(field, `must be ${integer ? "an integer" : "a number"} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function stopOf(body: Body): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === "string")) return v as string[];
  throw new OpenAiFieldError("stop", `must be a string or an array of strings (got ${JSON.stringify(v)})`);
}

/** The model, sampling options and stream flags, common to both routes. */
function common(body: Body): Omit<TextRequest, "infer"> & { infer: MessageInitShape<typeof InferOperationSchema> } {
  refuseUnsupported(body);
  if (typeof body.model !== "string" || body.model === "") throw new OpenAiFieldError("model", "is required: the name of a model a worker serves (GET /v1/models)");
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") throw new OpenAiFieldError("stream", "must be true or false");
  const options = body.stream_options as { include_usage?: unknown } | undefined | null;
  const maxTokens = optionalNumber(body, "max_completion_tokens", true) ?? optionalNumber(body, "max_tokens", true);
  return {
    model: body.model,
    stream: body.stream === true,
    includeUsage: options?.include_usage === true,
    infer: {
      model: body.model,
      maxTokens: maxTokens ?? 0,
      temperature: optionalNumber(body, "temperature"),
      topP: optionalNumber(body, "top_p"),
      seed: optionalNumber(body, "seed", true),
      stop: stopOf(body),
    },
  };
}

/** A message's content: a string, or an array of text parts (joined). */
function contentOf(v: unknown, path: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        const p = part as { type?: unknown; text?: unknown };
        if (p?.type !== "text" || typeof p.text !== "string") throw new OpenAiFieldError(`${path}[${i}]`, 'only text parts ({"type": "text", "text": "..."}) are supported');
        return p.text;
      })
      .join("");
  }
  throw new OpenAiFieldError(path, `must be a string or an array of text parts (got ${JSON.stringify(v)})`);
}

/** A chat completion request. */
export function chatRequest(body: Body): TextRequest {
  const req = common(body);
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new OpenAiFieldError("messages", "is required: a non-empty array of {role, content}");
  req.infer.messages = messages.map((m, i) => {
    const msg = m as { role?: unknown; content?: unknown };
    const role = typeof msg?.role === "string" ? ROLES[msg.role] : undefined;
    if (role === undefined) throw new OpenAiFieldError(`messages[${i}].role`, `must be system, developer, user or assistant (got ${JSON.stringify(msg?.role)})`);
    return { role, content: contentOf(msg.content, `messages[${i}].content`) };
  });
  return req;
}

/** A (legacy) completion request: one prompt. */
export function completionRequest(body: Body): TextRequest {
  const req = common(body);
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (typeof prompt !== "string") throw new OpenAiFieldError("prompt", "must be one string (or an array of one string; token arrays are not supported)");
  req.infer.prompt = prompt;
  return req;
}
