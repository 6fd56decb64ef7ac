/**
 * The queue's step counters per route (submitted, claimed, succeeded,
 * failed attempts, retries, lease expiries, dead letters, cancelled), read
 * on each scrape from the totals the scripts keep in the `counts` hash
 * (record-writes.lua addTotal: one HINCRBY per route and kind per script
 * call), in the same read as the queue depth. Exact and queue-wide: every
 * server of a queue reports the same values (aggregate with max, not sum:
 * docs/operations.md).
 *
 * They used to be counted by each server reading every event of the
 * queue's events stream, which cost the server ~21 µs of CPU per step and
 * 16% of end-to-end throughput on a 2-core machine (bench `--only metrics`);
 * the latency histograms moved to the workers (worker/metrics.ts), which
 * know each step's times.
 */
import { Counter, type Registry } from "prom-client";
import type { RouteTotals } from "../../queue/queue-stats.js";

/** Each counter: its name, help and the RouteTotals field it reports. */
const COUNTERS = [
  ["stepq_steps_submitted_total", "Steps submitted, per route.", "submitted"],
  ["stepq_steps_claimed_total", "Attempts claimed by workers, per route.", "claimed"],
  ["stepq_steps_succeeded_total", "Steps completed successfully, per route.", "succeeded"],
  ["stepq_step_failures_total", "Attempts that failed, lease expiries included, per route (retried or ending the step).", "failedAttempts"],
  ["stepq_step_retries_total", "Failed attempts that will be tried again, per route.", "retried"],
  ["stepq_lease_expiries_total", "Attempts whose worker stopped renewing the lease, per route.", "leaseExpired"],
  ["stepq_dead_letters_total", "Steps that failed for good and went to the dead letters, per route (a dependency's failure or a queue timeout included).", "deadLettered"],
  ["stepq_steps_cancelled_total", "Steps cancelled, per route.", "cancelled"],
] as const satisfies readonly (readonly [string, string, keyof Omit<RouteTotals, "route">])[];

/**
 * Registers the counters; `read` gives the totals (shared with the depth
 * gauge's read of the same scrape). A failed read (counted by its caller)
 * keeps the values of the last one, so a counter never seems to go back.
 */
export function registerStepTotalsMetrics(registry: Registry, read: () => Promise<RouteTotals[]>): void {
  for (const [name, help, field] of COUNTERS) {
    new Counter({
      name,
      help: `${help} The same on every server of the queue.`,
      labelNames: ["route"] as const,
      registers: [registry],
      async collect() {
        let rows: RouteTotals[];
        try {
          rows = await read();
        } catch {
          return;
        }
        this.reset();
        for (const row of rows) this.inc({ route: row.route }, row[field]);
      },
    });
  }
}
