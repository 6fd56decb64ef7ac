/**
 * The worker runtime: claims steps of the routes its engines serve, runs up
 * to `concurrency` at once, renews their leases in one batched call, streams
 * their output, and completes, fails or releases each one. It blocks on the
 * routes' wake-up markers when idle (no polling), and stops gracefully.
 *
 * Its parts: StepSlots (the steps it holds and its free slots), the claim
 * loop (runForever, below), run-step.ts (one step from engine to outcome),
 * the settler (completions and the replacements claimed with them),
 * HandBack (leases returned unused), the lease keeper, and shutdown (below).
 */
import { randomBytes } from "node:crypto";
import { hostname, totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { coerceError } from "../queue/errors.js";
import type { ClaimedStep } from "../queue/leases.js";
import { createQueue, type Queue } from "../queue/queue.js";
import { startSweeper, type Sweeper } from "../queue/sweeper.js";
import { baseRoute } from "../queue/requirements.js";
import { followCancellations, followNewRoutes, waitForWork, wakeWorker } from "../queue/worker-signals.js";
import { checkWorkerId } from "../queue/worker-registry.js";
import { createLogger, type Logger } from "../runtime/logger.js";
import type { Engine, StopSignal } from "./engines/engine.js";
import { ClaimRoutes } from "./claim-routes.js";
import { HandBack } from "./hand-back.js";
import { type LeaseKeeper, startLeaseKeeper } from "./lease-keeper.js";
import { createPrefetch, type Prefetch } from "./prefetch.js";
import { type Registration, register } from "./registration.js";
import { runStep, type StepRunHost } from "./run-step.js";
import { RunningStep, type StepHost } from "./running-step.js";
import { createSettler, SETTLE_CALLS, type Settler } from "./settler.js";
import { settled } from "./settled.js";
import { StepSlots } from "./step-slots.js";
import { whileUnavailable } from "./while-unavailable.js";
import { connectWorker, type WorkerConnections } from "./worker-connections.js";
import { WorkerReports } from "./worker-reports.js";
import type { Listener, Worker, WorkerEvents, WorkerOptions } from "./worker-options.js";

export type { Worker, WorkerEvents, WorkerOptions };

/** Creates a worker; call start() then runForever() (or runOnce() in tests). */
export function createWorker(options: WorkerOptions): Worker {
  return new StepqWorker(options);
}

class StepqWorker implements Worker {
  readonly id: string;
  readonly routes: string[];
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly graceMs: number;
  private readonly idleBlockMs: number;
  private readonly log: Logger;
  private readonly reports: WorkerReports;
  private readonly slots: StepSlots;
  private readonly prefetch: Prefetch;
  private readonly handBack: HandBack;
  private readonly settler: Settler;
  private readonly routeEngine = new Map<string, Engine>();
  private readonly claimFrom: ClaimRoutes;
  private readonly stepHost: StepHost;
  private readonly runHost: StepRunHost;
  private connections: WorkerConnections | undefined;
  private queue: Queue | undefined;
  private sweeper: Sweeper | undefined;
  private leaseKeeper: LeaseKeeper | undefined;
  private registration: Registration | undefined;
  private started = false;
  private stopping = false;
  /** runForever is running (settle calls then claim replacements; runOnce's do not). */
  private looping = false;
  private stopped: Promise<void> | undefined;

  constructor(private readonly options: WorkerOptions) {
    this.id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    checkWorkerId(this.id);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.leaseMs = options.leaseMs ?? 30_000;
    this.graceMs = options.shutdownGraceMs ?? 30_000;
    this.idleBlockMs = options.idleBlockMs ?? 5000;
    this.log = (options.logger ?? createLogger("worker")).child("", { worker: this.id });
    this.reports = new WorkerReports(this.log);
    for (const engine of options.engines) {
      for (const route of engine.routes()) if (!this.routeEngine.has(route)) this.routeEngine.set(route, engine);
    }
    this.routes = [...this.routeEngine.keys()];
    this.claimFrom = new ClaimRoutes(
      { id: this.id, routes: this.routes, tags: options.tags ?? [], memoryMb: options.memoryMb ?? Math.floor(totalmem() / 2 ** 20) },
      { only: options.tenants ?? [], except: options.excludeTenants ?? [] },
    );
    this.slots = new StepSlots(this.concurrency);
    const prefetchMs = options.prefetchMs ?? 2;
    this.prefetch = createPrefetch({ concurrency: this.concurrency, horizonMs: prefetchMs, max: Math.max(512, 4 * this.concurrency) });
    const q = () => this.q();
    this.stepHost = { queue: q, flushMs: options.flushMs ?? 2, log: this.log };
    this.handBack = new HandBack({
      queue: q,
      workerId: this.id,
      slots: this.slots,
      prefetch: this.prefetch,
      waitMs: Math.max(50, 10 * prefetchMs),
      released: (r) => this.reports.listeners.emit("step:released", { stepId: r.step.stepId, attempt: r.step.attempt }),
      reportError: (e) => this.reports.error(e),
    });
    this.settler = createSettler({
      queue: q,
      workerId: this.id,
      claimFrom: () => ({ routes: this.claimFrom.current, tenantFilter: this.claimFrom.tenantFilter }),
      routeCount: (n) => void this.routesSeen(n),
      leaseMs: this.leaseMs,
      // A share of the leases per call, so that calls overlap with this process's work.
      batchMax: () => Math.max(1, Math.ceil(this.capacity() / SETTLE_CALLS)),
      claimable: (settling) => {
        // A completed step keeps its lease's place until its settle call, so a
        // saturated worker's replacements come from that call rather than
        // from the claim loop.
        const n = this.stopping || !this.looping ? 0 : Math.max(0, this.slots.free(this.capacity()) + settling);
        this.slots.reserved += n;
        return n;
      },
      unreserve: (n) => {
        this.slots.reserved -= n;
      },
      whileUnavailable,
      settled: (r, err) => settled(r, err, (x) => this.slots.release(x), this.reports),
      claimed: (steps) => this.launchAll(steps),
    });
    this.runHost = {
      workerId: this.id,
      queue: q,
      engineFor: (route) => this.routeEngine.get(baseRoute(route)),
      reports: this.reports,
      slotFreed: (ms) => {
        this.slots.active--;
        this.prefetch.record(ms);
        this.pump();
      },
      settle: (r) => this.settler.add(r),
      release: (r) => this.slots.release(r),
    };
  }

  get claimRoutes(): readonly string[] {
    return this.claimFrom.current;
  }

  get running(): number {
    return this.slots.held.size;
  }

  on<K extends keyof WorkerEvents>(event: K, fn: Listener<K>): void {
    this.reports.listeners.on(event, fn);
  }

  async start(): Promise<void> {
    if (this.started) return;
    if (this.routes.length === 0) throw new Error("worker has no routes: give it at least one engine");
    const connections = await connectWorker(this.options.redisUrl, this.log, this.options.redisCa);
    this.connections = connections;
    const queue = createQueue({ redis: connections.commands, queue: this.options.queue });
    this.queue = queue;
    for (const engine of this.options.engines) await engine.start?.();
    await followCancellations(connections.subscriber, queue.keys, (member) => {
      const r = this.slots.held.get(member);
      if (!r) return;
      r.stop({ kind: "cancelled" });
      // Claimed ahead and not started: nothing runs, so let go of it now.
      this.dropStopped();
    });
    const onError = (e: Error) => this.reports.error(e);
    await this.claimFrom.start(queue);
    // A step with requirements no step had before: a worker meeting them
    // wakes (and then claims from the new route).
    await followNewRoutes(connections.subscriber, queue.keys, (route) => {
      if (this.claimFrom.accepts(route)) wakeWorker(queue.redis, queue.keys, this.id).catch(onError);
    });
    this.leaseKeeper = startLeaseKeeper({ queue, leaseMs: this.leaseMs, steps: () => [...this.slots.held.values()], onError, after: () => this.dropStopped() });
    this.sweeper = startSweeper(queue, { intervalMs: this.options.sweepIntervalMs ?? 1000, onError });
    this.started = true;
    const self = {
      id: this.id,
      routes: this.routes,
      concurrency: this.concurrency,
      stepsInHand: () => this.slots.held.size,
      engines: this.options.engines.map((e) => e.name),
      claimRoutes: this.claimFrom,
      routeCount: (n: number) => void this.routesSeen(n),
    };
    this.registration = await register(queue, self, this.options.heartbeatMs ?? 5000, onError);
    await queue.workerEvent(EventType.WORKER_JOINED, this.id, this.routes).catch((e: unknown) => this.reports.error(coerceError(e)));
    this.log.info("started", { routes: this.routes.join(","), concurrency: this.concurrency, leaseMs: this.leaseMs });
  }

  async runOnce(): Promise<number> {
    if (!this.started) await this.start();
    const { count } = await this.claim(this.slots.free(this.concurrency));
    await this.slots.drained();
    return count;
  }

  async runForever(): Promise<void> {
    if (!this.started) await this.start();
    this.looping = true;
    let backoff = 100;
    while (!this.stopping) {
      const free = this.slots.free(this.capacity());
      if (free <= 0) {
        await this.slots.freed();
        continue;
      }
      try {
        const { count, waitMs, newRoutes } = await this.claim(free);
        backoff = 100;
        if (count > 0 || newRoutes || this.stopping) continue;
        // Nothing ready: sleep on the routes' markers until a submit (or
        // the next scheduled step) wakes us.
        await waitForWork((this.connections as WorkerConnections).blocking, this.q().keys, this.claimFrom.current, waitMs, this.id);
      } catch (e) {
        if (this.stopping) break;
        this.reports.error(coerceError(e));
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  stop(grace = this.graceMs): Promise<void> {
    this.stopped ??= this.shutdown(grace);
    return this.stopped;
  }

  private q(): Queue {
    if (!this.queue) throw new Error("worker not started: call start() first");
    return this.queue;
  }

  /** Leases the worker may hold now: its concurrency, plus what it claims ahead. */
  private capacity(): number {
    return this.looping && !this.stopping ? this.concurrency + this.prefetch.extra : this.concurrency;
  }

  /** Starts claimed steps while slots are free. */
  private pump(): void {
    const slots = this.slots;
    while (slots.active < this.concurrency && slots.ready.length > 0) {
      const r = slots.ready.shift() as RunningStep;
      if (r.stopped) continue; // cancelled or lost while it waited: already let go
      slots.active++;
      this.handBack.noteStart();
      void runStep(r, this.runHost).catch((e: unknown) => {
        this.reports.error(coerceError(e));
        slots.release(r);
      });
    }
    if (slots.ready.length > 0) this.handBack.watch();
  }

  /** Takes over steps a claim returned: they run as slots free up. */
  private launchAll(steps: readonly ClaimedStep[]): void {
    for (const step of steps) {
      const r = new RunningStep(step, this.stepHost, this.leaseMs);
      this.slots.held.set(step.member, r);
      if (this.reports.listeners.has("step:claimed")) this.reports.listeners.emit("step:claimed", { stepId: step.stepId, attempt: step.attempt, route: step.route, queuedMs: r.queuedMs });
      this.slots.ready.push(r);
    }
    this.pump();
  }

  /** Lets go of steps claimed ahead that were cancelled or lost their lease before they started. */
  private dropStopped(): void {
    const slots = this.slots;
    const lost = slots.ready.filter((r) => r.stopped);
    if (lost.length === 0) return;
    slots.ready = slots.ready.filter((r) => !r.stopped);
    for (const r of lost) {
      this.reports.abandoned(r, (r.stopped as StopSignal).kind);
      slots.release(r);
    }
  }

  /** `newRoutes`: the claim routes grew (steps with new requirements it meets): claim again before waiting. */
  private async claim(max: number): Promise<{ count: number; waitMs: number; newRoutes: boolean }> {
    this.slots.reserved += max;
    let res;
    try {
      res = await this.q().claim({ workerId: this.id, routes: this.claimFrom.current, tenantFilter: this.claimFrom.tenantFilter, leaseMs: this.leaseMs, max });
    } finally {
      this.slots.reserved -= max;
    }
    this.launchAll(res.steps);
    const waitMs = res.nextDueAt === undefined ? this.idleBlockMs : Math.max(5, Math.min(this.idleBlockMs, res.nextDueAt - res.redisNow));
    return { count: res.steps.length, waitMs, newRoutes: await this.routesSeen(res.routeCount) };
  }

  /** A reply said how many routes the queue has: reads them again if that changed; true when the claim routes grew. */
  private async routesSeen(routeCount: number): Promise<boolean> {
    try {
      const grew = await this.claimFrom.seen(this.q(), routeCount);
      // The new routes' live-worker sets learn of this worker now, not at its next heartbeat.
      if (grew) this.registration?.renew();
      return grew;
    } catch (e) {
      this.reports.error(coerceError(e));
      return false;
    }
  }

  /** Stops claiming, waits up to `grace` for running steps, hands back the rest, closes. */
  private async shutdown(grace: number): Promise<void> {
    this.stopping = true;
    this.connections?.blocking.disconnect();
    this.slots.wake();
    // Steps claimed ahead never started: another worker can take them now.
    this.handBack.cancel();
    await this.handBack.unstarted(this.slots.takeReady(), "stopping");
    await Promise.race([this.slots.drained(), sleep(grace)]);
    // Steps that finished and wait for their completion call are not handed back.
    const left = [...this.slots.held.values()].filter((r) => r.result === undefined);
    if (left.length > 0 && this.queue) {
      // Still running: they stop, and stay held until their engines have.
      const n = await this.handBack.steps(left, "stopping");
      if (n !== undefined) this.log.info("released steps", { count: n });
      // Their engines stop (they saw the shutdown signal) before engines close.
      await Promise.race([this.slots.drained(), sleep(5000)]);
    }
    this.leaseKeeper?.stop();
    this.sweeper?.stop();
    await this.registration?.stop();
    for (const engine of this.options.engines) await engine.close?.().catch(() => {});
    await this.queue?.workerEvent(EventType.WORKER_LEFT, this.id, this.routes).catch(() => {});
    await this.connections?.close();
    this.log.info("stopped");
  }
}
