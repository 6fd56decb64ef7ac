/**
 * A TCP proxy in front of the server that drops client connections at
 * random: some after a random number of bytes from the server (mid-message),
 * some after a random time (also while a stream is idle), some never. The
 * followers connect through one, so their streams really break and must
 * resume from their cursor; the submitter through another, so some replies
 * are lost after the server stored the jobs and the retried submit must be
 * deduplicated.
 */
import { type CuttingProxy, startCuttingProxy } from "../lib/cutting-proxy.js";
import type { Prng } from "./prng.js";

/** How often and how soon connections are cut. */
export interface DropPolicy {
  /** Share of connections cut after a byte budget. */
  byBytes: number;
  /** Share of connections cut after a time budget (the rest are never cut). */
  byTime: number;
  bytes: [min: number, max: number];
  ms: [min: number, max: number];
}

/** For streams: cut mid-message or mid-wait, often. */
export const STREAM_DROPS: DropPolicy = { byBytes: 0.35, byTime: 0.35, bytes: [200, 6000], ms: [100, 2500] };

/** For submits: cut some connections somewhere in a reply (a SubmitSteps reply is a few KB). */
export const SUBMIT_DROPS: DropPolicy = { byBytes: 0.6, byTime: 0, bytes: [300, 20_000], ms: [0, 0] };

/** Starts a proxy to `target` (an http://host:port URL) on a free local port. */
export function startDropProxy(target: string, rng: Prng, policy: DropPolicy): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  return startCuttingProxy({ host: hostname, port: Number(port) }, () => {
    const roll = rng.next();
    if (roll < policy.byBytes) return { afterBytes: rng.int(...policy.bytes) };
    if (roll < policy.byBytes + policy.byTime) return { afterMs: rng.int(...policy.ms) };
    return {};
  });
}
