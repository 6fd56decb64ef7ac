/**
 * Takes the dashboard screenshots of docs/images/ (README shows them): a
 * private Redis, a server serving the built dashboard (npm run build
 * first), an echo worker, a small workload (finished, failed and running
 * steps, a DAG job streaming), then Chromium at 1280x800 on the overview,
 * the steps list and the job page.
 *
 *   npm run build && node --import tsx scripts/screenshots.ts
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";
import { createStepqClient } from "../clients/node/client.js";
import { createLogger } from "../runtime/logger.js";
import { startRedisProcess } from "../runtime/redis-process.js";
import { buildServer } from "../server/main.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import { createWorker } from "../worker/worker.js";

const root = join(import.meta.dirname, "..");
const out = join(root, "docs/images");
mkdirSync(out, { recursive: true });
const quiet = createLogger("screenshots", { level: "silent" });

const redis = await startRedisProcess();
const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, dashboardDir: join(root, "dist/dashboard") });
const worker = createWorker({ redisUrl: redis.url, engines: [createEchoEngine()], logger: quiet, concurrency: 4, workerId: "gpu-box-1" });
await worker.start();
void worker.runForever();
const stepq = createStepqClient({ baseUrl: server.url });
const echo = (value: object) => ({ kind: { case: "echo" as const, value } });

// A workload: a stream of short steps for the chart, a few failures, a long one running, a DAG streaming.
const steady = setInterval(() => void Promise.all(Array.from({ length: 20 }, (_, i) => stepq.submit(echo({ text: `job ${i}` })))), 500);
for (let i = 0; i < 3; i++) await stepq.submit(echo({ failMessage: "the model ran out of memory", failPermanently: true }));
await stepq.submit(echo({ text: "long", delayMs: 120_000 }));
const { job } = await stepq.jobs.submitJob({
  steps: [
    { name: "transcribe", operation: echo({ text: "the quick brown fox", tokenCount: 24, tokenDelayMs: 30 }) },
    { name: "summarize", operation: echo({ text: "a fox jumps over a lazy dog", tokenCount: 400, tokenDelayMs: 60 }), dependsOn: ["transcribe"] },
    { name: "translate", operation: echo({ text: "un renard saute", tokenCount: 400, tokenDelayMs: 60 }), dependsOn: ["transcribe"] },
    { name: "publish", operation: echo({ text: "done" }), dependsOn: ["summarize", "translate"] },
  ],
});
await sleep(25_000);

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "stepq-chromium-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
});
const page = await browser.newPage();
for (const [name, hash, wait] of [
  ["dashboard-overview", "#/", "table.routes tbody tr"],
  ["dashboard-steps", "#/steps", "table.steps tbody tr"],
  ["dashboard-job", `#/jobs/${job?.id}`, "svg.dag"],
] as const) {
  await page.goto(`${server.url}/${hash}`);
  await page.locator(wait).first().waitFor();
  await sleep(2500);
  await page.screenshot({ path: join(out, `${name}.png`) });
  console.log(`wrote docs/images/${name}.png`);
}
clearInterval(steady);
await browser.close();
await worker.stop(100);
await server.close();
await redis.stop();
