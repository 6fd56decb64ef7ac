/**
 * What the fuzzer runs against: a private redis-server, the stepq server
 * as a child process, and one echo worker next to it (so submitted steps
 * run and streams have output). A server that crashes is recorded and
 * started again on a new port, so one crash does not hide the next finding.
 */
import { readFileSync } from "node:fs";
import { startRedisProcess, type RedisProcess } from "../runtime/redis-process.js";
import { type FuzzChild, startFuzzChild } from "./child-process.js";

/** How the server ended when it was not asked to. */
export interface ServerCrash {
  code: number | null;
  signal: string | null;
  /** When it was seen (ms since the run started). */
  atMs: number;
  /** The end of its output: the stack of what killed it. */
  outputTail: string;
}

export interface FuzzStack {
  /** The current server's base URL (changes after a restart). */
  url(): string;
  serverPid(): number;
  /** Whether the server is running now. */
  serverUp(): boolean;
  crashes(): readonly ServerCrash[];
  /** Resolves once a server is up again after a crash. */
  restartAfterCrash(): Promise<void>;
  /** Called when the server exits unexpectedly. */
  onCrash(listener: (crash: ServerCrash) => void): void;
  /** Offset into the current server's output (for `serverLogSince`). */
  serverLogOffset(): number;
  /** The current server's output since `offset`. */
  serverLogSince(offset: number): string;
  /** The server's resident memory now (kB, from /proc/<pid>/status). */
  serverRssKb(): number;
  /** The server's RSS and live memory in kB right after a full garbage collection (see collect-garbage-on-signal.ts). */
  serverMemoryAfterGc(): Promise<{ rssKb: number; liveKb: number }>;
  stop(): Promise<void>;
}

export interface FuzzStackOptions {
  /** Extra server flags. */
  serverArgs?: readonly string[];
  workerConcurrency?: number;
  log?: (line: string) => void;
}

/** VmRSS of `pid` in kB (0 when the process is gone). */
export function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export async function startFuzzStack(o: FuzzStackOptions = {}): Promise<FuzzStack> {
  const started = performance.now();
  const redis: RedisProcess = await startRedisProcess();
  const env = { REDIS_URL: redis.url, STEPQ_LOG_LEVEL: "info", STEPQ_LOG_FORMAT: "text" };
  const crashes: ServerCrash[] = [];
  const listeners: ((c: ServerCrash) => void)[] = [];
  let server: FuzzChild;
  let url = "";
  let restarting: Promise<void> | undefined;
  let gcs = 0;

  const startServer = async () => {
    const child = startFuzzChild("server/main.ts", ["--port", "0", ...(o.serverArgs ?? [])], env, ["fuzz/collect-garbage-on-signal.ts"]);
    child.onUnexpectedExit((how) => {
      const crash = { ...how, atMs: performance.now() - started, outputTail: child.tail(3000) };
      crashes.push(crash);
      o.log?.(`server exited unexpectedly (${how.code ?? how.signal})`);
      for (const l of listeners) l(crash);
    });
    const [, u] = await child.waitFor(/listening url=(http:\/\/\S+)/);
    server = child;
    gcs = 0;
    url = u as string;
  };
  await startServer();
  const worker = startFuzzChild("worker/main.ts", ["--concurrency", String(o.workerConcurrency ?? 4), "--engines", "echo", "--shutdown-grace", "1s"], env);
  await worker.waitFor(/started routes=echo/);

  return {
    url: () => url,
    serverPid: () => server.pid,
    serverUp: () => server.exit() === undefined,
    crashes: () => crashes,
    onCrash: (l) => listeners.push(l),
    restartAfterCrash() {
      if (server.exit() === undefined) return restarting ?? Promise.resolve();
      restarting ??= startServer().finally(() => (restarting = undefined));
      return restarting;
    },
    serverRssKb: () => rssKb(server.pid),
    async serverMemoryAfterGc() {
      if (server.exit() !== undefined) return { rssKb: 0, liveKb: 0 };
      const n = ++gcs;
      process.kill(server.pid, "SIGUSR2");
      const [, rss, live] = await server.waitFor(new RegExp(`fuzz-gc ${n} rss=(\\d+) live=(\\d+)`), 30_000);
      return { rssKb: Number(rss), liveKb: Number(live) };
    },
    serverLogOffset: () => server.outputLength(),
    serverLogSince: (offset) => server.outputSince(offset),
    async stop() {
      await worker.stop();
      await server.stop();
      await redis.stop();
    },
  };
}
