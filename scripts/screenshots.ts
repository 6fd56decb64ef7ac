/**
 * Takes the dashboard screenshots of docs/images/ (README shows them): a
 * private Redis, a server serving a dashboard built for the occasion (in a
 * temporary folder, so dist/ is left alone), an echo worker, a small
 * workload (a steady flow of finished steps for the chart, a few dead
 * letters, a long step running, labelled jobs), then Chromium at 1280x800
 * on the overview, the jobs list, the dead letters and the page of a DAG
 * job while two of its steps stream.
 *
 *   node --import tsx scripts/screenshots.ts
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium, type Page } from "playwright-core";
import { createStepqClient } from "../clients/node/client.js";
import { createLogger } from "../runtime/logger.js";
import { startRedisProcess } from "../runtime/redis-process.js";
import { buildServer } from "../server/main.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import { createWorker } from "../worker/worker.js";
import { buildDashboard } from "./build-dashboard.mjs";

const root = join(import.meta.dirname, "..");
const out = join(root, "docs/images");
mkdirSync(out, { recursive: true });
const quiet = createLogger("screenshots", { level: "silent" });

const { dir } = await buildDashboard(root, mkdtempSync(join(tmpdir(), "stepq-dashboard-")));
const redis = await startRedisProcess();
const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, dashboardDir: dir });
const worker = createWorker({ redisUrl: redis.url, engines: [createEchoEngine()], logger: quiet, concurrency: 4, workerId: "gpu-box-1" });
await worker.start();
void worker.runForever();
const stepq = createStepqClient({ baseUrl: server.url });
const echo = (value: object) => ({ kind: { case: "echo" as const, value } });

// The workload: a steady flow for the chart, labelled jobs, three dead letters, one long step running.
let n = 0;
const steady = setInterval(() => {
  for (let i = 0; i < 20; i++) {
    const customer = ["acme", "globex", "initech"][n % 3] as string;
    void stepq.jobs.submitJob({ steps: [{ name: "summarize", operation: echo({ text: `ticket ${n++}` }) }], labels: { customer } });
  }
}, 500);
for (const message of ["the model ran out of memory", "upstream returned 400: context too long", "the model ran out of memory"]) {
  await stepq.submit(echo({ failMessage: message, failPermanently: true }));
}
await stepq.submit(echo({ text: "long", delayMs: 120_000 }));
await sleep(25_000); // two or three of the chart's 10 s buckets

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "stepq-chromium-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
async function shoot(name: string, hash: string, ready: (p: Page) => Promise<unknown>): Promise<void> {
  await page.goto(`${server.url}/${hash}`);
  await ready(page);
  await page.screenshot({ path: join(out, `${name}.png`) });
  console.log(`wrote docs/images/${name}.png`);
}
await shoot("dashboard-overview", "#/", (p) => p.locator("table.workers td.current a").first().waitFor());
await shoot("dashboard-jobs", "#/jobs", (p) => p.locator("table.jobs tbody tr[data-job]").first().waitFor());
await shoot("dashboard-steps", "#/steps?state=FAILED", (p) => p.locator("table.steps tbody tr[data-step]").nth(2).waitFor());
clearInterval(steady);

// A DAG job, caught while its two middle steps stream.
const { job } = await stepq.jobs.submitJob({
  steps: [
    { name: "transcribe", operation: echo({ text: "the quick brown fox", tokenCount: 16, tokenDelayMs: 20 }) },
    { name: "summarize", operation: echo({ text: "a fox jumps over a lazy dog", tokenCount: 400, tokenDelayMs: 50 }), dependsOn: ["transcribe"] },
    { name: "translate", operation: echo({ text: "un renard saute", tokenCount: 400, tokenDelayMs: 70 }), dependsOn: ["transcribe"] },
    { name: "publish", operation: echo({ text: "done" }), dependsOn: ["summarize", "translate"] },
  ],
  labels: { customer: "acme" },
});
await shoot("dashboard-job", `#/jobs/${job?.id}`, async (p) => {
  await p.locator("svg.dag g.node.running").nth(1).waitFor();
  await p.locator("pre.tokens").nth(2).waitFor();
  await sleep(3000); // a few lines of each stream
});

await browser.close();
await worker.stop(100);
await server.close();
await redis.stop();
