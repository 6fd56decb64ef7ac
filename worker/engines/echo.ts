/**
 * The echo engine: runs EchoOperation. It returns its text, streams a given
 * number of tokens at a given pace, and fails on purpose when asked, so every
 * path of the queue can be exercised without a model.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { StepErrorCode, StopReason } from "../../gen/stepq/v1/step_pb.js";
import type { ClaimedStep } from "../../queue/leases.js";
import { InvalidOperationError, StepFailure } from "../step-failure.js";
import type { Engine, EngineContext, EngineResult } from "./engine.js";

/** The tokens echo streams: the text's words, each followed by one space, in turn. */
export function echoPieces(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== "").map((w) => `${w} `);
}

/** Creates the echo engine (route "echo"). */
export function createEchoEngine(): Engine {
  return {
    name: "echo",
    routes: () => ["echo"],
    async run(step: ClaimedStep, ctx: EngineContext): Promise<EngineResult> {
      const k = step.operation.kind;
      if (k.case !== "echo") throw new InvalidOperationError(`echo engine cannot run a ${k.case ?? "missing"} operation`);
      const op = k.value;
      const started = Date.now();
      if (op.delayMs > 0) await sleep(op.delayMs, undefined, { signal: ctx.signal });
      let text = op.text;
      let firstTokenAt: number | undefined;
      if (op.tokenCount > 0) {
        ctx.narrate(`echo: streaming ${op.tokenCount} tokens`);
        const pieces = echoPieces(op.text);
        const out: string[] = [];
        for (let i = 0; i < op.tokenCount; i++) {
          ctx.signal.throwIfAborted();
          const piece = pieces.length > 0 ? (pieces[i % pieces.length] as string) : `t${i} `;
          ctx.token(piece);
          out.push(piece);
          firstTokenAt ??= Date.now();
          if (op.tokenDelayMs > 0) await sleep(op.tokenDelayMs, undefined, { signal: ctx.signal });
          else if (i % 256 === 255) await new Promise((r) => setImmediate(r)); // let output and aborts through
        }
        text = out.join("");
      }
      if (op.failMessage !== "" && (op.failAttempts === 0 || step.attempt <= op.failAttempts)) {
        throw new StepFailure(StepErrorCode.ENGINE_FAILED, op.failMessage, !op.failPermanently);
      }
      return {
        text,
        completionTokens: op.tokenCount,
        timeToFirstTokenMs: firstTokenAt === undefined ? undefined : firstTokenAt - started,
        stopReason: StopReason.END_OF_TEXT,
      };
    },
  };
}
