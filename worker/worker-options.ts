/**
 * A worker's public face: what it is configured with, what it does
 * (`Worker`), and the events it reports (for tests, tools and embedding
 * applications: `worker.on("step:completed", …)`).
 */
import type { Logger } from "../runtime/logger.js";
import type { Engine, StopSignal } from "./engines/engine.js";

export interface WorkerOptions {
  redisUrl: string;
  /** PEM of the CA a `rediss://` Redis's certificate chains to. */
  redisCa?: string;
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
  /**
   * Claim ahead: the expected work per slot a worker may hold beyond what it
   * runs, ms (see prefetch.ts). Only short steps are claimed ahead; 0 turns
   * it off. Default 2 ms.
   */
  prefetchMs?: number;
  /** Longest idle block before re-checking. Default 5 s. */
  idleBlockMs?: number;
  sweepIntervalMs?: number;
  /** How often the worker renews its record in the worker registry (it expires after three of these). Default 5 s. */
  heartbeatMs?: number;
  /** Its "key=value" tags, matched by steps' Requirements.tags. */
  tags?: readonly string[];
  /** The memory it advertises, MiB (Requirements.min_memory_mb). Default: the machine's total memory. */
  memoryMb?: number;
  /** The only tenants (names) whose steps it claims. */
  tenants?: readonly string[];
  /** Tenants (names) whose steps it never claims. */
  excludeTenants?: readonly string[];
  logger?: Logger;
}

/** Worker events, `noun:verb`. */
export interface WorkerEvents {
  /** A step was leased and is about to run; `queuedMs` it waited from becoming ready to this claim, by Redis's clock. */
  "step:claimed": { stepId: string; attempt: number; route: string; queuedMs: number };
  /**
   * A step succeeded: `durationMs` from its run's start to its completion call, `heldMs` from
   * its claim to then, `tokens` it generated, `firstTokenMs` from its run's start to the first
   * token (when the engine says), `submitToFirstTokenMs` from its job's submit to that token and
   * `submitToDoneMs` to the completion (the time before the claim by Redis's clock, the rest by
   * this process's: no clock skew between hosts enters them).
   */
  "step:completed": {
    stepId: string;
    attempt: number;
    route: string;
    durationMs: number;
    heldMs: number;
    tokens: number;
    firstTokenMs?: number;
    submitToFirstTokenMs?: number;
    submitToDoneMs: number;
  };
  /**
   * An attempt failed; `retryAt` is set when the queue will try again, `submitToDoneMs` (from
   * its job's submit, as for step:completed) when it will not. `heldMs` from its claim.
   */
  "step:failed": { stepId: string; attempt: number; route: string; message: string; retryAt?: number; heldMs: number; submitToDoneMs?: number };
  /** The worker stopped a step it no longer owns (cancelled, or the lease was lost). */
  "step:abandoned": { stepId: string; attempt: number; route: string; reason: StopSignal["kind"] };
  /** A stopping worker handed a step back to the queue. */
  "step:released": { stepId: string; attempt: number };
  /** Something went wrong outside a step (Redis away...); the worker carries on. */
  "worker:error": { error: Error };
}

export type Listener<K extends keyof WorkerEvents> = (payload: WorkerEvents[K]) => void;


/** A worker: start() then runForever() (or runOnce() in tests), and stop(). */
export interface Worker {
  readonly id: string;
  /** The routes its engines serve. */
  readonly routes: readonly string[];
  /** The routes it claims from now: its routes and the routes with requirements it meets. */
  readonly claimRoutes: readonly string[];
  /** Steps it holds a lease on now (running, claimed ahead, or finishing). */
  readonly running: number;
  on<K extends keyof WorkerEvents>(event: K, fn: Listener<K>): void;
  /** Connects, loads engines, subscribes to cancellations, starts lease renewal and the sweeper. */
  start(): Promise<void>;
  /** Claims what is ready now (up to `concurrency` steps), runs it to the end, and returns how many steps ran. For tests and one-shot use. */
  runOnce(): Promise<number>;
  /** Claims and runs steps until stop() is called. */
  runForever(): Promise<void>;
  /**
   * Stops claiming, lets running steps finish for up to `grace` ms, then
   * hands the rest back to the queue (another worker takes them at once)
   * and closes connections.
   */
  stop(grace?: number): Promise<void>;
}
