/**
 * The worker runtime: claims steps of the routes its engines serve, runs up
 * to `concurrency` at once, renews their leases in one batched call, streams
 * their output, and completes, fails or releases each one. It blocks on the
 * routes' wake-up markers when idle (no polling), and stops gracefully.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { NarrationLevel } from "../gen/stepq/v1/output_pb.js";
import { StepErrorCode, StepResultSchema, StopReason } from "../gen/stepq/v1/step_pb.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { coerceError, isRedisUnavailable, LeaseLostError } from "../queue/errors.js";
import type { AttemptError, ClaimedStep, Lease, OutputBatch } from "../queue/leases.js";
import { createLogger, type Logger } from "../queue/logger.js";
import { createQueue, type Queue } from "../queue/queue.js";
import { startSweeper, type Sweeper } from "../queue/sweeper.js";
import type { Engine, EngineContext, EngineResult, StopSignal } from "./engines/engine.js";
import { createOutputBuffer } from "./output-buffer.js";
import { StepFailure } from "./step-failure.js";

export interface WorkerOptions {
  redisUrl: string;
  queue?: string;
  engines: readonly Engine[];
  /** Steps run at once. Default 1. */
  concurrency?: number;
  /** Lease length; renewed every third of it. Default 30 s. */
  leaseMs?: number;
  /** On stop, how long running steps may finish before they are handed back. Default 30 s. */
  shutdownGraceMs?: number;
  /** Default `<host>-<pid>-<random>`. */
  workerId?: string;
  /** Minimum time between two output appends of one step. Default 2 ms. */
  flushMs?: number;
  /** Longest idle block before re-checking. Default 5 s. */
  idleBlockMs?: number;
  sweepIntervalMs?: number;
  logger?: Logger;
}

/** Worker events, `noun:verb`. */
export interface WorkerEvents {
  /** A step was leased and is about to run. */
  "step:claimed": { stepId: string; attempt: number; route: string };
  /** A step succeeded. */
  "step:completed": { stepId: string; attempt: number; durationMs: number };
  /** An attempt failed; `retryAt` is set when the queue will try again. */
  "step:failed": { stepId: string; attempt: number; message: string; retryAt?: number };
  /** The worker stopped a step it no longer owns (cancelled, or the lease was lost). */
  "step:abandoned": { stepId: string; attempt: number; reason: StopSignal["kind"] };
  /** A stopping worker handed a step back to the queue. */
  "step:released": { stepId: string; attempt: number };
  /** Something went wrong outside a step (Redis away...); the worker carries on. */
  "worker:error": { error: Error };
}

type Listener<K extends keyof WorkerEvents> = (payload: WorkerEvents[K]) => void;

interface Running {
  step: ClaimedStep;
  abort: AbortController;
  done: Promise<void>;
  /** Local estimate of the lease deadline (Date.now() scale). */
  deadline: number;
}

export type Worker = ReturnType<typeof createWorker>;

/** Creates a worker; call start() then runForever() (or runOnce() in tests). */
export function createWorker(options: WorkerOptions) {
  const id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const leaseMs = options.leaseMs ?? 30_000;
  const graceMs = options.shutdownGraceMs ?? 30_000;
  const flushMs = options.flushMs ?? 2;
  const idleBlockMs = options.idleBlockMs ?? 5000;
  const log = (options.logger ?? createLogger("worker")).child(id);
  const listeners = new Map<keyof WorkerEvents, Set<Listener<never>>>();
  const running = new Map<string, Running>();
  const routeEngine = new Map<string, Engine>();
  for (const engine of options.engines) {
    for (const route of engine.routes()) if (!routeEngine.has(route)) routeEngine.set(route, engine);
  }
  const routes = [...routeEngine.keys()];

  let commands: Redis | undefined;
  let blocking: Redis | undefined;
  let subscriber: Redis | undefined;
  let queue: Queue | undefined;
  let sweeper: Sweeper | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let started = false;
  let stopping = false;
  /** runForever is running (settle calls then claim replacements; runOnce's do not). */
  let looping = false;
  let stopped: Promise<void> | undefined;
  let slotWaiter: (() => void) | undefined;

  function emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]) {
    for (const fn of listeners.get(event) ?? []) (fn as Listener<K>)(payload);
  }

  const reportError = (error: Error) => {
    log.warn("error", { error: error.message });
    emit("worker:error", { error });
  };

  function q(): Queue {
    if (!queue) throw new Error("worker not started: call start() first");
    return queue;
  }

  /** Retries `fn` while Redis is unreachable, until `deadline` (Date.now() scale). */
  async function whileUnavailable<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        return await fn();
      } catch (e) {
        if (!isRedisUnavailable(e) || Date.now() + delay > deadline) throw e;
        await sleep(delay);
      }
    }
  }

  function context(r: Running, buffer: ReturnType<typeof createOutputBuffer>): EngineContext {
    const { step } = r;
    let lastProgress = 0;
    let progressTimer: NodeJS.Timeout | undefined;
    let pending: { fraction: number; message: string } | undefined;
    const sendProgress = () => {
      progressTimer = undefined;
      if (!pending || r.abort.signal.aborted) return;
      const { fraction, message } = pending;
      pending = undefined;
      lastProgress = Date.now();
      q()
        .reportProgress(step, fraction, message)
        .catch((e: unknown) => {
          if (e instanceof LeaseLostError) stopStep(r, { kind: "lease-lost" });
        });
    };
    let stepLog: Logger | undefined;
    return {
      signal: r.abort.signal,
      get log() {
        stepLog ??= log.child(step.stepId);
        return stepLog;
      },
      token: (text) => buffer.token(text),
      narrate: (text, level = NarrationLevel.INFO) => buffer.narrate(level, text),
      progress(fraction, message = "") {
        pending = { fraction, message };
        if (progressTimer) return;
        const wait = lastProgress + 250 - Date.now();
        progressTimer = setTimeout(sendProgress, Math.max(0, wait));
      },
    };
  }

  function stopStep(r: Running, signal: StopSignal) {
    if (!r.abort.signal.aborted) r.abort.abort(signal);
  }

  function encodeResult(res: EngineResult, tokens: number, startedAt: number): Uint8Array {
    const durationMs = Date.now() - startedAt;
    const completion = res.completionTokens ?? tokens;
    const genMs = durationMs - (res.timeToFirstTokenMs ?? 0);
    return toBinary(
      StepResultSchema,
      create(StepResultSchema, {
        text: res.text ?? "",
        embeddings: (res.embeddings ?? []).map((values) => ({ values })),
        usage: {
          promptTokens: res.promptTokens ?? 0,
          completionTokens: completion,
          timeToFirstTokenMs: res.timeToFirstTokenMs ?? 0,
          durationMs,
          tokensPerSecond: completion > 0 && genMs > 0 ? (completion * 1000) / genMs : 0,
        },
        stopReason: res.stopReason ?? StopReason.END_OF_TEXT,
      }),
    );
  }

  async function runStep(r: Running): Promise<void> {
    const { step } = r;
    const engine = routeEngine.get(step.route);
    const startedAt = Date.now();
    const buffer = createOutputBuffer({
      write: (batch) => q().appendOutput(step, batch),
      flushMs,
      isRetryable: isRedisUnavailable,
      // A write refused for good means the lease is gone (or the job was purged).
      onFatal: () => stopStep(r, { kind: "lease-lost" }),
    });
    const timeout =
      step.timeoutMs > 0 ? setTimeout(() => stopStep(r, { kind: "timeout", timeoutMs: step.timeoutMs }), step.timeoutMs) : undefined;
    let result: EngineResult | undefined;
    let failure: Error | undefined;
    try {
      if (!engine) throw new StepFailure(StepErrorCode.INVALID_OPERATION, `worker ${id} has no engine for route ${step.route}`, false);
      result = await engine.run(step, context(r, buffer));
    } catch (e) {
      failure = coerceError(e);
    } finally {
      if (timeout) clearTimeout(timeout);
    }
    const stop = r.abort.signal.aborted ? (r.abort.signal.reason as StopSignal) : undefined;
    const trailing: OutputBatch = await buffer.finish();

    // ─── THIS SECTION MUST COMPLETE, FAIL OR LET GO OF THE STEP ───────────
    // Cancelled / lease lost: the queue has already moved on; writing now
    // would be refused by the fencing token, so there is nothing to do.
    // Shutdown: stop() hands the lease back in one batch.
    if (stop?.kind === "cancelled" || stop?.kind === "lease-lost" || stop?.kind === "shutdown") {
      if (stop.kind !== "shutdown") {
        log.info("step abandoned", { step: step.stepId, attempt: step.attempt, reason: stop.kind });
        emit("step:abandoned", { stepId: step.stepId, attempt: step.attempt, reason: stop.kind });
      }
      return;
    }
    const deadline = () => r.deadline;
    try {
      if (stop?.kind === "timeout" || failure || !result) {
        const error: AttemptError =
          stop?.kind === "timeout"
            ? { code: StepErrorCode.TIMEOUT, message: `attempt ran past timeout_ms=${stop.timeoutMs}`, retryable: true }
            : failure instanceof StepFailure
              ? { code: failure.code, message: failure.message, retryable: failure.retryable }
              : { code: StepErrorCode.ENGINE_FAILED, message: failure?.message ?? "engine returned no result", retryable: true };
        const res = await whileUnavailable(() => q().fail(step, error, trailing), deadline());
        emit("step:failed", { stepId: step.stepId, attempt: step.attempt, message: error.message, retryAt: res.retryAt });
      } else {
        const outcome = await settleLater(r, encodeResult(result, buffer.tokenCount, startedAt), trailing);
        if (outcome) throw outcome;
        emit("step:completed", { stepId: step.stepId, attempt: step.attempt, durationMs: Date.now() - startedAt });
      }
    } catch (e) {
      if (e instanceof LeaseLostError) {
        // Expired or cancelled while finishing (or a lost reply to our own
        // completion): the queue's state is authoritative either way.
        log.info("step abandoned", { step: step.stepId, attempt: step.attempt, reason: "lease-lost" });
        emit("step:abandoned", { stepId: step.stepId, attempt: step.attempt, reason: "lease-lost" });
      } else {
        // Redis stayed away past the lease: recovery will requeue the step.
        reportError(coerceError(e));
      }
    }
  }

  /**
   * Completions wait here for the next settle call, which completes them
   * together and claims their replacements. Up to two calls are in flight,
   * so Redis works on one batch while this process handles the other;
   * completions that finish meanwhile form the next batch.
   */
  const completions: { r: Running; result: Uint8Array; trailing: OutputBatch; done: (err?: Error) => void }[] = [];
  const MAX_SETTLES = 2;
  let settling = 0;
  /** Slots promised to claim calls in flight (so together they never exceed concurrency). */
  let reserved = 0;

  function settleLater(r: Running, result: Uint8Array, trailing: OutputBatch): Promise<Error | undefined> {
    return new Promise((done) => {
      completions.push({ r, result, trailing, done });
      if (settling < MAX_SETTLES) setImmediate(() => void settleBatch());
    });
  }

  function freeSlot() {
    const w = slotWaiter;
    slotWaiter = undefined;
    w?.();
  }

  async function settleBatch(): Promise<void> {
    if (settling >= MAX_SETTLES || completions.length === 0) return;
    settling++;
    const batch = completions.splice(0, 256);
    // A completed step keeps its slot until now, so a saturated worker's
    // replacements come from this call rather than from the claim loop.
    const claimMax = stopping || !looping ? 0 : Math.max(0, concurrency - (running.size - batch.length) - reserved);
    reserved += claimMax;
    const deadline = Math.min(...batch.map((c) => c.r.deadline));
    try {
      let max = claimMax;
      const res = await whileUnavailable(() => {
        const attempt = q().settle({
          workerId: id,
          routes,
          leaseMs,
          claimMax: max,
          completions: batch.map((c) => ({ lease: c.r.step, result: c.result, trailing: c.trailing })),
        });
        max = 0; // a retry after a lost reply only completes: claimed steps would be orphaned
        return attempt;
      }, deadline);
      reserved -= claimMax;
      for (const c of batch) running.delete(c.r.step.member);
      batch.forEach((c, i) => c.done(res.outcomes[i]));
      for (const step of res.steps) launch(step);
      // The claim loop re-checks its free slots: waking it is always safe,
      // and it may be waiting for exactly the slots this batch freed.
      freeSlot();
    } catch (e) {
      reserved -= claimMax;
      const err = coerceError(e);
      for (const c of batch) c.done(err);
    } finally {
      settling--;
      if (completions.length > 0) setImmediate(() => void settleBatch());
    }
  }

  function launch(step: ClaimedStep) {
    const r: Running = {
      step,
      abort: new AbortController(),
      done: Promise.resolve(),
      deadline: Date.now() + leaseMs,
    };
    running.set(step.member, r);
    emit("step:claimed", { stepId: step.stepId, attempt: step.attempt, route: step.route });
    r.done = runStep(r)
      .catch((e: unknown) => reportError(coerceError(e)))
      .finally(() => {
        if (running.delete(step.member)) freeSlot();
      });
  }

  async function renewLeases() {
    const all = [...running.values()];
    if (all.length === 0) return;
    try {
      const deadlines = await q().extendLeases(
        all.map((r) => r.step as Lease),
        leaseMs,
      );
      const now = Date.now();
      all.forEach((r, i) => {
        if (deadlines[i] === undefined) stopStep(r, { kind: "lease-lost" });
        else r.deadline = now + leaseMs;
      });
    } catch (e) {
      reportError(coerceError(e));
      const now = Date.now();
      for (const r of all) if (now >= r.deadline) stopStep(r, { kind: "lease-lost" });
    }
  }

  async function claim(max: number): Promise<{ count: number; waitMs: number }> {
    reserved += max;
    let res;
    try {
      res = await q().claim({ workerId: id, routes, leaseMs, max });
    } finally {
      reserved -= max;
    }
    for (const step of res.steps) launch(step);
    const waitMs = res.nextDueAt === undefined ? idleBlockMs : Math.max(5, Math.min(idleBlockMs, res.nextDueAt - res.redisNow));
    return { count: res.steps.length, waitMs };
  }

  return {
    id,
    routes,
    /** Steps running now. */
    get running(): number {
      return running.size;
    },

    on<K extends keyof WorkerEvents>(event: K, fn: Listener<K>): void {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(fn as Listener<never>);
    },

    /** Connects, loads engines, subscribes to cancellations, starts heartbeats and the sweeper. */
    async start(): Promise<void> {
      if (started) return;
      if (routes.length === 0) throw new Error("worker has no routes: give it at least one engine");
      const onError = (err: Error) => log.debug("redis connection error", { error: err.message });
      commands = createRedis(options.redisUrl, "command", { name: "stepq-worker", onError });
      blocking = createRedis(options.redisUrl, "blocking", { name: "stepq-worker", onError });
      subscriber = createRedis(options.redisUrl, "subscriber", { name: "stepq-worker", onError });
      queue = createQueue({ redis: commands, queue: options.queue });
      for (let waited = 0; ; waited += 5) {
        try {
          await waitReady(commands, 5000);
          break;
        } catch {
          log.warn("waiting for Redis", { redis: options.redisUrl.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@"), waitedS: waited + 5 });
        }
      }
      for (const engine of options.engines) await engine.start?.();
      await subscriber.subscribe(queue.keys.cancelChannel);
      subscriber.on("message", (_channel: string, member: string) => {
        const r = running.get(member);
        if (r) stopStep(r, { kind: "cancelled" });
      });
      heartbeat = setInterval(() => void renewLeases(), Math.max(100, Math.floor(leaseMs / 3)));
      heartbeat.unref();
      sweeper = startSweeper(queue, { intervalMs: options.sweepIntervalMs ?? 1000, onError: reportError });
      started = true;
      await queue.workerEvent(EventType.WORKER_JOINED, id, routes).catch((e: unknown) => reportError(coerceError(e)));
      log.info("started", { routes: routes.join(","), concurrency, leaseMs });
    },

    /**
     * Claims what is ready now (up to `concurrency` steps), runs it to the
     * end, and returns how many steps ran. For tests and one-shot use.
     */
    async runOnce(): Promise<number> {
      if (!started) await this.start();
      const { count } = await claim(concurrency - running.size - reserved);
      await Promise.all([...running.values()].map((r) => r.done));
      return count;
    },

    /** Claims and runs steps until stop() is called. */
    async runForever(): Promise<void> {
      if (!started) await this.start();
      const wakeKeys = routes.map((r) => q().keys.wake(r));
      looping = true;
      let backoff = 100;
      while (!stopping) {
        const free = concurrency - running.size - reserved;
        if (free <= 0) {
          await new Promise<void>((resolve) => (slotWaiter = resolve));
          continue;
        }
        try {
          const { count, waitMs } = await claim(free);
          backoff = 100;
          if (count > 0 || stopping) continue;
          // Nothing ready: sleep on the routes' markers until a submit (or
          // the next scheduled step) wakes us.
          await (blocking as Redis).blpop(...wakeKeys, waitMs / 1000);
        } catch (e) {
          if (stopping) break;
          reportError(coerceError(e));
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5000);
        }
      }
    },

    /**
     * Stops claiming, lets running steps finish for up to `grace` ms, then
     * hands the rest back to the queue (another worker takes them at once)
     * and closes connections.
     */
    stop(grace = graceMs): Promise<void> {
      stopped ??= shutdown(grace);
      return stopped;
    },
  };

  /** Stops claiming, waits up to `grace` for running steps, hands back the rest, closes. */
  async function shutdown(grace: number): Promise<void> {
    stopping = true;
    blocking?.disconnect();
    slotWaiter?.();
    const settled = Promise.all([...running.values()].map((r) => r.done));
    await Promise.race([settled, sleep(grace)]);
    const left = [...running.values()];
    if (left.length > 0 && queue) {
      for (const r of left) stopStep(r, { kind: "shutdown" });
      // ─── HAND BACK EVERY STEP STILL RUNNING ───────────────────────────
      try {
        const n = await queue.release(
          id,
          left.map((r) => r.step as Lease),
        );
        for (const r of left) emit("step:released", { stepId: r.step.stepId, attempt: r.step.attempt });
        log.info("released steps", { count: n });
      } catch (e) {
        reportError(coerceError(e)); // their leases expire and recovery requeues them
      }
      await Promise.race([Promise.all(left.map((r) => r.done)), sleep(5000)]);
    }
    if (heartbeat) clearInterval(heartbeat);
    sweeper?.stop();
    for (const engine of options.engines) await engine.close?.().catch(() => {});
    await queue?.workerEvent(EventType.WORKER_LEFT, id, routes).catch(() => {});
    subscriber?.disconnect();
    await commands?.quit().catch(() => commands?.disconnect());
    log.info("stopped");
  }
}
