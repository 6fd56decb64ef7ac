/**
 * A private `redis-server` process: what `stepq dev`, the tests, the chaos
 * run and the benchmarks start instead of touching a Redis they do not own.
 * It listens on 127.0.0.1 on a free port, keeps its files in its own folder,
 * and can be stopped, SIGKILLed and restarted on the same port and data (to
 * prove recovery).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisProcessOptions {
  /** Data folder; a fresh temporary one by default. */
  dir?: string;
  /** Port; a free one by default. */
  port?: number;
  /** Append-only file on (with this fsync policy) or off. Default off. */
  appendFsync?: "always" | "everysec" | "no";
  /** More `--name value` arguments for redis-server. */
  extraArgs?: readonly string[];
  /** The executable; default `redis-server` on PATH. */
  bin?: string;
  /**
   * Pid file in the data folder. A redis-server still running from an
   * earlier, killed owner of the same folder is stopped first, so two
   * servers never share one append-only file.
   */
  pidFile?: string;
}

export interface RedisProcess {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  /** Stops it gracefully (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Kills it with `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder (after stop or kill). */
  restart(): Promise<void>;
}

/** Thrown when redis-server is not installed; its message says how to install it. */
export class RedisNotInstalledError extends Error {
  constructor(bin: string) {
    super(
      `${bin} not found on PATH. Install Redis 7+: "apt-get install redis-server" (Debian/Ubuntu), ` +
        `"brew install redis" (macOS), or set REDIS_URL to a Redis you run yourself.`,
    );
    this.name = "RedisNotInstalledError";
  }
}

/** Whether `bin` can be executed. */
export function redisServerAvailable(bin = "redis-server"): boolean {
  const r = spawnSync(bin, ["--version"], { stdio: "ignore" });
  return r.error === undefined && r.status === 0;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

let setprivAvailable: boolean | undefined;

/**
 * The command that starts `bin`: on Linux, through `setpriv --pdeathsig
 * SIGKILL` when it is there, so the redis-server dies with the process that
 * started it (a killed test run or `stepq dev` leaves no Redis behind).
 */
function withParentDeath(bin: string, args: string[]): [string, string[]] {
  if (process.platform !== "linux") return [bin, args];
  setprivAvailable ??= spawnSync("setpriv", ["--version"], { stdio: "ignore" }).status === 0;
  return setprivAvailable ? ["setpriv", ["--pdeathsig", "SIGKILL", "--", bin, ...args]] : [bin, args];
}

async function launch(bin: string, args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const [cmd, argv] = withParentDeath(bin, args);
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const append = (b: Buffer) => {
    out = (out + b.toString()).slice(-8000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (out.includes("Ready to accept connections")) finish();
    };
    const onExit = (code: number | null) => finish(new Error(`redis-server exited with ${code} during start:\n${out.trim()}`));
    const onError = (err: NodeJS.ErrnoException) =>
      finish(err.code === "ENOENT" ? new RedisNotInstalledError(bin) : err);
    const timer = setTimeout(() => finish(new Error(`redis-server did not start within 10 s:\n${out.trim()}`)), 10_000);
    function finish(err?: Error) {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
      if (err) {
        child.kill("SIGKILL");
        reject(err);
      } else resolve();
    }
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", onError);
  });
  return { child, output: () => out };
}

/** Stops a redis-server left running by an earlier owner of `pidFile`. */
async function reapStale(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return;
  }
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    // not running (or not Linux): nothing to reap
  }
  if (pid > 0 && cmdline.includes("redis-server")) {
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
  }
  rmSync(pidFile, { force: true });
}

/** Starts a private redis-server and resolves once it accepts connections. */
export async function startRedisProcess(options: RedisProcessOptions = {}): Promise<RedisProcess> {
  const bin = options.bin ?? "redis-server";
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "stepq-redis-"));
  mkdirSync(dir, { recursive: true });
  const fixedPort = options.port;

  const argsFor = (port: number) => [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--dir", dir,
    "--save", "",
    "--appendonly", options.appendFsync ? "yes" : "no",
    ...(options.appendFsync ? ["--appendfsync", options.appendFsync] : []),
    "--daemonize", "no",
    "--protected-mode", "yes",
    "--maxmemory-policy", "noeviction",
    ...(options.pidFile ? ["--pidfile", options.pidFile] : []),
    ...(options.extraArgs ?? []),
  ];
  if (options.pidFile) await reapStale(options.pidFile);

  let port = fixedPort ?? 0;
  let current: Awaited<ReturnType<typeof launch>> | undefined;
  for (let tries = 0; !current; tries++) {
    port = fixedPort ?? (await freePort());
    try {
      current = await launch(bin, argsFor(port));
    } catch (e) {
      const busy = e instanceof Error && /Address already in use/.test(e.message);
      if (!busy || fixedPort !== undefined || tries >= 5) throw e;
    }
  }

  const proc: RedisProcess = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return current?.child.pid;
    },
    async stop() {
      if (!current) return;
      const child = current.child;
      child.kill("SIGTERM");
      await exited(child);
    },
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (!current) return;
      const child = current.child;
      child.kill(signal);
      await exited(child);
    },
    async restart() {
      if (current && current.child.exitCode === null && current.child.signalCode === null) await proc.stop();
      // The port can stay in TIME_WAIT-free but briefly busy after a kill.
      for (let tries = 0; ; tries++) {
        try {
          current = await launch(bin, argsFor(port));
          return;
        } catch (e) {
          if (!(e instanceof Error && /Address already in use/.test(e.message)) || tries >= 20) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  return proc;
}
