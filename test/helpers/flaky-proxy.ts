/**
 * A TCP proxy that cuts every connection after it has carried `cutAfterBytes`
 * bytes from the server: a real dropped connection, mid-stream. Closed after
 * the test file.
 */
import { afterAll } from "vitest";
import { type CuttingProxy, startCuttingProxy } from "../../bench/lib/cutting-proxy.js";

/** `maxCuts` limits how many connections are cut (later ones pass untouched). */
export async function useFlakyProxy(target: { host: string; port: number }, cutAfterBytes: number, maxCuts = Infinity): Promise<CuttingProxy> {
  const proxy = await startCuttingProxy(target, (cutsSoFar) => (cutsSoFar < maxCuts ? { afterBytes: cutAfterBytes } : {}));
  afterAll(() => proxy.close());
  return proxy;
}
