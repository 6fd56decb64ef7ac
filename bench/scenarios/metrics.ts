/**
 * What Prometheus metrics cost: the end-to-end drain at concurrency 16 with
 * a stepq server on the queue in both arms. One arm has `--metrics off` and
 * workers without metrics; the other has the server's metrics and the
 * worker's (--metrics-port: every claim and outcome counted and timed), and
 * both `GET /metrics` scraped every second, as a Prometheus would, though
 * ten times as often as the usual 10-15 s interval. The route totals the
 * scripts keep are written in both arms (they are not optional), so their
 * Redis cost shows in the e2e scenario's Redis CPU per step, not here. The
 * two arms alternate and run back to back in each round; the target is a
 * loss of at most 2% by the median of each round's ratio (on / off), which
 * drift between rounds does not move (the arms' own medians are printed too;
 * on this shared 2-core machine a single drain varies by ±20%). 60,000
 * steps a drain, so each takes a few seconds and sees several scrapes of
 * warm processes.
 */
import { startChild } from "../lib/child.js";
import { processCpuSeconds } from "../lib/machine.js";
import { type BenchContext, preload, scaled, withSide } from "../lib/context.js";
import { QUEUE } from "../lib/sides.js";
import { drain } from "./e2e.js";

const ARMS = [
  { id: "metrics.off", label: "end to end c16, server and worker without metrics", metrics: false },
  { id: "metrics.on", label: "end to end c16, server and worker metrics scraped every second", metrics: true },
] as const;

export async function runMetrics(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 60_000, 1000);
  const scenario = `metrics: ${n.toLocaleString("en-US")} no-op steps drained, a server on the queue`;
  for (const a of ARMS) {
    ctx.results.define({ id: a.id, scenario, label: a.label, unit: "steps/s", better: "higher" });
    ctx.results.define({ id: `${a.id}.redis`, scenario, label: "  Redis CPU per step", unit: "µs", better: "lower" });
    ctx.results.define({ id: `${a.id}.server`, scenario, label: "  server process CPU per step", unit: "µs", better: "lower" });
    ctx.results.define({ id: `${a.id}.worker`, scenario, label: "  worker process CPU per step", unit: "µs", better: "lower" });
  }
  ctx.results.define({ id: "metrics.paired", scenario, label: "metrics on / off, each round's pair", unit: "ratio", better: "higher" });
  for (let round = 0; round < ctx.rounds; round++) {
    const order = round % 2 === 0 ? ARMS : [...ARMS].reverse();
    const rate: Record<string, number> = {};
    for (const a of order) {
      ctx.log(`metrics: ${a.label}, round ${round + 1}/${ctx.rounds}`);
      await ctx.redis.flush();
      const server = startChild("server/main.ts", ["--redis-url", ctx.redis.url, "--port", "0", "--queue", QUEUE, "--metrics", a.metrics ? "on" : "off"]);
      const url = (await server.waitFor(/listening url=(\S+)/))[1] as string;
      // The server's /metrics, and each worker's once it is up; every one at
      // least once more after the drain (a drain may be over within a second).
      const urls = a.metrics ? [`${url}/metrics`] : [];
      const scraped = new Map<string, number>();
      const scrapeAll = async () => {
        for (const u of urls) {
          const res = await fetch(u);
          if (res.status !== 200) throw new Error(`GET ${u} answered ${res.status}`);
          await res.text();
          scraped.set(u, (scraped.get(u) ?? 0) + 1);
        }
      };
      let scraping = a.metrics;
      const scraper = (async () => {
        while (scraping) {
          await scrapeAll();
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      try {
        await withSide(ctx, "stepq", async (side) => {
          await preload(side, n);
          const cpu0 = processCpuSeconds(server.pid);
          const d = await drain(ctx, side, n, [16], {
            workerMetrics: a.metrics,
            onWorkers: async ([w]) => {
              if (a.metrics) {
                urls.push(((await w?.waitFor(/metrics url=(\S+)/)) ?? [])[1] as string);
                // A first scrape before the timed drain: a worker Prometheus watches has been
                // scraped before, and the first one in a process compiles the exposition code
                // (~40-80 ms of CPU, which would otherwise fall inside a 2 s drain).
                await scrapeAll();
              }
            },
            // Timed part over; before the drain stops the workers (so no scrape meets a stopped one).
            onDrained: async () => {
              scraping = false;
              await scraper;
              await scrapeAll();
            },
          });
          ctx.results.add(a.id, "stepq", d.stepsPerSecond);
          rate[a.id] = d.stepsPerSecond;
          ctx.results.add(`${a.id}.redis`, "stepq", d.redisUsPerStep);
          ctx.results.add(`${a.id}.worker`, "stepq", d.workerUsPerStep);
          ctx.results.add(`${a.id}.server`, "stepq", ((processCpuSeconds(server.pid) - cpu0) * 1e6) / n);
        });
      } finally {
        scraping = false;
        await scraper;
        await server.stop();
      }
      if (a.metrics && (urls.length !== 2 || urls.some((u) => !scraped.get(u)))) throw new Error(`the metrics arm's server and worker were not both scraped: ${JSON.stringify([...scraped])}`);
    }
    ctx.results.add("metrics.paired", "stepq", (rate["metrics.on"] as number) / (rate["metrics.off"] as number));
  }
}
