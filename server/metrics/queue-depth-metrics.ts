/**
 * stepq_queue_steps{route,state}: how many steps of each route are in each
 * state now, read on each scrape from the `counts` hash the scripts keep as
 * steps move (queue/queue-stats.ts readRouteCounts: one MULTI of TIME,
 * SMEMBERS and HGETALL, never a scan of steps). Queue-wide: every server of
 * a queue reports the same values.
 */
import { Gauge, type Registry } from "prom-client";
import type { RouteCounts } from "../../queue/queue-stats.js";

/** The state label of each RouteCounts field. */
const STATES = [
  ["waiting", "waiting"],
  ["queued", "queued"],
  ["scheduled", "scheduled"],
  ["running", "running"],
  ["deadLettered", "dead_lettered"],
] as const satisfies readonly (readonly [keyof Omit<RouteCounts, "route">, string])[];

/** Registers the gauge; `read` gives the counts (a failed read, counted by its caller, leaves the series out). */
export function registerQueueDepthMetrics(registry: Registry, read: () => Promise<RouteCounts[]>): void {
  new Gauge({
    name: "stepq_queue_steps",
    help: "Steps of the queue per route and state now (waiting, queued, scheduled, running, dead_lettered); the same on every server of the queue.",
    labelNames: ["route", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      let routes: RouteCounts[];
      try {
        routes = await read();
      } catch {
        return;
      }
      for (const row of routes) for (const [field, state] of STATES) this.set({ route: row.route, state }, row[field]);
    },
  });
}
