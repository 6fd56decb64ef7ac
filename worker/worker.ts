/**
 * The worker runtime: claims steps of the routes its engines serve, runs up
 * to `concurrency` at once, renews their leases in one batched call, streams
 * their output, and completes, fails or releases each one. It blocks on the
 * routes' wake-up markers when idle (no polling), and stops gracefully.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepErrorCode } from "../gen/stepq/v1/step_pb.js";
import { coerceError, LeaseLostError } from "../queue/errors.js";
import type { ClaimedStep, Lease } from "../queue/leases.js";
import { createQueue, type Queue } from "../queue/queue.js";
import { startSweeper, type Sweeper } from "../queue/sweeper.js";
import { followCancellations, waitForWork } from "../queue/worker-signals.js";
import { createLogger } from "../runtime/logger.js";
import type { Engine, EngineResult, StopSignal } from "./engines/engine.js";
import { type LeaseKeeper, startLeaseKeeper } from "./lease-keeper.js";
import { createPrefetch } from "./prefetch.js";
import { lostLeaseKind, RunningStep, type StepHost } from "./running-step.js";
import { createSettler, SETTLE_CALLS } from "./settler.js";
import { StepFailure } from "./step-failure.js";
import { attemptErrorOf, resultOf } from "./step-outcome.js";
import { whileUnavailable } from "./while-unavailable.js";
import { connectWorker, type WorkerConnections } from "./worker-connections.js";
import type { Listener, WorkerEvents, WorkerOptions } from "./worker-options.js";

export type { WorkerEvents, WorkerOptions };

export type Worker = ReturnType<typeof createWorker>;

/** Creates a worker; call start() then runForever() (or runOnce() in tests). */
export function createWorker(options: WorkerOptions) {
  const id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const leaseMs = options.leaseMs ?? 30_000;
  const graceMs = options.shutdownGraceMs ?? 30_000;
  const idleBlockMs = options.idleBlockMs ?? 5000;
  const log = (options.logger ?? createLogger("worker")).child(id);
  const listeners = new Map<keyof WorkerEvents, Set<Listener<never>>>();
  /** Steps this worker holds a lease on, by lease member: running, claimed ahead, or waiting for their completion call. */
  const running = new Map<string, RunningStep>();
  /** Steps claimed ahead, waiting for a free slot (oldest first). */
  let ready: RunningStep[] = [];
  /** Steps whose engine is running. */
  let active = 0;
  const prefetchMs = options.prefetchMs ?? 2;
  const prefetch = createPrefetch({ concurrency, horizonMs: prefetchMs, max: Math.max(512, 4 * concurrency) });
  /** If no step starts for this long while steps wait to, those steps are handed back. */
  const handBackMs = Math.max(50, 10 * prefetchMs);
  let lastStartAt = 0;
  let handBackTimer: NodeJS.Timeout | undefined;
  const routeEngine = new Map<string, Engine>();
  for (const engine of options.engines) {
    for (const route of engine.routes()) if (!routeEngine.has(route)) routeEngine.set(route, engine);
  }
  const routes = [...routeEngine.keys()];

  let connections: WorkerConnections | undefined;
  let queue: Queue | undefined;
  let sweeper: Sweeper | undefined;
  let leaseKeeper: LeaseKeeper | undefined;
  let started = false;
  let stopping = false;
  /** runForever is running (settle calls then claim replacements; runOnce's do not). */
  let looping = false;
  let stopped: Promise<void> | undefined;
  /** Slots promised to claim calls in flight (so together they never exceed concurrency). */
  let reserved = 0;
  /** Woken whenever a slot frees up or the running set empties. */
  let slotWaiters: (() => void)[] = [];

  function emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]) {
    const set = listeners.get(event);
    if (set) for (const fn of set) (fn as Listener<K>)(payload);
  }

  const reportError = (error: Error) => {
    log.warn("error", { error: error.message });
    emit("worker:error", { error });
  };

  function q(): Queue {
    if (!queue) throw new Error("worker not started: call start() first");
    return queue;
  }

  const host: StepHost = { queue: q, flushMs: options.flushMs ?? 2, log };

  function wakeSlotWaiters() {
    if (slotWaiters.length === 0) return;
    const waiters = slotWaiters;
    slotWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once a slot frees up (or the worker stops). */
  function slotFreed(): Promise<void> {
    return new Promise((resolve) => slotWaiters.push(resolve));
  }

  /** The step is no longer this worker's: forget it and free its slot. */
  function release(r: RunningStep) {
    if (running.delete(r.step.member)) wakeSlotWaiters();
  }

  /** Leases the worker may hold now: its concurrency, plus what it claims ahead. */
  function capacity(): number {
    return looping && !stopping ? concurrency + prefetch.extra : concurrency;
  }

  /** Starts claimed steps while slots are free. */
  function pump() {
    while (active < concurrency && ready.length > 0) {
      const r = ready.shift() as RunningStep;
      if (r.stopped) continue; // cancelled or lost while it waited: already let go
      active++;
      lastStartAt = performance.now();
      void runStep(r).catch((e: unknown) => {
        reportError(coerceError(e));
        release(r);
      });
    }
    if (ready.length > 0 && !handBackTimer) handBackTimer = setTimeout(checkHandBack, handBackMs);
  }

  /** Steps claimed ahead that waited too long (a step ran far longer than expected) go back to the queue. */
  function checkHandBack() {
    handBackTimer = undefined;
    if (ready.length === 0) return;
    if (performance.now() - lastStartAt < handBackMs) {
      handBackTimer = setTimeout(checkHandBack, handBackMs);
      return;
    }
    const back = ready;
    ready = [];
    prefetch.reset();
    void handBackUnstarted(back, "busy");
  }

  /**
   * Stops `steps` and hands their leases back to the queue without using an
   * attempt; resolves with how many the queue took back (undefined: Redis
   * did not answer, and their leases expire instead).
   */
  async function handBack(steps: readonly RunningStep[], why: "stopping" | "busy"): Promise<number | undefined> {
    if (steps.length === 0) return 0;
    for (const r of steps) r.stop({ kind: "shutdown" });
    // ─── HAND BACK EVERY STEP GIVEN ───────────────────────────────────────
    try {
      const n = await q().release(id, steps.map((r) => r.step as Lease), why);
      for (const r of steps) emit("step:released", { stepId: r.step.stepId, attempt: r.step.attempt });
      return n;
    } catch (e) {
      reportError(coerceError(e)); // their leases expire and recovery requeues them
      return undefined;
    }
  }

  /** Hands back steps claimed ahead that never started, and forgets them (nothing of theirs runs). */
  async function handBackUnstarted(steps: readonly RunningStep[], why: "stopping" | "busy") {
    await handBack(steps, why);
    for (const r of steps) release(r);
  }

  const settler = createSettler({
    queue: q,
    workerId: id,
    routes,
    leaseMs,
    // A share of the leases per call, so that calls overlap with this process's work.
    batchMax: () => Math.max(1, Math.ceil(capacity() / SETTLE_CALLS)),
    claimable(settling) {
      // A completed step keeps its lease's place until its settle call, so a
      // saturated worker's replacements come from that call rather than
      // from the claim loop.
      const n = stopping || !looping ? 0 : Math.max(0, capacity() - (running.size - settling) - reserved);
      reserved += n;
      return n;
    },
    unreserve(n) {
      reserved -= n;
    },
    whileUnavailable,
    settled(r, err) {
      release(r);
      if (!err) {
        if (listeners.has("step:completed")) {
          emit("step:completed", { stepId: r.step.stepId, attempt: r.step.attempt, durationMs: Date.now() - r.startedAt });
        }
      } else if (err instanceof LeaseLostError) {
        // Expired or cancelled while finishing (or a lost reply to our own
        // completion): the queue's state is authoritative either way.
        abandoned(r, lostLeaseKind(err));
      } else {
        // Redis stayed away past the lease: recovery will requeue the step.
        reportError(err);
      }
    },
    claimed: launchAll,
  });

  function abandoned(r: RunningStep, reason: StopSignal["kind"]) {
    log.info("step abandoned", { step: r.step.stepId, attempt: r.step.attempt, reason });
    emit("step:abandoned", { stepId: r.step.stepId, attempt: r.step.attempt, reason });
  }

  async function runStep(r: RunningStep): Promise<void> {
    const { step } = r;
    const engine = routeEngine.get(step.route);
    r.startedAt = Date.now();
    const t0 = performance.now();
    const timeout = step.timeoutMs > 0 ? setTimeout(() => r.stop({ kind: "timeout", timeoutMs: step.timeoutMs }), step.timeoutMs) : undefined;
    let result: EngineResult | undefined;
    let failure: Error | undefined;
    try {
      if (!engine) throw new StepFailure(StepErrorCode.INVALID_OPERATION, `worker ${id} has no engine for route ${step.route}`, false);
      if (step.tooLarge) throw new StepFailure(StepErrorCode.OPERATION_TOO_LARGE, step.tooLarge, false);
      result = await engine.run(step, r);
    } catch (e) {
      failure = coerceError(e);
    } finally {
      if (timeout) clearTimeout(timeout);
    }
    // The slot is free for the next step; this one keeps its lease until it is completed.
    active--;
    prefetch.record(performance.now() - t0);
    pump();
    r.trailing = await r.finishOutput();
    const stop = r.stopped;

    // ─── THIS SECTION MUST COMPLETE, FAIL OR LET GO OF THE STEP ───────────
    // Cancelled / lease lost / too large (the queue failed the step for
    // output past its caps): the queue has already moved on; writing now
    // would be refused by the fencing token, so there is nothing to do.
    // Shutdown: stop() hands the lease back in one batch.
    if (stop?.kind === "cancelled" || stop?.kind === "lease-lost" || stop?.kind === "too-large" || stop?.kind === "shutdown") {
      if (stop.kind !== "shutdown") abandoned(r, stop.kind);
      release(r);
      return;
    }
    if (stop?.kind !== "timeout" && !failure && result) {
      // Completed by the next settle call, which also claims a replacement.
      r.result = resultOf(r, result);
      settler.add(r);
      return;
    }
    const error = attemptErrorOf(stop, failure);
    try {
      const res = await whileUnavailable(() => q().fail(step, error, r.trailing), r.deadline);
      emit("step:failed", { stepId: step.stepId, attempt: step.attempt, message: error.message, retryAt: res.retryAt });
    } catch (e) {
      if (e instanceof LeaseLostError) abandoned(r, lostLeaseKind(e));
      else reportError(coerceError(e)); // Redis stayed away past the lease: recovery will requeue the step
    }
    release(r);
  }

  function launch(step: ClaimedStep) {
    const r = new RunningStep(step, host, leaseMs);
    running.set(step.member, r);
    if (listeners.has("step:claimed")) emit("step:claimed", { stepId: step.stepId, attempt: step.attempt, route: step.route });
    ready.push(r);
  }

  /** Takes over steps a claim returned: they run as slots free up. */
  function launchAll(steps: readonly ClaimedStep[]) {
    for (const step of steps) launch(step);
    pump();
  }

  /** Lets go of steps claimed ahead that were cancelled or lost their lease before they started. */
  function dropStopped() {
    const lost = ready.filter((r) => r.stopped);
    if (lost.length === 0) return;
    ready = ready.filter((r) => !r.stopped);
    for (const r of lost) {
      abandoned(r, (r.stopped as StopSignal).kind);
      release(r);
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
    launchAll(res.steps);
    const waitMs = res.nextDueAt === undefined ? idleBlockMs : Math.max(5, Math.min(idleBlockMs, res.nextDueAt - res.redisNow));
    return { count: res.steps.length, waitMs };
  }

  /** Resolves once no step is running (or waiting for its completion call). */
  async function drained(): Promise<void> {
    while (running.size > 0) await slotFreed();
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
      connections = await connectWorker(options.redisUrl, log, options.redisCa);
      queue = createQueue({ redis: connections.commands, queue: options.queue });
      for (const engine of options.engines) await engine.start?.();
      await followCancellations(connections.subscriber, queue.keys, (member) => {
        const r = running.get(member);
        if (!r) return;
        r.stop({ kind: "cancelled" });
        // Claimed ahead and not started: nothing runs, so let go of it now.
        dropStopped();
      });
      leaseKeeper = startLeaseKeeper({ queue, leaseMs, steps: () => [...running.values()], onError: reportError, after: dropStopped });
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
      await drained();
      return count;
    },

    /** Claims and runs steps until stop() is called. */
    async runForever(): Promise<void> {
      if (!started) await this.start();
      looping = true;
      let backoff = 100;
      while (!stopping) {
        const free = capacity() - running.size - reserved;
        if (free <= 0) {
          await slotFreed();
          continue;
        }
        try {
          const { count, waitMs } = await claim(free);
          backoff = 100;
          if (count > 0 || stopping) continue;
          // Nothing ready: sleep on the routes' markers until a submit (or
          // the next scheduled step) wakes us.
          await waitForWork((connections as WorkerConnections).blocking, q().keys, routes, waitMs);
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
    connections?.blocking.disconnect();
    wakeSlotWaiters();
    // Steps claimed ahead never started: another worker can take them now.
    if (handBackTimer) clearTimeout(handBackTimer);
    const unstarted = ready;
    ready = [];
    await handBackUnstarted(unstarted, "stopping");
    await Promise.race([drained(), sleep(grace)]);
    // Steps that finished and wait for their completion call are not handed back.
    const left = [...running.values()].filter((r) => r.result === undefined);
    if (left.length > 0 && queue) {
      // Still running: they stop, and stay in `running` until their engines have.
      const n = await handBack(left, "stopping");
      if (n !== undefined) log.info("released steps", { count: n });
      // Their engines stop (they saw the shutdown signal) before engines close.
      await Promise.race([drained(), sleep(5000)]);
    }
    leaseKeeper?.stop();
    sweeper?.stop();
    for (const engine of options.engines) await engine.close?.().catch(() => {});
    await queue?.workerEvent(EventType.WORKER_LEFT, id, routes).catch(() => {});
    await connections?.close();
    log.info("stopped");
  }
}
