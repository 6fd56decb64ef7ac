/**
 * Issue 16, item 4: the dashboard stays usable with 100,000 finished jobs
 * in Redis: the steps and jobs lists show their first page, and the next, in
 * well under two seconds each, and the overview its counts, because every
 * view asks for one page (or for counters), never for everything. A real
 * server, worker and Redis hold the jobs; real Chromium reads them.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { chromium } from "playwright-core";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { describe, expect, it } from "vitest";
import { buildDashboard } from "../scripts/build-dashboard.mjs";
import { CHROMIUM_ARGS } from "./helpers/browser.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const JOBS = 100_000;
const root = join(import.meta.dirname, "..");
const { dir } = await buildDashboard(root, mkdtempSync(join(tmpdir(), "stepq-dashboard-")));
const stack = await useStack({ dashboardDir: dir });

describe("the dashboard with 100,000 finished jobs", () => {
  it("shows the steps and the jobs page by page, and the overview, each in under 2 s", async () => {
    void (await stack.worker({ concurrency: 64 })).runForever();
    for (let sent = 0; sent < JOBS; sent += 4000) {
      await Promise.all([0, 1, 2, 3].map(() => stack.client.steps.submitSteps({ requests: Array.from({ length: 1000 }, () => ({ operation: echo({ text: "x" }) })) })));
    }
    const queue = createClient(QueueService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));
    const { routes } = await eventually(
      () => queue.getQueueStats({}),
      (s) => s.routes.some((r) => r.route === "echo" && r.queued === 0n && r.running === 0n),
      120_000,
    );
    expect(routes.find((r) => r.route === "echo")?.deadLettered).toBe(0n);

    const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "stepq-chromium-")), { executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const timed = async (what: () => Promise<unknown>) => {
        const started = Date.now();
        await what();
        return Date.now() - started;
      };
      const first = await timed(async () => {
        await page.goto(`${stack.server.url}/#/steps?state=SUCCEEDED`);
        await page.locator("table.steps tbody tr[data-step]").nth(49).waitFor();
      });
      const firstId = await page.locator("table.steps tbody tr[data-step]").first().getAttribute("data-step");
      const next = await timed(async () => {
        await page.locator('button[data-action="next"]').click();
        await page.locator(`table.steps tbody tr[data-step]:first-child:not([data-step="${firstId}"])`).waitFor();
      });
      const jobs = await timed(async () => {
        await page.goto(`${stack.server.url}/#/jobs?state=SUCCEEDED`);
        await page.locator("table.jobs tbody tr[data-job]").nth(49).waitFor();
      });
      const firstJob = await page.locator("table.jobs tbody tr[data-job]").first().getAttribute("data-job");
      const nextJobs = await timed(async () => {
        await page.locator('button[data-action="next"]').click();
        await page.locator(`table.jobs tbody tr[data-job]:first-child:not([data-job="${firstJob}"])`).waitFor();
      });
      const overview = await timed(async () => {
        await page.goto(`${stack.server.url}/#/`);
        await page.locator('tr[data-route="echo"] td[data-col="queued"]').waitFor();
      });
      console.log(`100,000 finished jobs: first steps page ${first} ms, next page ${next} ms; first jobs page ${jobs} ms, next ${nextJobs} ms; overview ${overview} ms`);
      for (const ms of [first, next, jobs, nextJobs]) expect(ms).toBeLessThan(2000);
      expect(overview).toBeLessThan(2000);
    } finally {
      await browser.close();
    }
  }, 180_000);
});
