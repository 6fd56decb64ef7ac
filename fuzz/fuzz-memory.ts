/**
 * The fuzz run's memory check: how much the server may keep after the run,
 * and the settle loop that measures it (a full collection, then samples
 * until live memory stops falling). docs/fuzz.md explains the limits.
 */
import type { FuzzStack } from "./fuzz-stack.js";

export interface MemorySample {
  rssKb: number;
  liveKb: number;
}

/**
 * The RSS the server may keep after the run: a ceiling against native leaks
 * and unbounded buffers, not "returned" (the allocator keeps freed memory
 * for reuse, ~55 MiB after 1,000 requests): start + max(128 MiB, 100%).
 */
export function allowedRssKb(baselineKb: number): number {
  return baselineKb + Math.max(128 * 1024, baselineKb);
}

/** The live memory the server must return to: start + max(16 MiB, 50%). */
export function allowedLiveKb(baselineKb: number): number {
  return baselineKb + Math.max(16 * 1024, Math.round(baselineKb * 0.5));
}

/**
 * The server's memory after the run: sampled after a full collection every
 * 500 ms until it is within the limits, stops falling (four samples within
 * 256 kB), or `settleMs` passes. The baseline was taken the same way.
 */
export async function settleMemory(stack: FuzzStack, baseline: MemorySample, settleMs: number): Promise<MemorySample> {
  const settleUntil = performance.now() + settleMs;
  let final = await stack.serverMemoryAfterGc();
  const samples: number[] = [final.liveKb];
  const settled = () => final.rssKb <= allowedRssKb(baseline.rssKb) && final.liveKb <= allowedLiveKb(baseline.liveKb);
  while (performance.now() < settleUntil && !settled()) {
    await new Promise((r) => setTimeout(r, 500));
    final = await stack.serverMemoryAfterGc();
    samples.push(final.liveKb);
    const last = samples.slice(-4);
    if (last.length === 4 && Math.max(...last) - Math.min(...last) < 256) break;
  }
  return final;
}
