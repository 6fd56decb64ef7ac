import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startProcess } from "./helpers/process.js";
import { useRedis } from "./helpers/redis.js";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..");
const CLI = ["--import", "tsx", join(root, "clients/cli/main.ts")];

/** Runs `stepq args...`; resolves with exit code and output (never rejects on a non-zero exit). */
async function stepq(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [...CLI, ...args], {
      env: { ...process.env, ...env },
      cwd: root,
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `stepq stats --json` until `predicate` holds (the failing step's retries take a few seconds). */
async function eventuallyStats(server: string[], predicate: (j: { routes: { route: string; deadLettered?: string }[] }) => boolean) {
  for (const until = Date.now() + 30_000; ; ) {
    const res = await stepq(["stats", ...server, "--json"]);
    const json = JSON.parse(res.stdout) as { routes: { route: string; deadLettered?: string }[] };
    if (predicate(json)) return json;
    if (Date.now() > until) throw new Error(`stats never matched: ${res.stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Pids of running processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("stepq dev", () => {
  it("starts Redis, server and worker; serves the client commands; stops cleanly on Ctrl-C leaving no process behind", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "stepq-dev-"));
    const dev = startProcess(process.execPath, [...CLI, "dev", "--port", "0", "--data-dir", dataDir], { REDIS_URL: "" }, root);
    const [, url] = await dev.waitFor(/server\s+(http:\/\/\S+)/, 30_000);
    expect(dev.stdout()).toMatch(/redis\s+redis:\/\/127\.0\.0\.1:\d+\s+\(private: data in .*redis, AOF on\)/);
    expect(dev.stdout()).toMatch(/worker .*echo, infer:stepq-tiny, embed:stepq-tiny/);
    // The dashboard is served at the server's root.
    const home = await fetch(`${url}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toMatch(/<div id="app"><\/div>/);
    expect(dev.stdout()).toMatch(/the built-in tiny model \(random weights: its text is gibberish\)/);
    const redisPid = Number(readFileSync(join(dataDir, "redis", "redis.pid"), "utf8"));
    expect(readFileSync(`/proc/${redisPid}/comm`, "utf8")).toMatch(/redis-server/);

    const server = ["--server", url as string];
    const infer = await stepq(["submit", "infer", ...server, "--prompt", "Hello", "--max-tokens", "12", "--seed", "7", "--follow"]);
    expect(infer.code, infer.stderr).toBe(0);
    expect(infer.stdout.trim().length).toBeGreaterThan(0);
    expect(infer.stderr).toMatch(/· generated 12 tokens in \d+ ms/);
    expect(infer.stderr).toMatch(/✓ \S+ succeeded: 12 tokens/);
    const id = /submitted (\S+)/.exec(infer.stderr)?.[1] as string;

    const got = await stepq(["get", ...server, id]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/state\s+succeeded/);
    expect(got.stdout).toMatch(/usage\s+\d+ prompt \+ 12 completion tokens/);
    const json = await stepq(["get", ...server, id, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id, state: "STEP_STATE_SUCCEEDED" });
    const listed = await stepq(["list", ...server, "--state", "succeeded"]);
    expect(listed.stdout).toContain(id);

    const echoed = await stepq(["submit", "echo", ...server, "--text", "x y", "--tokens", "4", "--follow"]);
    expect(echoed.stdout).toBe("x y x y \n");
    const failing = await stepq(["submit", "echo", ...server, "--fail", "on purpose", "--follow"]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/✗ \S+ (failed|scheduled|running|queued)/);

    const queued = await stepq(["submit", "infer", ...server, "--model", "nobody", "--prompt", "x"]);
    const queuedId = queued.stdout.trim();
    // Following a step nobody serves shows where it stands and why it waits, until it ends.
    const waiting = startProcess(process.execPath, [...CLI, "follow", ...server, queuedId], {}, root);
    await waiting.waitFor(/… 1st in line for infer:nobody — no live worker serves infer:nobody; it waits until one starts/);
    await stepq(["cancel", ...server, queuedId, "--reason", "test"]);
    expect(await waiting.exited()).toBe(1);
    const cancelled = await stepq(["cancel", ...server, queuedId, "--reason", "again"]);
    expect(cancelled.stdout.trim()).toBe(`${queuedId} cancelled`); // cancelling twice is fine
    const followCancelled = await stepq(["follow", ...server, queuedId]);
    expect(followCancelled.code).toBe(1);
    expect(followCancelled.stderr).toMatch(/cancelled: test/);

    // stats: the echo route's dead letter (the failing step, once its retries are spent), the
    // worker alive with its routes; --json is the contract's JSON.
    const stats = await eventuallyStats(server, (j) => j.routes.some((r) => r.route === "echo" && r.deadLettered === "1"));
    expect(stats.routes.find((r) => r.route === "infer:nobody")).toMatchObject({ route: "infer:nobody" });
    const table = await stepq(["stats", ...server, "--window", "1"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ROUTE\s+WAITING\s+QUEUED\s+SCHEDULED\s+RUNNING\s+DEAD\s+OK\/S\s+FAILED\/S$/m);
    expect(table.stdout).toMatch(/^echo\s+0\s+0\s+0\s+0\s+1\s+\d+\.\d\d\s+\d+\.\d\d$/m);
    expect(table.stdout).toMatch(/^workers:\n {2}\S+ {2}0\/\d+ in hand {2}echo,infer:stepq-tiny,embed:stepq-tiny/m);
    expect((await stepq(["stats", ...server, "--window", "16"])).stderr).toMatch(/window_minutes: must be 1 to 15/);

    expect(await dev.stop("SIGINT")).toBe(0);
    expect(dev.output()).toMatch(/stopped/);
    expect(existsSync(`/proc/${redisPid}`)).toBe(false);
    expect(processesMentioning(dataDir)).toEqual([]);
    expect(existsSync(join(dataDir, "redis", "appendonlydir"))).toBe(true);
  }, 90_000);

  it("uses the Redis at REDIS_URL instead of starting one", async () => {
    const redis = await useRedis();
    const dev = startProcess(process.execPath, [...CLI, "dev", "--port", "0", "--model", "tiny", "--data-dir", mkdtempSync(join(tmpdir(), "stepq-dev-"))], {
      REDIS_URL: redis.url,
    }, root);
    await dev.waitFor(/stepq dev is running/, 30_000);
    expect(dev.stdout()).toContain(`redis   ${redis.url}  (from REDIS_URL)`);
    expect(await dev.stop("SIGTERM")).toBe(0);
  }, 60_000);

  it("says in one line how to install redis-server when it is missing", async () => {
    // A PATH with node and nothing else (node itself may sit next to redis-server in /usr/bin).
    const bin = mkdtempSync(join(tmpdir(), "stepq-bin-"));
    symlinkSync(process.execPath, join(bin, "node"));
    const res = await stepq(["dev", "--port", "0", "--data-dir", mkdtempSync(join(tmpdir(), "stepq-dev-"))], { PATH: bin, REDIS_URL: "" });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/redis-server not found on PATH\. Install Redis 7\+: "apt-get install redis-server"/);
  }, 30_000);
});

describe("stepq demo", () => {
  it("streams an infer step's tokens to stdout, narration to stderr, and exits 0", async () => {
    const res = await stepq(["demo", "--data-dir", mkdtempSync(join(tmpdir(), "stepq-demo-")), "--max-tokens", "24"], { REDIS_URL: "" });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/note: using the built-in tiny model \(random weights: its text is gibberish\)/);
    expect(res.stderr).toMatch(/· generated 24 tokens/);
    expect(res.stderr).toMatch(/✓ \S+ succeeded: 24 tokens/);
    expect(res.stdout.trim().length).toBeGreaterThan(0);
  }, 60_000);
});

describe("the stepq command", () => {
  it("has --help for every command", async () => {
    for (const cmd of [["dev"], ["demo"], ["serve"], ["worker"], ["submit", "infer"], ["submit", "echo"], ["get"], ["follow"], ["cancel"], ["list"]]) {
      const res = await stepq([...cmd, "--help"]);
      expect(res.code, cmd.join(" ")).toBe(0);
      expect(res.stdout).toContain(`Usage: stepq ${cmd.join(" ")}`);
    }
    const main = await stepq(["--help"]);
    expect(main.stdout).toMatch(/Exit codes: 0 ok; 1 step failed/);
  }, 60_000);

  it("exits 2 on bad usage, 3 when the server is unreachable, 4 for an unknown step", async () => {
    expect((await stepq(["frobnicate"])).code).toBe(2);
    expect((await stepq(["submit"])).code).toBe(2);
    const noPrompt = await stepq(["submit", "infer"]);
    expect(noPrompt.code).toBe(2);
    expect(noPrompt.stderr).toMatch(/--prompt is required/);
    const down = await stepq(["get", "--server", "http://127.0.0.1:1", "0000aaaabbbbcccc.0"]);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot reach the stepq server at http:\/\/127\.0\.0\.1:1/);
    const redis = await useRedis();
    const dev = startProcess(process.execPath, [...CLI, "serve", "--port", "0"], { REDIS_URL: redis.url }, root);
    const [, url] = await dev.waitFor(/listening url=(http:\/\/\S+)/);
    const missing = await stepq(["get", "--server", url as string, "0000aaaabbbbcccc.0"]);
    expect(missing.code).toBe(4);
    const bad = await stepq(["get", "--server", url as string, "nope"]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/step_id: "nope" is not a step id/);
    await dev.stop();
  }, 60_000);
});
