/**
 * EmbedOperation on a loaded llama.cpp model: one vector per input, computed
 * on an embedding context of the step's own. Generative models embed too:
 * llama.cpp returns the pooled vector when the GGUF declares a pooling type
 * (embedding models do) and the last token's hidden state otherwise, not
 * normalized. Whether such vectors are any good for search is the model's
 * business; the queue only promises one vector per input.
 */
import type { LlamaEmbeddingContext } from "node-llama-cpp";
import type { EmbedOperation } from "../../gen/stepq/v1/operation_pb.js";
import { StopReason } from "../../gen/stepq/v1/step_pb.js";
import { coerceError } from "../../queue/errors.js";
import { InvalidOperationError } from "../step-failure.js";
import type { EngineContext, EngineResult } from "./engine.js";
import { type LoadedModel, stoppedError } from "./llama-infer.js";

/** Per-engine settings an embedding needs. */
export interface EmbedSettings {
  threads: number;
  contextSize?: number;
}

/** Runs one EmbedOperation; throws InvalidOperationError when the model cannot embed or an input is too long. */
export async function runEmbed(m: LoadedModel, op: EmbedOperation, ctx: EngineContext, s: EmbedSettings): Promise<EngineResult> {
  if (op.inputs.length === 0) throw new InvalidOperationError("embed: give at least one input");
  let context: LlamaEmbeddingContext;
  try {
    // threads must be passed: node-llama-cpp defaults embedding contexts to 6.
    context = await m.model.createEmbeddingContext({ contextSize: s.contextSize, threads: s.threads });
  } catch (e) {
    throw new InvalidOperationError(`model ${m.name} (${m.path}) cannot compute embeddings: ${coerceError(e).message}`);
  }
  try {
    const embeddings: number[][] = [];
    let promptTokens = 0;
    for (const [i, input] of op.inputs.entries()) {
      if (ctx.signal.aborted) throw stoppedError(ctx.signal, 0);
      const length = context.calculateInputLength(input);
      let embedding;
      try {
        embedding = await context.getEmbeddingFor(input);
      } catch (e) {
        const err = coerceError(e);
        if (!/longer than/i.test(err.message)) throw err;
        throw new InvalidOperationError(`inputs[${i}] is ${length} tokens, more than model ${m.name}'s context holds`);
      }
      embeddings.push([...embedding.vector]);
      promptTokens += length;
      if (op.inputs.length > 1) ctx.progress((i + 1) / op.inputs.length);
    }
    return { embeddings, promptTokens, completionTokens: 0, stopReason: StopReason.UNSPECIFIED };
  } finally {
    await context.dispose();
  }
}
