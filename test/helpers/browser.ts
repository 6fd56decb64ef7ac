/**
 * Debian's Chromium driven by playwright-core, for the browser tests: one
 * persistent context in a fresh profile per test file, closed after it.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll } from "vitest";

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export async function useChromium(): Promise<BrowserContext> {
  const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "stepq-chromium-")), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  afterAll(() => browser.close());
  return browser;
}
