/**
 * Checks one Operation and derives its route. Every message names the field
 * (as a proto path) and says what a valid value looks like, because this is
 * what a user reads when a submit is refused.
 */
import { ChatRole, type Operation } from "../gen/stepq/v1/operation_pb.js";
import { InvalidArgumentError, quoted } from "./errors.js";
import type { SubmitLimits } from "./limits.js";

/** Model names: what Hugging Face, Ollama and file names use. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;

export type OperationKind = "infer" | "embed" | "echo";

/** The route of an operation: the queue its steps wait in. */
export function routeOf(op: Operation): string {
  const k = op.kind;
  switch (k.case) {
    case "infer":
      return `infer:${k.value.model}`;
    case "embed":
      return `embed:${k.value.model}`;
    case "echo":
      return "echo";
    default:
      throw new Error("routeOf: operation has no kind");
  }
}

function bad(path: string, message: string): never {
  throw new InvalidArgumentError(path, message);
}

function checkModel(path: string, model: string): void {
  if (model === "") bad(path, "is required: name the model to run (a worker serves it as a route)");
  if (!MODEL_NAME.test(model)) {
    bad(path, `${quoted(model)} is not a valid model name (1-128 characters of letters, digits and ._:/@+-)`);
  }
}

function checkRange(path: string, value: number, min: number, max: number, what = ""): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    bad(path, `must be between ${min} and ${max}${what} (got ${value})`);
  }
}

/**
 * Validates `op` (at proto path `path`, e.g. "operation") and returns its
 * kind. Throws InvalidArgumentError on the first problem.
 */
export function validateOperation(op: Operation | undefined, path: string, limits: SubmitLimits): OperationKind {
  if (!op || op.kind.case === undefined) {
    bad(path, "is required: set exactly one of infer, embed or echo");
  }
  const k = op.kind;
  switch (k.case) {
    case "infer": {
      const v = k.value;
      const p = `${path}.infer`;
      checkModel(`${p}.model`, v.model);
      const hasPrompt = v.prompt.trim() !== "";
      if (hasPrompt && v.messages.length > 0) bad(`${p}.prompt`, "set either prompt or messages, not both");
      if (!hasPrompt && v.messages.length === 0) {
        bad(`${p}.prompt`, "is empty: give a non-empty prompt, or chat messages instead");
      }
      v.messages.forEach((m, i) => {
        if (m.role !== ChatRole.SYSTEM && m.role !== ChatRole.USER && m.role !== ChatRole.ASSISTANT) {
          bad(`${p}.messages[${i}].role`, `must be CHAT_ROLE_SYSTEM, CHAT_ROLE_USER or CHAT_ROLE_ASSISTANT (got ${m.role})`);
        }
        if (m.content.trim() === "") bad(`${p}.messages[${i}].content`, "is empty");
      });
      if (v.maxTokens < 0) bad(`${p}.max_tokens`, `must not be negative (got ${v.maxTokens}); use 0 for the default`);
      if (v.maxTokens > limits.maxTokensLimit) {
        bad(`${p}.max_tokens`, `${v.maxTokens} is over this server's limit of ${limits.maxTokensLimit}`);
      }
      if (v.temperature !== undefined) checkRange(`${p}.temperature`, v.temperature, 0, 2);
      if (v.topP !== undefined && (!(v.topP > 0) || v.topP > 1)) bad(`${p}.top_p`, `must be in (0, 1] (got ${v.topP})`);
      if (v.topK !== undefined) checkRange(`${p}.top_k`, v.topK, 0, 100000);
      if (v.stop.length > 8) bad(`${p}.stop`, `at most 8 stop strings (got ${v.stop.length})`);
      v.stop.forEach((s, i) => {
        if (s === "") bad(`${p}.stop[${i}]`, "is empty; remove it");
        if (s.length > 64) bad(`${p}.stop[${i}]`, `is ${s.length} characters; at most 64`);
      });
      return "infer";
    }
    case "embed": {
      const v = k.value;
      const p = `${path}.embed`;
      checkModel(`${p}.model`, v.model);
      if (v.inputs.length === 0) bad(`${p}.inputs`, "is empty: give 1 to 256 texts to embed");
      if (v.inputs.length > 256) bad(`${p}.inputs`, `has ${v.inputs.length} texts; at most 256 per step`);
      v.inputs.forEach((s, i) => {
        if (s.trim() === "") bad(`${p}.inputs[${i}]`, "is empty");
      });
      return "embed";
    }
    case "echo": {
      const v = k.value;
      const p = `${path}.echo`;
      checkRange(`${p}.token_count`, v.tokenCount, 0, 1_000_000);
      checkRange(`${p}.token_delay_ms`, v.tokenDelayMs, 0, 60_000, " ms");
      checkRange(`${p}.delay_ms`, v.delayMs, 0, 3_600_000, " ms");
      checkRange(`${p}.fail_attempts`, v.failAttempts, 0, 100);
      return "echo";
    }
  }
  return bad(path, "has an unknown kind");
}
