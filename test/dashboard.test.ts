/**
 * Issue 16, items 4 and 5: the dashboard in real Chromium, served by a real
 * server (the built files: scripts/build-dashboard.mjs) with a real worker
 * and Redis. The overview's counts follow a submitted step; a step
 * submitted from the form streams its tokens on its job page; a reload in
 * the middle of the stream ends with the whole text, no gap, no repeat; a
 * running step is cancelled and a dead letter retried from the buttons; a
 * refused action shows the server's message. (A page of another origin is
 * refused: test/cors.test.ts.)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { buildDashboard } from "../scripts/build-dashboard.mjs";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { useChromium } from "./helpers/browser.js";
import { echo, useStack } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const { dir } = await buildDashboard(root, mkdtempSync(join(tmpdir(), "stepq-dashboard-")));
const stack = await useStack({ dashboardDir: dir });
void (await stack.worker({ concurrency: 2 })).runForever();
const browser = await useChromium();

/** A tab on `hash` that accepts every confirm dialog and fails the test on a page error. */
async function open(hash = "#/"): Promise<Page> {
  const page = await browser.newPage();
  page.on("dialog", (d) => void d.accept());
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${stack.server.url}/${hash}`);
  expect(errors).toEqual([]);
  return page;
}

describe("the dashboard", () => {
  it("is served at / with its assets, cached as they should be, under a strict CSP", async () => {
    const res = await fetch(`${stack.server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("content-security-policy")).toMatch(/^default-src 'self'/);
    const js = /src="(\/app-[A-Za-z0-9]+\.js)"/.exec(await res.text())?.[1] as string;
    expect((await fetch(stack.server.url + js)).headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${stack.server.url}/../package.json`)).status).not.toBe(200);
  });

  it("the overview's counts follow a step: running, then succeeded", async () => {
    const page = await open();
    // Running for 5 s: the overview (every 2 s) sees it running at least once.
    const step = await stack.client.submit(echo({ text: "slow", delayMs: 5000 }));
    await page.locator('tr[data-route="echo"] td[data-col="running"]', { hasText: "1" }).waitFor();
    await page.locator("table.workers td.current", { hasText: step.id }).waitFor(); // the worker's current step
    await page.locator('tr[data-route="echo"] td[data-col="running"]', { hasText: "0" }).waitFor();
    expect(await page.locator("table.workers tbody tr td:nth-child(2)").first().textContent()).toBe("echo");
    await page.close();
  });

  it("lists jobs by state, each linking to its page", async () => {
    const step = await stack.client.wait((await stack.client.submit(echo({ text: "listed" }))).id);
    const page = await open("#/jobs?state=SUCCEEDED");
    await page.locator(`tr[data-job="${step.jobId}"] .badge.succeeded`).waitFor();
    await page.locator(`tr[data-job="${step.jobId}"] a`).click();
    await page.waitForURL(new RegExp(`#/jobs/${step.jobId}$`));
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    await page.close();
  });

  it("a step submitted from the form streams its tokens on its job page", async () => {
    const page = await open();
    await page.locator('form.submit input[name="text"]').fill("from the form");
    await page.locator("form.submit button[type=submit]").click();
    await page.waitForURL(/#\/jobs\/[0-9a-z]{16}$/);
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    // The form's echo step streams 40 tokens: the words of its text in turn.
    const words = ["from ", "the ", "form "];
    expect(await page.locator("pre.tokens").textContent()).toBe(Array.from({ length: 40 }, (_, i) => words[i % 3]).join(""));
    await page.close();
  });

  it("a reload in the middle of the stream ends with the whole text: no gap, no repeat", async () => {
    const step = await stack.client.submit(echo({ text: "alpha beta gamma", tokenCount: 60, tokenDelayMs: 40 }));
    const page = await open(`#/jobs/${step.jobId}`);
    await expect.poll(async () => ((await page.locator("pre.tokens").textContent({ timeout: 10_000 })) ?? "").length, { timeout: 10_000 }).toBeGreaterThan(40);
    await page.reload();
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    expect(await page.locator("pre.tokens").textContent()).toBe("alpha beta gamma ".repeat(20));
    await page.close();
  });

  it("cancels a running step from its job page, and the DAG shows it", async () => {
    const step = await stack.client.submit(echo({ text: "long", delayMs: 60_000 }));
    const page = await open(`#/jobs/${step.jobId}`);
    await page.locator(`tr[data-step="${step.id}"] .badge.running`).waitFor();
    await page.locator(`tr[data-step="${step.id}"] button[data-action="cancel"]`).click();
    await page.locator(`tr[data-step="${step.id}"] .badge.cancelled`).waitFor();
    await page.locator('svg.dag g.node.cancelled[data-step="main"]').waitFor();
    await page.close();
  });

  it("retries a dead letter from the steps page, and shows the server's message when a purge is refused", async () => {
    const step = await stack.client.submit(echo({ text: "again", failMessage: "first try fails", failAttempts: 1 }), { retry: { maxAttempts: 1 } });
    await stack.client.wait(step.id);
    const page = await open("#/steps?state=FAILED");
    await page.locator(`tr[data-step="${step.id}"] button[data-action="retry"]`).click({ timeout: 10_000 });
    await expect.poll(async () => (await stack.client.get(step.id)).state, { timeout: 10_000 }).toBe(StepState.SUCCEEDED);

    // Purged once (it leaves the dead letters, so the list no longer shows it), a second purge from its
    // job page is refused: the row shows the server's message.
    const dead = await stack.client.submit(echo({ failMessage: "always", failPermanently: true }));
    await stack.client.wait(dead.id);
    await stack.client.steps.purgeStep({ stepId: dead.id });
    const jobPage = await open(`#/jobs/${dead.jobId}`);
    await jobPage.locator(`tr[data-step="${dead.id}"] button[data-action="purge"]`).click({ timeout: 10_000 });
    const error = jobPage.locator(`tr[data-step="${dead.id}"] .error`);
    await error.waitFor({ timeout: 10_000 });
    expect(await error.textContent()).toMatch(/dead-letter/);
    await Promise.all([page.close(), jobPage.close()]);
  }, 30_000);
});
