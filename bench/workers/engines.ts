/**
 * Bench-only stepq engines. Both serve the "echo" route so the benchmark can
 * submit ordinary EchoOperations:
 * - `stamp` is the echo engine plus a timestamp of the moment each step
 *   starts, for submit→start latency measured where the work begins;
 * - `pace` streams `token_count` tokens `token_delay_ms` apart after
 *   `delay_ms`, each token's text being its emit time, so a client can
 *   measure engine-emit→client-receive latency per token.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { StopReason } from "../../gen/stepq/v1/step_pb.js";
import { createEchoEngine } from "../../worker/engines/echo.js";
import type { Engine } from "../../worker/engines/engine.js";
import { nowMs } from "../lib/stats.js";

/** The echo engine, recording `stepId → start time (ms)` into `stamps`. */
export function createStampEngine(stamps: Map<string, number>): Engine {
  const echo = createEchoEngine();
  return {
    name: "stamp",
    routes: () => ["echo"],
    run(step, ctx) {
      stamps.set(step.stepId, nowMs());
      return echo.run(step, ctx);
    },
  };
}

/** Streams tokens at a steady pace; each token is `<emit time in ms, 3 decimals> `. */
export function createPaceEngine(): Engine {
  return {
    name: "pace",
    routes: () => ["echo"],
    async run(step, ctx) {
      if (step.operation.kind.case !== "echo") throw new Error("pace engine runs echo operations only");
      const op = step.operation.kind.value;
      if (op.delayMs > 0) await sleep(op.delayMs, undefined, { signal: ctx.signal });
      // Sleep to absolute deadlines so timer overshoot does not slow the pace.
      const start = performance.now();
      for (let i = 0; i < op.tokenCount; i++) {
        const due = start + i * op.tokenDelayMs - performance.now();
        if (due > 0) await sleep(due, undefined, { signal: ctx.signal });
        ctx.token(`${nowMs().toFixed(3)} `);
      }
      return { completionTokens: op.tokenCount, stopReason: StopReason.END_OF_TEXT };
    },
  };
}
