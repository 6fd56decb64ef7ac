/**
 * Child processes for tests: started with output captured, waited for a
 * line, stopped with a signal, and always killed: at the end of the test
 * that started them, or after the file for those started at its top level.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, onTestFinished } from "vitest";

export interface Proc {
  child: ChildProcess;
  /** Everything printed so far (stdout + stderr). */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in the output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited(): Promise<number | null>;
}

export function startProcess(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Proc {
  // Logs in the one-line text format the tests wait on (STEPQ_LOG_FORMAT=json in `env` for JSON).
  const child = spawn(cmd, args, { env: { ...process.env, STEPQ_LOG_FORMAT: "text", ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const cleanup = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  // Started inside a test: killed when that test ends, passed or failed (vitest never runs an
  // afterAll registered inside a test, so a test that failed before stop() left its processes
  // running). Started at a file's top level: after the file.
  try {
    onTestFinished(cleanup);
  } catch {
    afterAll(cleanup);
  }
  return {
    child,
    output: () => out + err,
    stdout: () => out,
    stderr: () => err,
    exited: () => exit,
    async waitFor(pattern, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = (out + err).match(pattern);
        if (m) return m;
        if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before printing ${pattern}:\n${out}${err}`);
        if (Date.now() > until) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}
