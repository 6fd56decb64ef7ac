/**
 * The faults of a chaos run: every few seconds one random worker process is
 * SIGKILLed and started again after a short pause, and once, at a chosen
 * moment, Redis itself is SIGKILLed and restarted on the same port and data.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ChaosCluster } from "./cluster.js";
import type { Prng } from "./prng.js";

/** When and how hard to strike. */
export interface MonkeyOptions {
  /** Mean time between two worker kills (each gap is 0.5x to 1.5x this). */
  killEveryMs: number;
  /** When to kill Redis, ms after the start; undefined: never. */
  redisKillAtMs: number | undefined;
  /** How long Redis stays down. */
  redisDownMs: number;
  log(line: string): void;
}

/** A running monkey. */
export interface ChaosMonkey {
  readonly workerKills: number;
  readonly redisKills: number;
  /** Stops striking and waits for killed processes to be started again; rejects if a restart failed. */
  stop(): Promise<void>;
}

/** Starts striking `cluster` at once. */
export function startChaosMonkey(cluster: ChaosCluster, rng: Prng, options: MonkeyOptions): ChaosMonkey {
  const stopping = new AbortController();
  const pending = new Set<Promise<void>>();
  let workerKills = 0;
  let redisKills = 0;
  const started = Date.now();
  const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

  const failures: unknown[] = [];
  const track = (p: Promise<void>) => {
    const settled = p.catch((e: unknown) => void failures.push(e)).finally(() => pending.delete(settled));
    pending.add(settled);
  };
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal }).then(
    () => true,
    () => false,
  );

  async function killWorkers() {
    while (await pause(options.killEveryMs * (0.5 + rng.next()))) {
      const alive = Array.from({ length: cluster.workerCount }, (_, i) => i).filter((i) => cluster.workerAlive(i));
      // Keep one worker standing, so the run always makes progress.
      if (alive.length <= 1) continue;
      const slot = rng.pick(alive);
      await cluster.killWorker(slot);
      workerKills++;
      const downMs = rng.int(200, 1500);
      options.log(`${since()} SIGKILL worker ${slot}; restarting it in ${downMs} ms`);
      // The restart happens even when the monkey is stopping: the drain needs every worker.
      track(sleep(downMs).then(() => cluster.restartWorker(slot)));
    }
  }

  async function killRedis(atMs: number) {
    if (!(await pause(atMs))) return;
    await cluster.redis.kill("SIGKILL");
    redisKills++;
    options.log(`${since()} SIGKILL redis; restarting it in ${options.redisDownMs} ms`);
    await sleep(options.redisDownMs);
    await cluster.redis.restart();
    options.log(`${since()} redis is back (AOF replayed)`);
  }

  track(killWorkers());
  if (options.redisKillAtMs !== undefined) track(killRedis(options.redisKillAtMs));

  return {
    get workerKills() {
      return workerKills;
    },
    get redisKills() {
      return redisKills;
    },
    async stop() {
      stopping.abort();
      while (pending.size > 0) await Promise.all(pending);
      if (failures.length > 0) throw failures[0];
    },
  };
}
