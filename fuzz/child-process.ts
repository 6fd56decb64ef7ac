/**
 * A stepq server or worker run as a real child process
 * (`node --import tsx <entry>`), so a crash is an exit the fuzzer sees, not
 * an exception in its own process. Output is kept (bounded) for the report.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** A running child and what is known about its end. */
export interface FuzzChild {
  readonly pid: number;
  /** Resolves with the first match of `pattern` in the output (rejects if the child exits first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** How many characters it has printed so far (an offset for `outputSince`). */
  outputLength(): number;
  /** What it printed after `offset` (empty if that part was already dropped). */
  outputSince(offset: number): string;
  /** The last `chars` characters of output. */
  tail(chars?: number): string;
  /** Set once it exited: how. */
  exit(): { code: number | null; signal: string | null } | undefined;
  /** Called once if it exits without `stop` having been called. */
  onUnexpectedExit(listener: (how: { code: number | null; signal: string | null }) => void): void;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Starts `node --import tsx <entry> ...args` in the repository root, with the `preload` modules (repository paths) imported first. */
export function startFuzzChild(entry: string, args: readonly string[], env: NodeJS.ProcessEnv, preload: readonly string[] = []): FuzzChild {
  const imports = preload.flatMap((p) => ["--import", pathToFileURL(join(REPO_ROOT, p)).href]);
  const child = spawn(process.execPath, ["--import", "tsx", ...imports, join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  let dropped = 0;
  let how: { code: number | null; signal: string | null } | undefined;
  let stopping = false;
  const listeners: ((h: { code: number | null; signal: string | null }) => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2_000_000) {
      dropped += out.length - 1_000_000;
      out = out.slice(-1_000_000);
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child);
      how = { code, signal };
      if (!stopping) for (const l of listeners) l(how);
      resolve();
    }),
  );
  return {
    pid: child.pid as number,
    tail: (chars = 4000) => out.slice(-chars),
    outputLength: () => dropped + out.length,
    outputSince: (offset) => (offset < dropped ? "" : out.slice(offset - dropped)),
    exit: () => how,
    onUnexpectedExit: (l) => listeners.push(l),
    async waitFor(pattern, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(pattern);
        if (m) return m;
        if (how) throw new Error(`${entry} exited (${how.code ?? how.signal}) before printing ${pattern}:\n${out.slice(-4000)}`);
        if (Date.now() > until) throw new Error(`${entry} did not print ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop(graceMs = 10_000) {
      stopping = true;
      if (how) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
