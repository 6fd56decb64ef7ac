/**
 * The short seeded fuzz run (`npm run fuzz` is the long one): 1,000
 * generated and mutated requests over every RPC, protocol and transport
 * against a real server child process, a real Redis and an echo worker.
 * A failure prints the fuzz report, with each failing request in a form
 * that can be replayed (`npm run fuzz -- --seed 7 --only I`).
 */
import { describe, expect, it } from "vitest";
import { formatFuzzReport } from "../fuzz/format-report.js";
import { runFuzz } from "../fuzz/run-fuzz.js";

const SEED = 7;

describe("the seeded fuzz run", () => {
  it(`answers 1,000 hostile requests (seed ${SEED}) without internal errors or crashes, stays healthy, returns its memory, and leaves canaries alone`, async () => {
    const report = await runFuzz({ seed: SEED, count: 1000, concurrency: 6, settleMs: 10_000 });
    const text = formatFuzzReport(report);
    expect(report.sent + report.victims, text).toBeGreaterThan(950);
    expect(report.failures.map((f) => `${f.key} (${f.count}×)`), text).toEqual([]);
    expect(report.crashes, text).toBe(0);
    expect(report.health.failures, text).toEqual([]);
    expect(report.memory.finalKb, text).toBeLessThanOrEqual(report.memory.allowedKb);
    expect(report.live.finalKb, text).toBeLessThanOrEqual(report.live.allowedKb);
    expect(report.canariesChanged, text).toEqual([]);
    expect(report.canaryCount).toBe(5);
  }, 180_000);
});
