import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getJson, postJson } from "./helpers/json-rpc.js";
import { startProcess } from "./helpers/process.js";
import { useRedis } from "./helpers/redis.js";
import { eventually } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const out = join(root, `dist-test-${process.pid}`);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the compiled JavaScript", () => {
  it("builds, and the compiled server and worker run a step and stop cleanly on SIGTERM", async () => {
    execFileSync(process.execPath, [join(root, "scripts/build.mjs"), out], { stdio: "pipe" });
    const redis = await useRedis();
    const env = { REDIS_URL: redis.url, STEPQ_LOG_LEVEL: "info" };
    const server = startProcess(process.execPath, [join(out, "server/main.js"), "--port", "0"], env);
    const [, url] = await server.waitFor(/listening url=(http:\/\/\S+)/);
    const worker = startProcess(process.execPath, [join(out, "worker/main.js"), "--concurrency", "2"], env);
    await worker.waitFor(/started routes=echo/);

    const sub = await postJson(url as string, "stepq.v1.StepService/SubmitStep", { operation: { echo: { text: "compiled" } } });
    const id = (sub.body.step as { id: string }).id;
    const done = await eventually(
      () => getJson(url as string, "stepq.v1.StepService/GetStep", { stepId: id }),
      (r) => (r.body.step as { state: string }).state === "STEP_STATE_SUCCEEDED",
    );
    expect((done.body.step as { result: { text: string } }).result.text).toBe("compiled");

    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(worker.output()).toMatch(/stopped/);
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.output()).toMatch(/stopped/);
  }, 90_000);

  it("prints --help for the server and the worker", () => {
    // Run from source: the same tables produce both texts.
    const tsx = join(root, "node_modules/.bin/tsx");
    const serverHelp = execFileSync(tsx, [join(root, "server/main.ts"), "--help"]).toString();
    expect(serverHelp).toMatch(/Usage: stepq serve/);
    expect(serverHelp).toMatch(/--redis-url <string>\s+Redis to use \(rediss:\/\/ for TLS\)\. \(env REDIS_URL; default redis:\/\/127\.0\.0\.1:6379\)/);
    const workerHelp = execFileSync(tsx, [join(root, "worker/main.ts"), "--help"]).toString();
    expect(workerHelp).toMatch(/--concurrency <int>/);
  });

  it("rejects an unknown flag with exit code 2 and a pointer to --help", () => {
    const tsx = join(root, "node_modules/.bin/tsx");
    try {
      execFileSync(tsx, [join(root, "worker/main.ts"), "--concurency", "3"], { stdio: "pipe" });
      expect.unreachable();
    } catch (e) {
      const err = e as { status: number; stderr: Buffer };
      expect(err.status).toBe(2);
      expect(err.stderr.toString()).toMatch(/stepq worker: Unknown option '--concurency'.*see --help/);
    }
  });
});
