/**
 * This server's open streams: the server streams holding a slot
 * (--max-streams, server/stream-limit.ts) and the stream hub's followers
 * (one subscription per followed log, server/stream-hub.ts), read from
 * memory on each scrape.
 */
import { Gauge, type Registry } from "prom-client";
import type { StreamHub } from "../stream-hub.js";
import type { StreamSlots } from "../stream-limit.js";

/** Registers stepq_open_streams, stepq_stream_followers and stepq_followed_logs. */
export function registerStreamMetrics(registry: Registry, slots: StreamSlots, hub: StreamHub): void {
  new Gauge({
    name: "stepq_open_streams",
    help: "Server streams this server has open now (each holds one of --max-streams slots).",
    registers: [registry],
    collect() {
      this.set(slots.open);
    },
  });
  new Gauge({
    name: "stepq_stream_followers",
    help: "Subscriptions of this server's stream hub now (followers of a job's or step's output), and how many are paused (state).",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const s = hub.stats();
      this.set({ state: "open" }, s.subscriptions);
      this.set({ state: "paused" }, s.paused);
    },
  });
  new Gauge({
    name: "stepq_followed_logs",
    help: "Redis streams (job logs) this server's hub follows live now.",
    registers: [registry],
    collect() {
      this.set(hub.size);
    },
  });
}
