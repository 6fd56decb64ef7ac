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

/**
 * One timer per deadline for every step waiting on it: the steps of a
 * batching inference server get their tokens from the same forward pass, so
 * they arrive together, in one callback.
 */
function createBatchClock() {
  const due = new Map<number, Set<() => void>>();
  return {
    /** Resolves at `deadline` (performance.now() ms), with every other waiter for it; rejects when `signal` aborts. */
    at(deadline: number, signal: AbortSignal): Promise<void> {
      return new Promise((resolve, reject) => {
        let waiters = due.get(deadline);
        if (!waiters) {
          const set = new Set<() => void>();
          due.set(deadline, set);
          setTimeout(() => {
            due.delete(deadline);
            for (const wake of set) wake();
          }, Math.max(0, deadline - performance.now()));
          waiters = set;
        }
        const onAbort = () => {
          waiters.delete(wake);
          reject(signal.reason);
        };
        const wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        waiters.add(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}

/**
 * Streams tokens at a steady pace; each token is `<emit time in ms, 3
 * decimals> `. Token `i` of every step is due at the same instant on a
 * shared grid of `token_delay_ms` (after `delay_ms`), like a batching
 * server's forward passes, and absolute deadlines keep timer overshoot from
 * slowing the pace.
 */
export function createPaceEngine(): Engine {
  const clock = createBatchClock();
  return {
    name: "pace",
    routes: () => ["echo"],
    async run(step, ctx) {
      if (step.operation.kind.case !== "echo") throw new Error("pace engine runs echo operations only");
      const op = step.operation.kind.value;
      if (op.delayMs > 0) await sleep(op.delayMs, undefined, { signal: ctx.signal });
      const pace = Math.max(1, op.tokenDelayMs);
      const start = Math.ceil(performance.now() / pace) * pace;
      for (let i = 0; i < op.tokenCount; i++) {
        const deadline = start + i * pace;
        if (deadline > performance.now()) await clock.at(deadline, ctx.signal);
        ctx.token(`${nowMs().toFixed(3)} `);
      }
      return { completionTokens: op.tokenCount, stopReason: StopReason.END_OF_TEXT };
    },
  };
}
