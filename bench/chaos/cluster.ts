/**
 * The system under test: a private redis-server with AOF (`appendfsync
 * always`), one server process and N worker processes, each a real process
 * so that a SIGKILL is a real crash. Worker slots can be killed and started
 * again; Redis can be killed and restarted on the same port and data.
 */
import { ZONE_TAG } from "./job-plan.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type RedisProcess, startRedisProcess } from "../../runtime/redis-process.js";
import { type NodeProcess, startNodeProcess } from "./node-process.js";

/** What the cluster is started with. */
export interface ClusterOptions {
  /** Folder for Redis data and process logs. */
  dir: string;
  workers: number;
  /** Steps each worker runs at once. */
  concurrency: number;
  /** Worker lease; short, so crashed workers' steps are recovered during the run. */
  leaseMs: number;
}

/** The running system. */
export interface ChaosCluster {
  readonly redis: RedisProcess;
  /** The server's base URL. */
  readonly serverUrl: string;
  readonly workerCount: number;
  /** Whether worker slot `slot` has a live process. */
  workerAlive(slot: number): boolean;
  /** SIGKILLs the worker in `slot` and waits for it to be gone. */
  killWorker(slot: number): Promise<void>;
  /** Starts a new worker process in `slot` (a fresh worker id) without waiting for it to be ready. */
  restartWorker(slot: number): void;
  /** Stops every process: workers and server gracefully (briefly), then Redis. */
  stop(): Promise<void>;
}

/** Starts Redis, the server and the workers, and resolves once all are ready. */
export async function startCluster(options: ClusterOptions): Promise<ChaosCluster> {
  const logs = join(options.dir, "logs");
  mkdirSync(logs, { recursive: true });
  const redis = await startRedisProcess({ dir: join(options.dir, "redis"), appendFsync: "always" });
  const server = startNodeProcess("server/main.ts", ["--port", "0", "--redis-url", redis.url, "--shutdown-grace", "1s"], join(logs, "server.log"));
  const generations = new Array<number>(options.workers).fill(0);
  const workers: NodeProcess[] = [];
  const startWorker = (slot: number) => {
    const gen = ++generations[slot]!;
    const args = ["--redis-url", redis.url, "--concurrency", String(options.concurrency), "--lease", `${options.leaseMs}ms`];
    args.push("--shutdown-grace", "1s", "--worker-id", `chaos-w${slot}-g${gen}`);
    // Even slots have the tag a quarter of the steps require (capability routing; the audit checks who ran them).
    if (slot % 2 === 0) args.push("--tag", ZONE_TAG);
    workers[slot] = startNodeProcess("worker/main.ts", args, join(logs, `worker-${slot}.log`));
  };
  // A harness that dies (Ctrl-C, a thrown error) must not leave processes behind.
  const killAll = () => {
    const live = [server, ...workers].filter((p) => p.alive).map((p) => p.pid);
    for (const pid of [...live, redis.pid]) {
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killAll);

  try {
    for (let slot = 0; slot < options.workers; slot++) startWorker(slot);
    const [, url] = (await server.waitFor(/listening url=(\S+)/)) as [string, string];
    await Promise.all(workers.map((w) => w.waitFor(/started routes=echo/)));
    return {
      redis,
      serverUrl: url,
      workerCount: options.workers,
      workerAlive: (slot) => workers[slot]?.alive ?? false,
      killWorker: async (slot) => workers[slot]?.kill("SIGKILL"),
      restartWorker: startWorker,
      async stop() {
        await Promise.all([server, ...workers].map((p) => p.stop(3000)));
        await redis.stop();
        process.off("exit", killAll);
      },
    };
  } catch (e) {
    killAll();
    process.off("exit", killAll);
    throw e;
  }
}
