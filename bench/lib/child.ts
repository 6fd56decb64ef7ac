/**
 * The benchmark's child processes (stepq server and workers, BullMQ workers,
 * ceiling servers): TypeScript entry points started as
 * `node --import tsx file.ts` (never the tsx CLI, whose extra process would
 * outlive a kill). Their output is kept so the orchestrator can wait for a
 * line, and every child still running is killed when the benchmark exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is bench/lib/child.ts). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A running child process. */
export interface Child {
  readonly pid: number | undefined;
  /** Resolves with the first match of `pattern` in the output printed after `fromOffset` (default: all of it). */
  waitFor(pattern: RegExp, timeoutMs?: number, fromOffset?: number): Promise<RegExpMatchArray>;
  /** How many characters of output were seen so far (an offset for waitFor). */
  outputLength(): number;
  /** Writes one line to its stdin. */
  send(line: string): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/**
 * Extra node flags for stepq's children, e.g. `--cpu-prof --cpu-prof-dir=DIR`
 * (set by `bench/run.ts --profile`).
 */
export const childNodeFlags: string[] = [];

/** Starts `node [flags] --import tsx <entry> ...args` in the repository root. */
export function startChild(entry: string, args: readonly string[], opts: { profile?: boolean; env?: NodeJS.ProcessEnv } = {}): Child {
  const flags = opts.profile ? childNodeFlags : [];
  const child = spawn(process.execPath, [...flags, "--import", "tsx", join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, STEPQ_LOG_LEVEL: "info", STEPQ_LOG_FORMAT: "text", ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  const onData = (d: Buffer) => {
    out += d.toString();
    // Keep memory bounded: long runs print little, but a dump can be large.
    if (out.length > 50_000_000) out = out.slice(-25_000_000);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      resolve();
    }),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;

  return {
    pid: child.pid,
    outputLength: () => out.length,
    async waitFor(pattern, timeoutMs = 60_000, fromOffset = 0) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = out.slice(fromOffset).match(pattern);
        if (m) return m;
        if (!alive()) throw new Error(`${entry} exited before printing ${pattern}:\n${out.slice(-4000)}`);
        if (Date.now() > until) throw new Error(`${entry} did not print ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    async stop(graceMs = 10_000) {
      if (!alive()) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
