/**
 * Issue 16, items 4 and 5: the dashboard in real Chromium, served by a real
 * server (the built files: scripts/build-dashboard.mjs) with a real worker
 * and Redis. The overview's counts follow a submitted step; a step
 * submitted from the form streams its tokens on its job page; a reload in
 * the middle of the stream ends with the whole text, no gap, no repeat; a
 * running step is cancelled and a dead letter retried from the buttons (the
 * job page then follows the new attempt); a refused action shows the
 * server's message; the lists' filters survive a reload; no page hits an
 * error or a refusal of its Content-Security-Policy. (A page of another
 * origin is refused: test/cors.test.ts.)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { buildDashboard } from "../scripts/build-dashboard.mjs";
import { useChromium } from "./helpers/browser.js";
import { echo, useStack } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const { dir } = await buildDashboard(root, mkdtempSync(join(tmpdir(), "stepq-dashboard-")));
const stack = await useStack({ dashboardDir: dir });
void (await stack.worker({ concurrency: 2 })).runForever();
const browser = await useChromium();

/** Each tab's page errors and Content-Security-Policy refusals: none may happen. */
const problems = new Map<Page, string[]>();

/** A tab on `hash` that accepts every confirm dialog and records page errors and CSP refusals. */
async function open(hash = "#/"): Promise<Page> {
  const page = await browser.newPage();
  const seen: string[] = [];
  problems.set(page, seen);
  page.on("dialog", (d) => void d.accept());
  page.on("pageerror", (e) => seen.push(e.message));
  page.on("console", (m) => void (/Content Security Policy/i.test(m.text()) && seen.push(m.text())));
  await page.goto(`${stack.server.url}/${hash}`);
  return page;
}

/** Closes a tab opened by open(), failing the test if it saw a page error or a CSP refusal. */
async function close(page: Page): Promise<void> {
  expect(problems.get(page)).toEqual([]);
  await page.close();
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
    await close(page);
  });

  it("lists jobs by state, each linking to its page", async () => {
    const step = await stack.client.wait((await stack.client.submit(echo({ text: "listed" }))).id);
    const page = await open("#/jobs?state=SUCCEEDED");
    await page.locator(`tr[data-job="${step.jobId}"] .badge.succeeded`).waitFor();
    await page.locator(`tr[data-job="${step.jobId}"] a`).click();
    await page.waitForURL(new RegExp(`#/jobs/${step.jobId}$`));
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    await close(page);
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
    await close(page);
  });

  it("a reload in the middle of the stream ends with the whole text: no gap, no repeat", async () => {
    const step = await stack.client.submit(echo({ text: "alpha beta gamma", tokenCount: 60, tokenDelayMs: 40 }));
    const page = await open(`#/jobs/${step.jobId}`);
    await expect.poll(async () => ((await page.locator("pre.tokens").textContent({ timeout: 10_000 })) ?? "").length, { timeout: 10_000 }).toBeGreaterThan(40);
    // After the reload the page asks for the output after the cursor it kept, not for all of it again.
    const resumed = page.waitForRequest((r) => r.url().endsWith(".JobService/StreamJobOutput") && /"afterCursor":"\d/.test(r.postDataBuffer()?.toString() ?? ""));
    await page.reload();
    await resumed;
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    expect(await page.locator("pre.tokens").textContent()).toBe("alpha beta gamma ".repeat(20));
    await close(page);
  });

  it("cancels a running step from its job page, and the DAG shows it", async () => {
    const step = await stack.client.submit(echo({ text: "long", delayMs: 60_000 }));
    const page = await open(`#/jobs/${step.jobId}`);
    await page.locator(`tr[data-step="${step.id}"] .badge.running`).waitFor();
    await page.locator(`tr[data-step="${step.id}"] button[data-action="cancel"]`).click();
    await page.locator(`tr[data-step="${step.id}"] .badge.cancelled`).waitFor();
    await page.locator('svg.dag g.node.cancelled[data-step="main"]').waitFor();
    await close(page);
  });

  it("retries a dead letter from its job page, which then follows the new attempt: its text replaces the failed one's", async () => {
    const step = await stack.client.submit(echo({ text: "again", tokenCount: 3, failMessage: "first try fails", failAttempts: 1 }), { retry: { maxAttempts: 1 } });
    await stack.client.wait(step.id);
    const page = await open("#/steps?state=FAILED");
    await page.locator(`tr[data-step="${step.id}"] a`).click();
    await page.locator('p.follow-state[data-ended="failed"]').waitFor();
    expect(await page.locator(`tr[data-step="${step.id}"] .step-error`).textContent()).toContain("first try fails");
    expect(await page.locator("pre.tokens").textContent()).toBe("again again again ");
    await page.locator(`tr[data-step="${step.id}"] button[data-action="retry"]`).click();
    await page.locator(`tr[data-step="${step.id}"] .badge.succeeded`).waitFor();
    await page.locator('p.follow-state[data-ended="succeeded"]').waitFor();
    expect(await page.locator("pre.tokens").textContent()).toBe("again again again ");
    // Its one allowed attempt was used: the second is said to be a retry, not "attempt 2 of 1".
    await expect.poll(() => page.locator(`tr[data-step="${step.id}"]`).textContent()).toContain("attempt 2 (all 1 used, then retried from the dead letters)");
    await close(page);
  });

  it("shows the server's message when it refuses an action (a purge of a step no longer dead-lettered)", async () => {
    const dead = await stack.client.submit(echo({ failMessage: "always", failPermanently: true }));
    await stack.client.wait(dead.id);
    await stack.client.steps.purgeStep({ stepId: dead.id });
    const page = await open(`#/jobs/${dead.jobId}`);
    await page.locator(`tr[data-step="${dead.id}"] button[data-action="purge"]`).click();
    const error = page.locator(`tr[data-step="${dead.id}"] .error`);
    await error.waitFor();
    expect(await error.textContent()).toMatch(/dead-letter/);
    await close(page);
  });

  it("keeps the lists' filters in the URL, so a reload shows the same list", async () => {
    const step = await stack.client.wait((await stack.client.submit(echo({ text: "filtered" }))).id);
    const page = await open("#/steps");
    await page.locator(`table.steps tr[data-step="${step.id}"]`).waitFor();
    // A new filter is a new URL, which draws the list again: one change at a time, each awaited.
    await page.locator('input[name="route"]').fill("echo");
    await page.locator('input[name="route"]').press("Enter");
    await page.waitForURL(/#\/steps\?route=echo$/);
    await page.locator('select[name="state"]').selectOption("SUCCEEDED");
    await page.waitForURL(/#\/steps\?route=echo&state=SUCCEEDED$/);
    await page.reload();
    await page.locator(`table.steps tr[data-step="${step.id}"] .badge.succeeded`).waitFor();
    expect(await page.locator('select[name="state"]').inputValue()).toBe("SUCCEEDED");
    expect(await page.locator('input[name="route"]').inputValue()).toBe("echo");
    expect(await page.locator("table.steps tbody .badge:not(.succeeded)").count()).toBe(0);
    await close(page);
  });
});
