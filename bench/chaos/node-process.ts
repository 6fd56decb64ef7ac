/**
 * One TypeScript entry point of this repository run as a real child process
 * (`node --import tsx file.ts`, never the tsx CLI, whose extra child would
 * survive a SIGKILL), so the chaos run can SIGKILL it for real. Its output
 * goes to a log file and is kept in memory briefly, to wait for a line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (bench/chaos/ is two levels down). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A running (or exited) child process. */
export interface NodeProcess {
  readonly pid: number | undefined;
  /** Whether it has not exited yet. */
  readonly alive: boolean;
  /** Resolves with the first match of `pattern` in its output; rejects if it exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

/** Starts `node --import tsx <entry> ...args` in the repository root; output is appended to `logFile`. */
export function startNodeProcess(entry: string, args: readonly string[], logFile: string): NodeProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, STEPQ_LOG_LEVEL: process.env.STEPQ_LOG_LEVEL ?? "info", STEPQ_LOG_FORMAT: "text" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const file = createWriteStream(logFile, { flags: "a" });
  let recent = "";
  const onData = (d: Buffer) => {
    file.write(d);
    recent = (recent + d.toString()).slice(-16_000);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      file.end(`--- exited code=${code} signal=${signal}\n`);
      resolve();
    }),
  );
  const isAlive = () => child.exitCode === null && child.signalCode === null;

  return {
    pid: child.pid,
    get alive() {
      return isAlive();
    },
    async waitFor(pattern, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = recent.match(pattern);
        if (m) return m;
        if (!isAlive()) throw new Error(`${entry} exited before printing ${pattern}; see ${logFile}`);
        if (Date.now() > until) throw new Error(`${entry} did not print ${pattern} within ${timeoutMs} ms; see ${logFile}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async kill(signal) {
      if (isAlive()) child.kill(signal);
      await exited;
    },
    async stop(graceMs) {
      if (!isAlive()) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
