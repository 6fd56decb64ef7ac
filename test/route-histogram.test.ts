/**
 * worker/route-histogram.ts stands in for prom-client's Histogram on a
 * worker's per-step path (its observe() allocates nothing). It must read
 * exactly as prom-client's own: the same text from a Registry, in the
 * Prometheus and OpenMetrics formats, and the same JSON, for the same
 * observations (values on bounds, between, past the last bound, several
 * routes), and a reset empties it.
 */
import { describe, expect, it } from "vitest";
import { Histogram, Registry } from "prom-client";
import { RouteHistogram } from "../worker/route-histogram.js";

const BOUNDS = [0.005, 0.01, 0.5, 1, 2.5, 600];
const OBSERVED: [string, number][] = [
  ["echo", 0],
  ["echo", 0.005],
  ["echo", 0.0051],
  ["echo", 1],
  ["echo", 700],
  ["infer:qwen?tag=gpu=a100", 0.3],
  ["infer:qwen?tag=gpu=a100", 2.5],
  ["embed", 1e-9],
];

function both(contentType?: typeof Registry.OPENMETRICS_CONTENT_TYPE) {
  const ours = new Registry();
  const theirs = new Registry();
  if (contentType) for (const r of [ours, theirs]) r.setContentType(contentType as never); // the typings bind a registry to one type
  const h = new RouteHistogram("stepq_x_seconds", "Help text, with \\ and \n in it.", BOUNDS);
  ours.registerMetric(h.asMetric());
  const p = new Histogram({ name: "stepq_x_seconds", help: "Help text, with \\ and \n in it.", labelNames: ["route"] as const, buckets: BOUNDS, registers: [theirs] });
  for (const [route, v] of OBSERVED) {
    h.observe(route, v);
    p.observe({ route }, v);
  }
  return { ours, theirs, h };
}

describe("RouteHistogram", () => {
  it("reads exactly as prom-client's Histogram in the Prometheus text format and as JSON", async () => {
    const { ours, theirs } = both();
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('stepq_x_seconds_bucket{le="0.005",route="echo"} 2');
    expect(text).toContain('stepq_x_seconds_bucket{le="+Inf",route="echo"} 5');
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it("reads exactly as prom-client's Histogram in the OpenMetrics format", async () => {
    const { ours, theirs } = both(Registry.OPENMETRICS_CONTENT_TYPE);
    const text = await ours.metrics();
    expect(text).toMatch(/# EOF\n?$/);
    expect(text).toBe(await theirs.metrics());
  });

  it("is empty after a reset, as the registry's resetMetrics() does it", async () => {
    const { ours, h } = both();
    ours.resetMetrics();
    expect(h.get().values).toEqual([]);
    h.observe("echo", 0.2);
    expect(await ours.metrics()).toContain('stepq_x_seconds_count{route="echo"} 1');
  });
});
